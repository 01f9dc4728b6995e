package stats

import (
	"slices"
	"strings"
	"testing"

	"github.com/connx/connx/internal/discovery"
)

// TestDiscoveryStates: DiscoveryStates are the names of the watcher's
// states, in their order.
func TestDiscoveryStates(t *testing.T) {
	for i, name := range DiscoveryStates {
		if got := discovery.State(i).String(); got != name {
			t.Errorf("DiscoveryStates[%d] = %q, discovery.State(%d) is %q", i, name, i, got)
		}
	}
	if got := discovery.State(len(DiscoveryStates)).String(); !strings.HasPrefix(got, "State(") {
		t.Errorf("discovery has a state %q that DiscoveryStates lacks", got)
	}
}

func TestPoolOf(t *testing.T) {
	for _, tc := range []struct {
		pool, backend, want string
	}{
		{"api", "http://a", "api"},
		{DefaultPool, "http://a", DefaultPool},
		{"", "http://a", DefaultPool}, // a data plane that predates pools
		{"", NoBackend, ""},           // answered before choosing a pool
		{"api", NoBackend, "api"},     // e.g. 503: no backend of api available
	} {
		if got := PoolOf(tc.pool, tc.backend); got != tc.want {
			t.Errorf("PoolOf(%q, %q) = %q, want %q", tc.pool, tc.backend, got, tc.want)
		}
	}
}

func TestPoolList(t *testing.T) {
	up := func(pool, name string, up bool) Backend { return Backend{Pool: pool, Name: name, Up: up} }
	pools := []Pool{{Name: DefaultPool, Backends: 1, Up: 1}, {Name: "api", Backends: 2, Up: 0, Panic: true}}
	for _, tc := range []struct {
		name string
		s    Snapshot
		want []Pool
	}{
		{"filled", Snapshot{Pools: pools, Pool: pools[0]}, pools},
		{"no pools, no backends", Snapshot{}, []Pool{{Name: DefaultPool}}},
		{"predates pools", Snapshot{
			Pool:     Pool{Panic: true, Panics: 3},
			Backends: []Backend{up("", "http://a", true), up("", "http://b", false), up("", "http://c", true)},
		}, []Pool{{Name: DefaultPool, Backends: 3, Up: 2, Panic: true, Panics: 3}}},
		{"counts given", Snapshot{
			Pool:     Pool{Name: DefaultPool, Backends: 5, Up: 4},
			Backends: []Backend{up(DefaultPool, "http://a", true)},
		}, []Pool{{Name: DefaultPool, Backends: 5, Up: 4}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.s.PoolList(); !slices.Equal(got, tc.want) {
				t.Errorf("PoolList() = %+v, want %+v", got, tc.want)
			}
		})
	}
}
