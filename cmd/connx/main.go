// Command connx is the ConnX reverse proxy and load balancer.
//
//	connx -config configs/config.yaml   run with a config file
//	connx -demo                         run on 127.0.0.1:8080 with three demo backends
//	connx -check -config FILE           validate a config and exit 0 or 1
//	connx -version                      print the version
//	connx -h                            print what ConnX is, the flags and the signals
//
// Signals: SIGHUP reloads the config (it also reloads when the file
// changes), SIGTERM and SIGINT drain and exit (a second one exits at once),
// SIGUSR1 reopens the access log file, SIGUSR2 starts an upgraded binary
// that takes over the listening port.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/connx/connx/internal/accesslog"
	"github.com/connx/connx/internal/admin"
	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/demo"
	"github.com/connx/connx/internal/metrics"
	"github.com/connx/connx/internal/proxy"
	"github.com/connx/connx/internal/redisync"
	"github.com/connx/connx/internal/stats"
)

// version, commit and date are stamped at build time (make build, make
// release): -ldflags "-X main.version=v1.2.3 -X main.commit=abc123 -X
// main.date=2026-12-05T17:00:00Z". Without them, commit comes from the
// build's VCS information when go build recorded it.
var (
	version = "dev"
	commit  = ""
	date    = "unknown"
)

// versionLine is what -version prints.
func versionLine() string {
	c := commit
	if c == "" {
		c = "unknown"
		if bi, ok := debug.ReadBuildInfo(); ok {
			var rev, dirty string
			for _, s := range bi.Settings {
				switch {
				case s.Key == "vcs.revision":
					rev = s.Value
				case s.Key == "vcs.modified" && s.Value == "true":
					dirty = "-dirty"
				}
			}
			if rev != "" {
				c = rev[:min(12, len(rev))] + dirty
			}
		}
	}
	return fmt.Sprintf("connx %s (commit %s, built %s, %s %s/%s)", version, c, date, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

func main() {
	os.Exit(run(os.Args[1:]))
}

// Without -config, connx reads localConfig (relative to the working
// directory) when it is there, else systemConfig, the installed location
// (the container image and the systemd unit use it).
const localConfig = "configs/config.yaml"

var systemConfig = "/etc/connx/config.yaml" // a variable for tests

// defaultConfigPath returns the config file to read without -config, or
// "" when neither exists.
func defaultConfigPath() string {
	for _, p := range []string{localConfig, systemConfig} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			return p
		}
	}
	return ""
}

// usageLine is printed with every command-line error.
const usageLine = "usage: connx [-config FILE | -demo] [-check] [-listen HOST:PORT] [-log-level LEVEL] [-pprof ADDR] | -version | -h"

// helpIntro and helpSignals frame the flag list of -h.
const (
	helpIntro = `ConnX is an HTTP/1.1 reverse proxy and load balancer: it listens on one
address and spreads the requests it receives over the backends of a YAML
config file, with active health checks, circuit breakers, outlier
ejection, rate limiting, Prometheus metrics at /metrics, hot reload and
zero-downtime upgrades.

Usage:
  connx [-config FILE] [flags]   run with a config file (default below)
  connx -demo                    run on 127.0.0.1:8080 with three demo backends
  connx -check [-config FILE]    validate a config: exit 0 if valid, 1 if not
  connx -version                 print the version

Flags:
`
	helpSignals = `
Config file: without -config, connx reads configs/config.yaml in the working
directory if it is there, else /etc/connx/config.yaml.

Signals:
  SIGHUP            reload the config file now (saves to it are picked up by themselves)
  SIGTERM, SIGINT   drain and exit within server.shutdownTimeout; a second one exits at once
  SIGUSR1           reopen the access log file (after logrotate moved it)
  SIGUSR2           zero-downtime upgrade: start the binary at the same path and hand the port over

Every config key, its default and its range: docs/configuration.md.
`
)

