// Package demo runs the in-process backends behind `connx -demo`, so a new
// user sees ConnX balance traffic without writing a config or starting
// servers.
package demo

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"strconv"
	"time"

	"github.com/connx/connx/internal/config"
)

// Backends are the demo's running backend servers.
type Backends struct {
	servers []*http.Server
	URLs    []string // http://127.0.0.1:port of each, in order
}

// Start starts n backends on loopback ports chosen by the kernel. Each
// answers every request with a line naming itself, the method and the path.
func Start(n int) (*Backends, error) {
	b := &Backends{}
	for i := 1; i <= n; i++ {
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			b.Close()
			return nil, err
		}
		name := "demo-backend-" + strconv.Itoa(i)
		addr := ln.Addr().String()
		srv := &http.Server{Handler: Handler(name, addr), ReadHeaderTimeout: 10 * time.Second}
		go func() { _ = srv.Serve(ln) }()
		b.servers = append(b.servers, srv)
		b.URLs = append(b.URLs, "http://"+addr)
	}
	return b, nil
}

// Handler answers every request with a line naming the backend (name,
// also in the X-Served-By header), its address, the method and the path.
func Handler(name, addr string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		w.Header().Set("X-Served-By", name)
		fmt.Fprintf(w, "Hello from %s (%s): %s %s\n", name, addr, r.Method, r.URL.RequestURI())
	})
}

// Config returns a configuration that listens on listen and balances
// round-robin over the backends.
func (b *Backends) Config(host string, port int) *config.Config {
	cfg := config.Default()
	cfg.Server.Host = host
	cfg.Server.Port = port
	for _, u := range b.URLs {
		cfg.Backends = append(cfg.Backends, config.Backend{URL: u, Weight: 1})
	}
	return cfg
}

// Close stops every backend.
func (b *Backends) Close() {
	for _, s := range b.servers {
		_ = s.Shutdown(context.Background())
	}
}
