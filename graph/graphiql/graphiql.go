// Package graphiql serves the GraphiQL explorer with every JavaScript and CSS
// file embedded in the binary, so the explorer works on machines without
// internet access and never loads code from a third-party CDN.
//
// Two handlers are provided and must both be mounted:
//
//   - Handler(title, endpoint, assetsBase) serves the HTML page. It answers
//     GET and HEAD at whatever path the caller mounts it on; the page loads
//     its scripts and stylesheet from assetsBase and sends queries to
//     endpoint (over HTTP POST) and subscriptions to the same URL over
//     ws:// or wss://.
//   - Assets() serves the embedded files. Mount it under the same prefix
//     that is passed as assetsBase, removing that prefix with
//     http.StripPrefix.
//
// Typical use, with the explorer sharing /graphql with the API and shown
// only to browsers (a browser navigation sends Accept: text/html, GraphQL
// clients and WebSocket upgrades do not):
//
//	explorer := graphiql.Handler("incidentd", "/graphql", "/graphiql/assets/")
//	mux.Handle("/graphiql/assets/",
//		http.StripPrefix("/graphiql/assets/", graphiql.Assets()))
//	mux.Handle("/graphql", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
//		if r.Method == http.MethodGet && strings.Contains(r.Header.Get("Accept"), "text/html") {
//			explorer.ServeHTTP(w, r)
//			return
//		}
//		gqlServer.ServeHTTP(w, r)
//	}))
//
// Authentication: the explorer opens with its Headers editor visible; the
// user pastes e.g. {"X-API-Key": "..."} there. Those headers are added to
// every HTTP request, and for subscriptions GraphiQL sends the same object
// as the graphql-ws connection_init payload (connectionParams), so a gqlgen
// websocket InitFunc must read the key from the init payload, not from the
// upgrade request's headers (browsers cannot set headers on WebSockets).
// Headers are never written to localStorage (neither by the editor nor by
// the query history), so API keys do not outlive the tab.
//
// The embedded files come from the npm registry; assets/VERSIONS.txt lists
// the exact packages, their integrity hashes and the sha256 of each file,
// and fetch-assets.sh regenerates the directory reproducibly.
package graphiql

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"html/template"
	"io/fs"
	"net/http"
	"net/url"
	"path"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"
)

// assetsFS holds the vendored bundles. The licenses/ directory and
// VERSIONS.txt ride along for provenance but are not served.
//
//go:embed assets
var assetsFS embed.FS

// Files the page references, in the order their <script> tags must run:
// React first, then ReactDOM, then the GraphiQL UMD bundle that reads the
// React and ReactDOM globals when it is evaluated.
const (
	cssFile      = "graphiql.min.css"
	reactFile    = "react.production.min.js"
	reactDOMFile = "react-dom.production.min.js"
	graphiqlFile = "graphiql.min.js"
)

// contentTypes is deliberately explicit instead of mime.TypeByExtension,
// whose answer depends on the host's /etc/mime.types; browsers refuse to run
// scripts served with the wrong type once nosniff is set.
var contentTypes = map[string]string{
	".js":  "text/javascript; charset=utf-8",
	".css": "text/css; charset=utf-8",
}

// asset is one servable embedded file.
type asset struct {
	body        []byte
	contentType string
	// version is a content hash. The page appends it to asset URLs so that
	// an upgrade of the bundles changes the URLs, which is what makes the
	// year-long immutable caching safe.
	version string

	gzipOnce sync.Once
	gzipBody []byte
}

// gzipped compresses the asset on first use only: most processes never
// serve the explorer, so paying for compression at start-up would be waste.
func (a *asset) gzipped() []byte {
	a.gzipOnce.Do(func() {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression) // the level is valid, so no error
		_, _ = zw.Write(a.body)                                  // writes to a bytes.Buffer cannot fail
		_ = zw.Close()
		a.gzipBody = buf.Bytes()
	})
	return a.gzipBody
}

// servable maps a file name (relative to assets/) to its contents; only
// files with a known content type are included.
var servable = loadAssets()