func run(args []string) int {
	fs := flag.NewFlagSet("connx", flag.ContinueOnError)
	fs.SetOutput(io.Discard) // errors and help are printed below
	fs.Usage = func() {}
	cfgPath := fs.String("config", "", "path to the YAML config `FILE` (default: configs/config.yaml if present, else /etc/connx/config.yaml)")
	demoMode := fs.Bool("demo", false, "run on 127.0.0.1:8080 with three in-process demo backends (no config needed)")
	check := fs.Bool("check", false, "validate the config file and exit (0 valid, 1 invalid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on `ADDR` (e.g. 127.0.0.1:6060); for debugging")
	listen := fs.String("listen", "", "override server.host and server.port with `HOST:PORT` (port 0: any free port)")
	logLevel := fs.String("log-level", "info", "process log `LEVEL`: debug, info, warn or error")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			var b strings.Builder
			b.WriteString(helpIntro)
			fs.SetOutput(&b)
			fs.PrintDefaults()
			b.WriteString(helpSignals)
			fmt.Print(b.String())
			return 0
		}
		return usageError(err.Error())
	}
	if fs.NArg() > 0 {
		return usageError(fmt.Sprintf("unexpected argument %q", fs.Arg(0)))
	}
	if *showVersion {
		fmt.Println(versionLine())
		return 0
	}
	var level slog.Level
	if err := level.UnmarshalText([]byte(*logLevel)); err != nil {
		fmt.Fprintln(os.Stderr, "connx: -log-level:", err)
		return 2
	}

	var (
		log     *slog.Logger
		cfg     *config.Config
		watcher *config.Watcher
	)
	if *demoMode {
		backends, err := demo.Start(3)
		if err != nil {
			fmt.Fprintln(os.Stderr, "connx: demo backends:", err)
			return 1
		}
		defer backends.Close()
		cfg = backends.Config("127.0.0.1", 8080)
		if err := cfg.Validate(); err != nil {
			fmt.Fprintln(os.Stderr, "connx: demo config:", err)
			return 1
		}
		log = newLogger(cfg.Log.Format, level)
		log.Info("demo mode: three backends started", "backends", backends.URLs)
		fmt.Fprintln(os.Stderr, "connx demo: try  curl http://127.0.0.1:8080/  (repeat it to see round-robin)")
	} else {
		if !flagSet(fs, "config") {
			if *cfgPath = defaultConfigPath(); *cfgPath == "" {
				fmt.Fprint(os.Stderr, missingDefaultConfig())
				return 1
			}
		} else if _, err := os.Stat(*cfgPath); errors.Is(err, os.ErrNotExist) {
			fmt.Fprint(os.Stderr, missingConfig(*cfgPath))
			return 1
		}
		// The first load decides the process log's format; the watcher
		// starts before the load that counts, so a save in between is not
		// missed.
		var err error
		if cfg, err = config.Load(*cfgPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if *check {
			if len(cfg.Pools) > 0 || len(cfg.Routes) > 0 {
				fmt.Printf("%s: ok (%d backends, %s; %d pools, %d routes)\n", *cfgPath, len(cfg.Backends), cfg.LoadBalancing.Algorithm, len(cfg.Pools), len(cfg.Routes))
			} else {
				fmt.Printf("%s: ok (%d backends, %s)\n", *cfgPath, len(cfg.Backends), cfg.LoadBalancing.Algorithm)
			}
			return 0
		}
		log = newLogger(cfg.Log.Format, level)
		if watcher, err = config.NewWatcher(*cfgPath, config.DefaultDebounce, log); err != nil {
			fmt.Fprintln(os.Stderr, "connx:", err)
			return 1
		}
		if cfg, err = config.Load(*cfgPath); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}

	if *pprofAddr != "" {
		go func() { log.Error("pprof", "err", http.ListenAndServe(*pprofAddr, nil)) }()
	}
	if *listen != "" {
		if err := overrideListen(cfg, *listen); err != nil {
			fmt.Fprintln(os.Stderr, "connx: -listen:", err)
			return 2
		}
	}
	a, err := newApp(cfg, log, *cfgPath, *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connx:", err)
		return 1
	}
	return a.serve(watcher)
}

