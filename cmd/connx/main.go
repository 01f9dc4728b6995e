// Command connx is the ConnX reverse proxy and load balancer.
//
//	connx -config configs/config.yaml   run with a config file
//	connx -demo                         run on 127.0.0.1:8080 with three demo backends
//	connx -check -config FILE           validate a config and exit 0 or 1
//	connx -version                      print the version
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // served only with -pprof
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"syscall"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/demo"
	"github.com/connx/connx/internal/proxy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run(os.Args[1:]))
}

func run(args []string) int {
	fs := flag.NewFlagSet("connx", flag.ContinueOnError)
	cfgPath := fs.String("config", "configs/config.yaml", "path to the YAML config file")
	demoMode := fs.Bool("demo", false, "run on 127.0.0.1:8080 with three in-process demo backends (no config needed)")
	check := fs.Bool("check", false, "validate the config file and exit (0 valid, 1 invalid)")
	showVersion := fs.Bool("version", false, "print the version and exit")
	pprofAddr := fs.String("pprof", "", "serve net/http/pprof on this address (e.g. 127.0.0.1:6060); for debugging")
	listen := fs.String("listen", "", "override server.host and server.port with HOST:PORT (port 0: any free port)")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if *showVersion {
		fmt.Printf("connx %s (%s)\n", version, runtime.Version())
		return 0
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, nil))

	var cfg *config.Config
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
		log.Info("demo mode: three backends started", "backends", backends.URLs)
		fmt.Fprintln(os.Stderr, "connx demo: try  curl http://127.0.0.1:8080/  (repeat it to see round-robin)")
	} else {
		var err error
		cfg, err = config.Load(*cfgPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if *check {
			fmt.Printf("%s: ok (%d backends, %s)\n", *cfgPath, len(cfg.Backends), cfg.LoadBalancing.Algorithm)
			return 0
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
	srv, err := proxy.New(cfg, log)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connx:", err)
		return 1
	}
	done := make(chan error, 1)
	go func() { done <- srv.Serve() }()

	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	select {
	case err := <-done:
		if err != nil {
			fmt.Fprintln(os.Stderr, "connx:", err)
			return 1
		}
		return 0
	case sig := <-sigs:
		log.Info("shutting down", "signal", sig.String())
	}
	ctx, cancel := context.WithTimeout(context.Background(), cfg.Server.ShutdownTimeout+time.Second)
	defer cancel()
	if err := srv.Stop(ctx); err != nil {
		log.Error("shutdown", "err", err)
		return 1
	}
	<-done
	return 0
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
