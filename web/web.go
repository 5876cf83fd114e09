// Package web is the public face of a published status: the embeddable
// widget script (GET /widget.js) and the hosted status page
// (GET /status/{tenant}), with their template and assets embedded. It
// depends on model, auth and the REST door's HTTP rules (conditional GETs).
package web

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/base64"
	"net/http"
	"strconv"
	"strings"

	"github.com/incidentd/incidentd/rest"
)

// WidgetJS is the widget script as served.
//
//go:embed widget.js
var WidgetJS []byte

// asset is a static file with its validator and, once, its gzip encoding.
type asset struct {
	body, gz    []byte
	etag, ctype string
	cache       string
}

func newAsset(body []byte, ctype, cache string) *asset {
	sum := sha256.Sum256(body)
	a := &asset{body: body, ctype: ctype, cache: cache,
		etag: `"` + base64.RawURLEncoding.EncodeToString(sum[:18]) + `"`}
	var buf bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // a valid level: no error
	_, _ = zw.Write(body)                                    // writes to memory do not fail
	_ = zw.Close()
	a.gz = buf.Bytes()
	return a
}

// Widget serves the widget script. The path has no version in it, so
// caches keep it briefly and revalidate by ETag (a 304 costs nothing).
func Widget() http.Handler {
	a := newAsset(WidgetJS, "application/javascript; charset=utf-8", "public, max-age=300")
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if !getOrHead(w, r) {
			return
		}
		h := w.Header()
		h.Set("Content-Type", a.ctype)
		h.Set("Cache-Control", a.cache)
		h.Set("ETag", a.etag)
		h.Add("Vary", "Accept-Encoding")
		// Pages of any origin embed it; a page that isolates itself
		// (Cross-Origin-Embedder-Policy) may still load it.
		h.Set("Cross-Origin-Resource-Policy", "cross-origin")
		if rest.NoneMatch(r.Header.Get("If-None-Match"), a.etag) {
			w.WriteHeader(http.StatusNotModified)
			return
		}
		body := a.body
		if acceptsGzip(r.Header.Get("Accept-Encoding")) {
			h.Set("Content-Encoding", "gzip")
			body = a.gz
		}
		h.Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodHead {
			return
		}
		_, _ = w.Write(body)
	})
}

// getOrHead answers 405 to other methods (mounts receive every method).
func getOrHead(w http.ResponseWriter, r *http.Request) bool {
	if r.Method == http.MethodGet || r.Method == http.MethodHead {
		return true
	}
	w.Header().Set("Allow", "GET, HEAD")
	http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
	return false
}

// acceptsGzip reports whether Accept-Encoding lists gzip with a non-zero q.
func acceptsGzip(header string) bool {
	for part := range strings.SplitSeq(header, ",") {
		name, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(name), "gzip") {
			continue
		}
		q := strings.ReplaceAll(strings.TrimSpace(params), " ", "")
		return !(q == "q=0" || q == "q=0.0" || q == "q=0.00" || q == "q=0.000")
	}
	return false
}