func loadAssets() map[string]*asset {
	sub, err := fs.Sub(assetsFS, "assets")
	if err != nil {
		panic(err) // cannot happen: "assets" is a valid, embedded path
	}
	out := make(map[string]*asset)
	err = fs.WalkDir(sub, ".", func(name string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		ct, ok := contentTypes[path.Ext(name)]
		if !ok {
			return nil
		}
		body, err := fs.ReadFile(sub, name)
		if err != nil {
			return err
		}
		sum := sha256.Sum256(body)
		out[name] = &asset{body: body, contentType: ct, version: hex.EncodeToString(sum[:8])}
		return nil
	})
	if err != nil {
		panic(fmt.Sprintf("graphiql: reading embedded assets: %v", err))
	}
	for _, name := range []string{cssFile, reactFile, reactDOMFile, graphiqlFile} {
		if out[name] == nil {
			// Fail at start-up rather than serve a page that cannot load.
			panic("graphiql: embedded asset missing: " + name + " (run graph/graphiql/fetch-assets.sh)")
		}
	}
	return out
}

// bootstrapJS starts GraphiQL. It is a constant, with its configuration
// read from data-* attributes, so that its hash can be computed once and
// allowed by the Content-Security-Policy instead of 'unsafe-inline'.
//
// GraphiQL.createFetcher posts queries to the endpoint and, for subscription
// operations, opens a graphql-ws client (bundled inside graphiql.min.js) on
// subscriptionUrl with connectionParams set to the headers typed in the
// Headers editor; a fresh client is created per subscription, so edited
// headers take effect on the next run.
//
// shouldPersistHeaders: false keeps the Headers editor (API keys) out of
// localStorage, but GraphiQL 4's history plugin still saves each run's
// headers under graphiql:queries and graphiql:favorites; the storage wrapper
// strips them there, so a key never outlives the tab.
const bootstrapJS = `
(function () {
  "use strict";
  var el = document.getElementById("graphiql");
  var url = new URL(el.getAttribute("data-endpoint"), window.location.href);
  var ws = new URL(url.href);
  ws.protocol = url.protocol === "https:" ? "wss:" : "ws:";
  var fetcher = GraphiQL.createFetcher({ url: url.href, subscriptionUrl: ws.href });
  var storage = {
    getItem: function (k) { return localStorage.getItem(k); },
    setItem: function (k, v) { localStorage.setItem(k, withoutHeaders(k, v)); },
    removeItem: function (k) { localStorage.removeItem(k); },
    clear: function () {
      Object.keys(localStorage).forEach(function (k) {
        if (k.indexOf("graphiql:") === 0) { localStorage.removeItem(k); }
      });
    },
    get length() { return localStorage.length; }
  };
  function withoutHeaders(key, value) {
    if (key !== "graphiql:queries" && key !== "graphiql:favorites") { return value; }
    try {
      var v = JSON.parse(value);
      (v.queries || []).forEach(function (q) { delete q.headers; });
      return JSON.stringify(v);
    } catch (e) {
      return value;
    }
  }
  ReactDOM.createRoot(el).render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    storage: storage,
    isHeadersEditorEnabled: true,
    defaultEditorToolsVisibility: "headers",
    shouldPersistHeaders: false
  }));
})();
`

// bootstrapHash is the CSP source expression allowing bootstrapJS.
var bootstrapHash = func() string {
	sum := sha256.Sum256([]byte(bootstrapJS))
	return "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"
}()

// The inline script is concatenated into the template source (not passed as
// data) so that html/template emits it byte for byte, keeping bootstrapHash
// valid. The <style> only sizes the container; GraphiQL's own CSS does the rest.
var page = template.Must(template.New("graphiql").Parse(`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>{{.Title}}</title>
<link rel="stylesheet" href="{{.CSS}}">
<style>html, body, #graphiql { height: 100%; margin: 0; }</style>
</head>
<body>
<div id="graphiql" data-endpoint="{{.Endpoint}}">Loading…</div>
{{range .Scripts}}<script src="{{.}}"></script>
{{end}}<script>` + bootstrapJS + `</script>
</body>
</html>
`))