// usageError reports a command-line error with the usage line; the exit
// code is 2.
func usageError(msg string) int {
	fmt.Fprintf(os.Stderr, "connx: %s\n%s\nRun connx -h for the flags and signals.\n", msg, usageLine)
	return 2
}

// flagSet reports whether flag name was given on the command line.
func flagSet(fs *flag.FlagSet, name string) bool {
	set := false
	fs.Visit(func(f *flag.Flag) { set = set || f.Name == name })
	return set
}

// missingConfig says which config file was looked for and how to give
// one.
func missingConfig(path string) string {
	return fmt.Sprintf("connx: config file not found: %s\n%s", absPath(path), giveConfig)
}

// missingDefaultConfig names both default locations.
func missingDefaultConfig() string {
	return fmt.Sprintf("connx: config file not found: neither %s nor %s exists\n"+
		"(without -config, connx reads %s in the working directory if it is there, else %s)\n%s",
		absPath(localConfig), systemConfig, localConfig, systemConfig, giveConfig)
}

const giveConfig = "Give a config file with -config FILE, or try ConnX without one: connx -demo\n"

func absPath(p string) string {
	if abs, err := filepath.Abs(p); err == nil {
		return abs
	}
	return p
}

// newLogger returns the process log: text or JSON lines on stderr, each
// carrying the process ID (during an upgrade, the old and the new process
// write to the same log).
func newLogger(format string, level slog.Level) *slog.Logger {
	opts := &slog.HandlerOptions{Level: level}
	var h slog.Handler
	if format == "json" {
		// Durations as "30s", as in the text format, not as nanoseconds.
		opts.ReplaceAttr = func(_ []string, a slog.Attr) slog.Attr {
			if a.Value.Kind() == slog.KindDuration {
				a.Value = slog.StringValue(a.Value.Duration().String())
			}
			return a
		}
		h = slog.NewJSONHandler(os.Stderr, opts)
	} else {
		h = slog.NewTextHandler(os.Stderr, opts)
	}
	return slog.New(h).With("pid", os.Getpid())
}

// app is a running ConnX: the data plane and what is wired around it.
type app struct {
	log      *slog.Logger
	path     string // the config file
	listen   string // the -listen override, re-applied on every reload
	srv      *proxy.Server
	exporter *metrics.Exporter
	admin    *admin.Server
	cfg      *config.Config // the active config, for reload's goroutine only (others: reloads.config())
	reloads  reloadStats
	upgrade  *upgrader
	notify   *notifier
	relisten chan struct{} // a reload changed the listen address
}

func newApp(cfg *config.Config, log *slog.Logger, path, listen string) (*app, error) {
	redisync.SetLogger(log) // before the first limiter joins a Redis
	srv, err := proxy.New(cfg, log)
	if err != nil {
		return nil, err
	}
	a := &app{log: log, path: path, listen: listen, srv: srv, cfg: cfg, relisten: make(chan struct{}, 1)}
	a.reloads.setConfig(cfg)
	a.upgrade = newUpgrader(log)
	a.notify = &notifier{log: log}
	if a.upgrade.child() {
		srv.JoinListeners()
	}
	a.exporter = metrics.New(metrics.Options{Version: version, Source: a.stats})
	srv.SetMetrics(a.exporter.AppendText)
	if err := a.setAccessLog(cfg); err != nil {
		return nil, err
	}
	if cfg.Admin.Listen != "" {
		a.admin = admin.New(admin.Options{
			Addr:    cfg.Admin.Listen,
			Stats:   a.stats,
			Config:  a.reloads.config,
			Metrics: a.exporter.Handler(),
			Log:     log,
			Join:    a.upgrade.child(),
		})
	}
	return a, nil
}

