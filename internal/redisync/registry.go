package redisync

import (
	"log/slog"
	"net"
	"sync"
	"time"

	"github.com/connx/connx/internal/ratelimit"
)

// registry holds the process's Clients, one per Options, so that every
// Limiter configured with the same Redis, across reloads and routes,
// shares one connection and one goroutine.
var registry struct {
	mu      sync.Mutex
	clients map[Options]*Client
	log     *slog.Logger
}

// SetLogger sets the logger of Clients that For makes from now on; nil is
// slog.Default(). cmd/connx calls it once at start-up.
func SetLogger(l *slog.Logger) {
	registry.mu.Lock()
	registry.log = l
	registry.mu.Unlock()
}

// For returns the process's Client for o, made at its first use, as a
// ratelimit.Store; nil (no Store) when o.Address is empty. A Client lives
// as long as the process, but runs a goroutine and holds a connection
// only while a Limiter uses it.
func For(o Options) ratelimit.Store {
	if o.Address == "" {
		return nil
	}
	o = o.withDefaults()
	registry.mu.Lock()
	defer registry.mu.Unlock()
	c := registry.clients[o]
	if c == nil {
		if registry.clients == nil {
			registry.clients = map[Options]*Client{}
		}
		c = New(o, registry.log)
		registry.clients[o] = c
	}
	return c
}

// Snapshot sums the Status of the process's active Clients (those that
// For made and a Limiter uses): Up only if all are up, Instances the
// largest. Active is false when no Limiter uses Redis. Syncs and Failures
// count over every Client For made, so that they never go down.
func Snapshot() Status {
	registry.mu.Lock()
	defer registry.mu.Unlock()
	var s Status
	up := true
	for _, c := range registry.clients {
		cs := c.Status()
		s.Syncs += cs.Syncs
		s.Failures += cs.Failures
		if !cs.Active {
			continue
		}
		s.Active = true
		up = up && cs.Up
		s.Instances = max(s.Instances, cs.Instances)
	}
	s.Up = s.Active && up
	return s
}

// netDialer bounds connecting (and the handshake: AUTH, SELECT) by
// timeout.
func netDialer(timeout time.Duration) net.Dialer {
	return net.Dialer{Timeout: timeout, KeepAlive: 15 * time.Second}
}
