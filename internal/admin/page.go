package admin

import (
	"bytes"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"time"
)

// statusHTML is the status page: one file, inline CSS and JavaScript, no
// external assets. It reads its settings from data attributes of <body>,
// filled in by renderPage.
//
//go:embed status.html
var statusHTML []byte

// pageCSP is the status page's Content-Security-Policy: only its own
// inline script and style (by hash) run, and it may only fetch from its
// own origin.
var pageCSP = "default-src 'none'; connect-src 'self'; img-src 'self' data:; " +
	"script-src " + inlineHash("script") + "; style-src " + inlineHash("style") + "; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

// inlineHash is the CSP source expression for the content of the one
// <tag> element of statusHTML.
func inlineHash(tag string) string {
	open, end := []byte("<"+tag+">"), []byte("</"+tag+">")
	i := bytes.Index(statusHTML, open)
	j := bytes.Index(statusHTML, end)
	if i < 0 || j < i || bytes.Count(statusHTML, open) != 1 {
		panic("admin: status.html must have exactly one plain <" + tag + "> element")
	}
	sum := sha256.Sum256(statusHTML[i+len(open) : j])
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}

// renderPage fills the page's settings: the poll interval and whether
// /metrics exists (for the footer link).
func renderPage(refresh time.Duration, metrics bool) []byte {
	p := bytes.Replace(statusHTML, []byte("{{refresh_ms}}"), []byte(strconv.FormatInt(refresh.Milliseconds(), 10)), 1)
	return bytes.Replace(p, []byte("{{metrics}}"), []byte(strconv.FormatBool(metrics)), 1)
}

func (s *Server) serveStatusPage(w http.ResponseWriter, _ *http.Request) {
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", pageCSP)
	h.Set("X-Frame-Options", "DENY")
	h.Set("Referrer-Policy", "no-referrer")
	w.Write(s.page)
}