// stats is the stats.Source of metrics and the admin API.
func (a *app) stats(s *stats.Snapshot) {
	a.srv.Stats(s)
	a.reloads.fill(s)
	rs := redisync.Snapshot()
	s.RateLimit.Redis = stats.Redis{Active: rs.Active, Up: rs.Up, Instances: rs.Instances, Syncs: rs.Syncs, Failures: rs.Failures}
}

// setAccessLog starts the access log cfg asks for (or stops it).
func (a *app) setAccessLog(cfg *config.Config) error {
	al := &cfg.AccessLog
	if !al.Enabled {
		a.srv.SetAccessLog(nil)
		return nil
	}
	lg, err := accesslog.New(accesslog.Config{Output: al.Output, Format: al.Format, Sample: al.Sample, QueueSize: al.QueueSize})
	if err != nil {
		return fmt.Errorf("accessLog: %w", err)
	}
	a.srv.SetAccessLog(lg)
	return nil
}

// serve runs until a signal or a fatal error and returns the exit code.
func (a *app) serve(watcher *config.Watcher) int {
	// Signals are caught from here on, so a reload or stop right after
	// READY=1 (systemctl start; systemctl reload) finds a handler; one that
	// arrives while the engine starts waits for it.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGUSR1, syscall.SIGUSR2)
	done := make(chan error, 1)
	go func() { done <- a.srv.Serve() }()
	select {
	case <-a.srv.Ready():
	case err := <-done:
		fmt.Fprintln(os.Stderr, "connx:", err)
		a.upgrade.failed(err)
		return 1
	}
	if a.admin != nil {
		if err := a.admin.Start(); err != nil {
			fmt.Fprintln(os.Stderr, "connx:", err)
			a.upgrade.failed(err)
			return 1
		}
	}
	// systemd first: a successor names itself the main process before its
	// predecessor, told by upgrade.ready, starts to drain and exit.
	a.notify.ready(a.upgrade.child(), "serving on "+fmt.Sprint(a.srv.Addr()))
	a.upgrade.ready(a.srv.ListenerCount())

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	if watcher != nil {
		go func() {
			if err := watcher.Run(ctx, a.reload); err != nil {
				a.log.Error("config watcher stopped", "err", err)
			}
		}()
	}

	for {
		select {
		case err := <-done:
			if err != nil {
				fmt.Fprintln(os.Stderr, "connx:", err)
				return 1
			}
			return 0
		case <-a.relisten:
			// The successor binds the new address; this process closes the
			// old one and drains.
			a.notify.pause()
			if a.upgrade.start() == 0 {
				a.notify.resume()
				continue // logged; this process keeps serving the old address
			}
			cancel() // no reloads while draining
			a.log.Info("listen address moved to the successor; draining the old one")
			return a.drain(sigs, done, 0)
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				if watcher == nil {
					a.log.Warn("SIGHUP: no config file to reload (demo mode)")
					continue
				}
				a.log.Info("SIGHUP: reloading the config")
				watcher.Reread()
				continue
			case syscall.SIGUSR1:
				// Reopen the access log file (after logrotate moved it).
				cur := a.reloads.config()
				if err := a.setAccessLog(cur); err != nil {
					a.log.Error("SIGUSR1: reopening the access log", "err", err)
				} else if cur.AccessLog.Enabled {
					a.log.Info("SIGUSR1: access log reopened", "output", cur.AccessLog.Output)
				}
				continue
			case syscall.SIGUSR2:
				a.notify.pause()
				m := a.upgrade.start()
				if m == 0 {
					a.notify.resume()
					continue // logged; this process keeps serving
				}
				cancel()
				a.log.Info("upgrade: the successor is serving; draining", "successor_listeners", m)
				return a.drain(sigs, done, m)
			default:
				a.log.Info("shutting down: draining connections", "signal", sig.String(), "timeout", a.reloads.config().Server.ShutdownTimeout)
			}
			cancel()
			a.notify.stopping()
			return a.drain(sigs, done, 0)
		}
	}
}

