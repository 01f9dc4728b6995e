// Command grpcbackend is the gRPC server behind the proxies in
// scripts/grpc-bench.sh: grpc-go with one unary method, test.Echo/Unary,
// which answers every request message with itself. Messages pass through
// a codec that keeps their bytes as they are, so no generated code is
// needed (the proxies never look inside them). It is a benchmark tool, not
// part of the connx binary.
//
// Usage:
//
//	go run ./scripts/grpcbackend -listen 127.0.0.1:19801
//
// On SIGTERM or SIGINT it prints the number of calls it served and exits.
package main

import (
	"context"
	"flag"
	"fmt"
	"log"
	"net"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"

	"google.golang.org/grpc"
)

// rawCodec passes *[]byte messages through untouched.
type rawCodec struct{}

func (rawCodec) Marshal(v any) ([]byte, error) { return *v.(*[]byte), nil }
func (rawCodec) Unmarshal(data []byte, v any) error {
	b := v.(*[]byte)
	*b = append((*b)[:0], data...)
	return nil
}
func (rawCodec) Name() string { return "proto" }

func main() {
	listen := flag.String("listen", "127.0.0.1:19801", "address to serve on")
	flag.Parse()
	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		log.Fatal(err)
	}
	var calls atomic.Int64
	srv := grpc.NewServer(grpc.ForceServerCodec(rawCodec{}))
	srv.RegisterService(&grpc.ServiceDesc{
		ServiceName: "test.Echo",
		HandlerType: (*any)(nil),
		Methods: []grpc.MethodDesc{{MethodName: "Unary", Handler: func(_ any, _ context.Context, dec func(any) error, _ grpc.UnaryServerInterceptor) (any, error) {
			calls.Add(1)
			var in []byte
			if err := dec(&in); err != nil {
				return nil, err
			}
			return &in, nil
		}}},
	}, struct{}{})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	go func() {
		<-sig
		fmt.Printf("calls %d\n", calls.Load())
		os.Exit(0)
	}()
	if err := srv.Serve(ln); err != nil {
		log.Fatal(err)
	}
}
