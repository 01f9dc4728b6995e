package route

import (
	"strings"
	"testing"

	"github.com/connx/connx/internal/http1"
)

// req is a request as Lookup sees it; headers are "Name: value" lines.
type req struct {
	host, path, method string
	headers            []string
}

func (r req) fields() []http1.Header {
	hs := make([]http1.Header, len(r.headers))
	for i, line := range r.headers {
		name, value, _ := strings.Cut(line, ":")
		hs[i] = http1.Header{Name: []byte(name), Value: []byte(strings.TrimSpace(value))}
	}
	return hs
}

func (r req) lookup(tab *Table) int {
	method := r.method
	if method == "" {
		method = "GET"
	}
	return tab.Lookup([]byte(r.host), []byte(r.path), []byte(method), r.fields())
}

func mustCompile(t testing.TB, routes []Route) *Table {
	t.Helper()
	tab, err := Compile(routes)
	if err != nil {
		t.Fatalf("Compile: %v", err)
	}
	return tab
}

// routesOf builds unnamed routes from matches.
func routesOf(ms ...Match) []Route {
	rs := make([]Route, len(ms))
	for i, m := range ms {
		rs[i].Match = m
	}
	return rs
}
