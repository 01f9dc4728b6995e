package main

import (
	"sync"
	"sync/atomic"
	"time"

	"github.com/connx/connx/internal/config"
	"github.com/connx/connx/internal/stats"
)

// reloadStats counts config reloads for the metrics and keeps the active
// config for the admin API. Safe for concurrent use.
type reloadStats struct {
	active atomic.Pointer[config.Config]

	mu sync.Mutex
	st stats.Reloads
}

func (r *reloadStats) setConfig(c *config.Config) { r.active.Store(c) }

// config returns the active config.
func (r *reloadStats) config() *config.Config { return r.active.Load() }

func (r *reloadStats) succeeded(c *config.Config) {
	r.active.Store(c)
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Success++
	r.st.LastSuccess = time.Now()
	r.st.LastError = ""
}

func (r *reloadStats) failed(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.st.Failure++
	r.st.LastFailure = time.Now()
	r.st.LastError = err.Error()
}

func (r *reloadStats) fill(s *stats.Snapshot) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s.Reloads = r.st
}