// drain shuts down gracefully within server.shutdownTimeout; a second
// SIGINT or SIGTERM exits at once. successor is the number of listening
// sockets of an upgrade's successor to hand the port over to, or 0.
func (a *app) drain(sigs <-chan os.Signal, done <-chan error, successor int) int {
	ctx, cancel := context.WithTimeout(context.Background(), a.reloads.config().Server.ShutdownTimeout)
	defer cancel()
	go func() {
		for sig := range sigs {
			if sig == syscall.SIGINT || sig == syscall.SIGTERM {
				a.log.Warn("second signal: exiting now", "signal", sig.String())
				os.Exit(1)
			}
		}
	}()
	if a.admin != nil {
		_ = a.admin.Shutdown(ctx)
	}
	start := time.Now()
	var err error
	if successor > 0 {
		err = a.srv.HandOver(ctx, successor)
	} else {
		err = a.srv.Shutdown(ctx)
	}
	a.srv.SetAccessLog(nil) // flushes it
	if err != nil {
		a.log.Error("shutdown", "err", err)
	}
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
	a.log.Info("stopped", "drained_in", time.Since(start).Round(time.Millisecond))
	if err != nil && !errors.Is(err, context.DeadlineExceeded) {
		return 1
	}
	return 0
}

// reload applies a new version of the config file; an invalid one changes
// nothing. It runs on the watcher's goroutine, one call at a time.
func (a *app) reload(data []byte, err error) {
	a.notify.reloading()
	defer func() { a.notify.ready(false, "serving on "+fmt.Sprint(a.srv.Addr())) }()
	if err != nil {
		a.reloads.failed(err)
		a.log.Error("config reload: cannot read the file; keeping the running config", "err", err)
		return
	}
	cfg, err := config.Parse(data, a.path)
	if err == nil && a.listen != "" {
		err = overrideListen(cfg, a.listen)
	}
	if err == nil {
		err = a.srv.Reload(cfg)
	}
	if err == nil && cfg.AccessLog != a.cfg.AccessLog {
		err = a.setAccessLog(cfg)
	}
	if err != nil {
		a.reloads.failed(err)
		a.log.Error("config reload failed; keeping the running config", "err", err)
		return
	}
	if cfg.ListenAddr() != a.cfg.ListenAddr() {
		a.log.Info("server.host/server.port changed: starting a successor that listens on the new address",
			"from", a.cfg.ListenAddr(), "to", cfg.ListenAddr())
		select {
		case a.relisten <- struct{}{}:
		default:
		}
	}
	if cfg.Log.Format != a.cfg.Log.Format {
		a.log.Warn("log.format changed; it applies after a restart or upgrade (SIGUSR2)",
			"running", a.cfg.Log.Format, "configured", cfg.Log.Format)
	}
	if cfg.Admin.Listen != a.cfg.Admin.Listen {
		a.log.Warn("admin.listen changed; it applies after a restart or upgrade (SIGUSR2)",
			"running", a.cfg.Admin.Listen, "configured", cfg.Admin.Listen)
	}
	a.cfg = cfg
	a.reloads.succeeded(cfg)
	a.log.Info("config reloaded", "backends", len(cfg.Backends), "algorithm", cfg.LoadBalancing.Algorithm)
}

// overrideListen sets the listen address from a HOST:PORT flag value.
func overrideListen(cfg *config.Config, hostPort string) error {
	host, port, err := net.SplitHostPort(hostPort)
	if err != nil {
		return err
	}
	p, err := strconv.Atoi(port)
	if err != nil || p < 0 || p > 65535 {
		return fmt.Errorf("bad port %q", port)
	}
	cfg.Server.Host, cfg.Server.Port = host, p
	return nil
}
