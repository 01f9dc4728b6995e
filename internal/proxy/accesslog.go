package proxy

import (
	"time"

	"github.com/connx/connx/internal/accesslog"
	"github.com/connx/connx/internal/http1"
	"github.com/connx/connx/internal/stats"
)

// logRecord holds what the access log needs of a request beyond what the
// client keeps anyway. It is made only for sampled requests, when the
// access log is on (it copies the method and target: two allocations).
type logRecord struct {
	lg       *accesslog.Logger
	method   string
	path     string
	minor    int
	start    time.Time
	sent0    int64         // the client's bytes written before this response
	upstream time.Duration // request sent -> response head; -1 none
	id       string        // request ID, "" if none
}

func newLogRecord(lg *accesslog.Logger, cl *client, r *http1.Request) *logRecord {
	m := stats.Methods[cl.method]
	if cl.method == methodOther {
		m = string(r.Method)
	}
	return &logRecord{
		lg: lg, method: m, path: string(r.Path), minor: r.Minor,
		start: time.Unix(0, cl.startNs), sent0: cl.sent, upstream: -1,
	}
}

// write queues the line of a request that ended with status code.
func (lr *logRecord) write(cl *client, code int, be *backend, kind errKind, dur int64) {
	e := accesslog.Entry{
		Time:     lr.start,
		Client:   cl.ip,
		Method:   lr.method,
		Path:     lr.path,
		Proto:    "HTTP/1.1",
		Status:   code,
		BytesIn:  cl.bodySent,
		BytesOut: cl.sent + cl.pendingOut - lr.sent0,
		Duration: time.Duration(dur),
		Upstream: lr.upstream,
		ID:       lr.id,
		Conn:     cl.connID,
	}
	if lr.minor == 0 {
		e.Proto = "HTTP/1.0"
	}
	if cl.st != nil {
		e.Proto = "HTTP/2.0"
	}
	if be != nil {
		e.Backend = be.url
	}
	if cl.rt != nil {
		e.Route = cl.rt.label
	}
	if cl.pool != nil && cl.sn.routes != nil {
		e.Pool = cl.pool.name // with routes, which pool took it
	}
	if kind != errNone {
		e.Error = stats.ErrorKind(kind - 1).String()
	}
	lr.lg.Log(&e)
}