// Handler returns the handler serving the explorer page for GET and HEAD
// (other methods get 405) at whatever path it is mounted on.
//
// title is the page title. endpoint is the GraphQL URL, absolute ("https://
// api.example.com/graphql") or relative to the page ("/graphql"); the
// subscription URL is the same with the scheme switched to ws/wss.
// assetsBase is the URL prefix under which Assets() is mounted, e.g.
// "/graphiql/assets/" (a missing trailing slash is added); it may also be
// relative to the page or an absolute URL on another origin.
//
// The page is rendered once, here; per request only the
// Content-Security-Policy is computed, because it names the request's host
// for WebSocket connections.
func Handler(title, endpoint, assetsBase string) http.Handler {
	if !strings.HasSuffix(assetsBase, "/") {
		assetsBase += "/"
	}
	ref := func(name string) string {
		return assetsBase + name + "?v=" + servable[name].version
	}
	var buf bytes.Buffer
	err := page.Execute(&buf, struct {
		Title, Endpoint, CSS string
		Scripts              []string
	}{
		Title:    title,
		Endpoint: endpoint,
		CSS:      ref(cssFile),
		Scripts:  []string{ref(reactFile), ref(reactDOMFile), ref(graphiqlFile)},
	})
	if err != nil {
		// Only plain strings are interpolated, so this is a programming error.
		panic(fmt.Sprintf("graphiql: rendering page: %v", err))
	}
	return &pageHandler{
		body:          buf.Bytes(),
		assetsOrigin:  originOf(assetsBase),
		endpointHTTP:  originOf(endpoint),
		endpointWSURL: wsOriginOf(endpoint),
	}
}

type pageHandler struct {
	body []byte
	// Origins to add to the CSP when endpoint or assetsBase point at another
	// origin; empty when they are relative (covered by 'self' and the
	// request host).
	assetsOrigin, endpointHTTP, endpointWSURL string
}

func (h *pageHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", "text/html; charset=utf-8")
	hd.Set("Content-Length", strconv.Itoa(len(h.body)))
	// The page is tiny and names versioned assets, so it is always
	// revalidated; callers that pick the explorer by Accept on a shared URL
	// need caches to key on Accept too.
	hd.Set("Cache-Control", "no-cache")
	hd.Add("Vary", "Accept")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Set("X-Frame-Options", "DENY")
	hd.Set("Referrer-Policy", "no-referrer")
	hd.Set("Content-Security-Policy", h.csp(r.Host))
	w.WriteHeader(http.StatusOK)
	if r.Method != http.MethodHead {
		_, _ = w.Write(h.body) // nothing useful to do if the client went away
	}
}

// hostRE accepts host names, IPv4 and bracketed IPv6 literals with an
// optional port. The Host header is client-controlled and is copied into
// the CSP, so anything that could smuggle in another directive is refused.
var hostRE = regexp.MustCompile(`^(?:[A-Za-z0-9.-]+|\[[0-9A-Fa-f:.]+\])(?::[0-9]{1,5})?$`)

// csp builds the Content-Security-Policy for a request to host.
//
//   - script-src: the embedded bundles ('self') and the bootstrap script by
//     hash; GraphiQL needs neither eval nor other inline scripts.
//   - style-src 'unsafe-inline': GraphiQL's UI components (Radix, CodeMirror)
//     inject <style> elements and style attributes at run time.
//   - font-src/img-src data:: the stylesheet embeds its fonts and a few
//     images as data: URLs.
//   - connect-src: 'self' covers HTTP; ws:/wss: on the same host are listed
//     explicitly because older browsers do not let 'self' match WebSockets.
func (h *pageHandler) csp(host string) string {
	connect := []string{"'self'"}
	if hostRE.MatchString(host) {
		connect = append(connect, "ws://"+host, "wss://"+host)
	}
	connect = appendNonEmpty(connect, h.endpointHTTP, h.endpointWSURL)
	directives := []string{
		"default-src 'none'",
		strings.Join(appendNonEmpty([]string{"script-src 'self'", bootstrapHash}, h.assetsOrigin), " "),
		strings.Join(appendNonEmpty([]string{"style-src 'self' 'unsafe-inline'"}, h.assetsOrigin), " "),
		strings.Join(appendNonEmpty([]string{"font-src 'self' data:"}, h.assetsOrigin), " "),
		"img-src 'self' data:",
		"connect-src " + strings.Join(connect, " "),
		"base-uri 'none'",
		"form-action 'none'",
		"frame-ancestors 'none'",
	}
	return strings.Join(directives, "; ")
}

