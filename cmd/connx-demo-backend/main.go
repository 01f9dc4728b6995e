// Command connx-demo-backend is the example backend of the container
// image's compose file (compose.yaml): an HTTP server that answers every
// request with a line naming itself, as the backends of `connx -demo` do,
// so that `curl localhost:8080` shows ConnX taking turns among them.
//
//	connx-demo-backend -listen :8080 -name backend1
//
// SIGTERM and SIGINT stop it gracefully.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/connx/connx/internal/demo"
)

func main() {
	listen := flag.String("listen", ":8080", "`ADDR` to listen on")
	name := flag.String("name", "", "the backend's `NAME` in its answers (default: the host name)")
	flag.Parse()
	if flag.NArg() > 0 {
		fmt.Fprintf(os.Stderr, "connx-demo-backend: unexpected argument %q\n", flag.Arg(0))
		os.Exit(2)
	}
	if *name == "" {
		*name, _ = os.Hostname()
	}
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		fmt.Fprintln(os.Stderr, "connx-demo-backend:", err)
		os.Exit(1)
	}
	srv := &http.Server{Handler: demo.Handler(*name, ln.Addr().String()), ReadHeaderTimeout: 10 * time.Second}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	go func() {
		<-ctx.Done()
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(sctx)
	}()
	fmt.Fprintf(os.Stderr, "connx-demo-backend %s listening on %s\n", *name, ln.Addr())
	if err := srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(os.Stderr, "connx-demo-backend:", err)
		os.Exit(1)
	}
}
