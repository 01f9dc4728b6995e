// Package metrics is ConnX's Prometheus exporter, and the only package
// that imports the Prometheus client libraries.
//
// An [Exporter] owns a registry holding one collector for ConnX's own
// metrics, plus the standard Go runtime and process collectors. ConnX's
// collector does no work per request: at each scrape it asks a
// [stats.Source] for a fresh [stats.Snapshot] (the data plane sums its
// per-loop counters then) and turns the snapshot into constant metrics.
// The metric names and meanings are documented in docs/metrics.md.
//
// The exposition is served two ways: [Exporter.Handler] for a net/http
// listener (the admin port), and [Exporter.AppendText] for the main-port
// metrics route that the event loops answer themselves.
package metrics

import (
	"bytes"
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	"github.com/prometheus/common/expfmt"

	"github.com/connx/connx/internal/stats"
)

// ContentType is the media type of the exposition [Exporter.AppendText]
// renders: the Prometheus text format, version 0.0.4.
const ContentType = "text/plain; version=0.0.4; charset=utf-8"

// textFormat is the format AppendText renders; it is ContentType with the
// client library's default name escaping, which is what Handler serves to
// a scraper that sends no Accept header.
var textFormat = expfmt.NewFormat(expfmt.TypeTextPlain)

// Options configure an Exporter. The zero value is usable: it exports
// version "unknown" and, without a Source, only the metrics that do not
// depend on a snapshot's contents (every error kind at 0, build info).
type Options struct {
	// Version is the build version reported by connx_build_info; ""
	// reports "unknown".
	Version string
	// Source fills the snapshot that each scrape renders. It is called
	// once per scrape, on the scraping goroutine, possibly concurrently
	// with other scrapes; see [stats.Source].
	Source stats.Source
}

// Exporter renders ConnX's metrics. Its methods are safe for concurrent
// use; it keeps no state between scrapes.
type Exporter struct {
	reg     *prometheus.Registry
	handler http.Handler
}

// New returns an exporter for o. It registers ConnX's collector and the
// standard Go runtime (go_*) and process (process_*) collectors in a
// registry of its own; nothing is registered globally.
func New(o Options) *Exporter {
	reg := prometheus.NewRegistry()
	reg.MustRegister(
		newCollector(o),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	return &Exporter{
		reg: reg,
		// No promhttp instrumentation: the admin /metrics serves exactly
		// what the main-port route serves.
		handler: promhttp.HandlerFor(reg, promhttp.HandlerOpts{}),
	}
}

// Handler returns a handler that serves a scrape of e's registry, with
// the content negotiation of promhttp (text 0.0.4 by default, protobuf on
// request, gzip when accepted). A failed scrape answers 500.
func (e *Exporter) Handler() http.Handler { return e.handler }

// AppendText scrapes e's registry, appends the exposition in the text
// format 0.0.4 ([ContentType]) to dst and returns the extended buffer.
// On error it returns dst unchanged (to its length) and the error; no
// partial exposition is served, as with Handler. The result aliases dst
// when dst has room; AppendText keeps no reference to it.
func (e *Exporter) AppendText(dst []byte) ([]byte, error) {
	mfs, err := e.reg.Gather()
	if err != nil {
		return dst, err
	}
	buf := bytes.NewBuffer(dst)
	enc := expfmt.NewEncoder(buf, textFormat)
	for _, mf := range mfs {
		if err := enc.Encode(mf); err != nil {
			return dst, err
		}
	}
	return buf.Bytes(), nil
}