func appendNonEmpty(list []string, more ...string) []string {
	for _, s := range more {
		if s != "" {
			list = append(list, s)
		}
	}
	return list
}

// originOf returns scheme://host for an absolute http(s) URL with a safe
// host, and "" otherwise (relative URLs are same-origin).
func originOf(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || !hostRE.MatchString(u.Host) {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

// wsOriginOf is originOf with the scheme the page's subscription client
// will use for that endpoint.
func wsOriginOf(raw string) string {
	o := originOf(raw)
	switch {
	case strings.HasPrefix(o, "https://"):
		return "wss://" + strings.TrimPrefix(o, "https://")
	case strings.HasPrefix(o, "http://"):
		return "ws://" + strings.TrimPrefix(o, "http://")
	}
	return ""
}

// Assets returns the handler serving the embedded JavaScript and CSS files
// by bare file name (e.g. "graphiql.min.js"); wrap it in http.StripPrefix
// with the prefix passed to Handler as assetsBase. Unknown names, including
// directories and the provenance files, get 404. Responses carry a one-year
// immutable Cache-Control (the page's URLs carry a content hash), an ETag,
// and are gzip-compressed for clients that accept it.
func Assets() http.Handler {
	return http.HandlerFunc(serveAsset)
}

func serveAsset(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		w.Header().Set("Allow", "GET, HEAD")
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	a := servable[strings.TrimPrefix(r.URL.Path, "/")]
	if a == nil {
		http.NotFound(w, r)
		return
	}
	hd := w.Header()
	hd.Set("Content-Type", a.contentType)
	hd.Set("Cache-Control", "public, max-age=31536000, immutable")
	hd.Set("X-Content-Type-Options", "nosniff")
	hd.Add("Vary", "Accept-Encoding")
	body, etag := a.body, `"`+a.version+`"`
	// Range requests are served uncompressed so that byte ranges refer to
	// the file itself; browsers do not send them for scripts anyway.
	if r.Header.Get("Range") == "" && acceptsGzip(r.Header.Get("Accept-Encoding")) {
		body, etag = a.gzipped(), `"`+a.version+`-gz"`
		hd.Set("Content-Encoding", "gzip")
	}
	hd.Set("ETag", etag)
	// ServeContent handles HEAD, If-None-Match and Range; the zero modtime
	// makes it skip Last-Modified, which the ETag supersedes.
	http.ServeContent(w, r, "", time.Time{}, bytes.NewReader(body))
}

// acceptsGzip reports whether an Accept-Encoding value allows gzip, honouring
// an explicit "gzip;q=0" refusal.
func acceptsGzip(header string) bool {
	for _, part := range strings.Split(header, ",") {
		coding, params, _ := strings.Cut(strings.TrimSpace(part), ";")
		if !strings.EqualFold(strings.TrimSpace(coding), "gzip") {
			continue
		}
		for _, p := range strings.Split(params, ";") {
			k, v, ok := strings.Cut(strings.TrimSpace(p), "=")
			if ok && strings.EqualFold(strings.TrimSpace(k), "q") {
				if q, err := strconv.ParseFloat(strings.TrimSpace(v), 64); err == nil && q == 0 {
					return false
				}
			}
		}
		return true
	}
	return false
}
