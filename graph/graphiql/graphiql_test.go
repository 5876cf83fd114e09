package graphiql

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

const testAssetsBase = "/graphiql/assets/"

// newMux mounts the package the way the package documentation tells callers to.
func newMux(title, endpoint string) *http.ServeMux {
	mux := http.NewServeMux()
	mux.Handle("/graphql", Handler(title, endpoint, testAssetsBase))
	mux.Handle(testAssetsBase, http.StripPrefix(testAssetsBase, Assets()))
	return mux
}

func get(t *testing.T, h http.Handler, target string, header http.Header) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest(http.MethodGet, target, nil)
	req.Host = "incidentd.test:8080"
	for k, v := range header {
		req.Header[k] = v
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	return rec
}

var refRE = regexp.MustCompile(`(?:src|href)="([^"]+)"`)

// assetRefs returns the script and stylesheet URLs referenced by the page.
func assetRefs(page string) []string {
	var refs []string
	for _, m := range refRE.FindAllStringSubmatch(page, -1) {
		refs = append(refs, m[1])
	}
	return refs
}

func TestPage(t *testing.T) {
	mux := newMux(`incidentd <b>"&`, "/graphql")
	rec := get(t, mux, "/graphql", http.Header{"Accept": {"text/html"}})

	if rec.Code != http.StatusOK {
		t.Fatalf("status = %d, want 200", rec.Code)
	}
	h := rec.Header()
	if ct := h.Get("Content-Type"); ct != "text/html; charset=utf-8" {
		t.Errorf("Content-Type = %q", ct)
	}
	for k, want := range map[string]string{
		"X-Content-Type-Options": "nosniff",
		"X-Frame-Options":        "DENY",
		"Referrer-Policy":        "no-referrer",
	} {
		if got := h.Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}

	csp := h.Get("Content-Security-Policy")
	for _, want := range []string{
		"default-src 'none'",
		"script-src 'self' " + bootstrapHash,
		"style-src 'self' 'unsafe-inline'",
		"connect-src 'self' ws://incidentd.test:8080 wss://incidentd.test:8080",
		"frame-ancestors 'none'",
	} {
		if !strings.Contains(csp, want) {
			t.Errorf("CSP %q lacks %q", csp, want)
		}
	}
	if scriptSrc := directive(csp, "script-src"); strings.Contains(scriptSrc, "unsafe") {
		t.Errorf("script-src must not need unsafe-*: %q", scriptSrc)
	}

	body := rec.Body.String()
	if !strings.Contains(body, "<title>incidentd &lt;b&gt;&#34;&amp;</title>") {
		t.Errorf("title not escaped:\n%s", body)
	}
	if !strings.Contains(body, `data-endpoint="/graphql"`) {
		t.Errorf("endpoint missing:\n%s", body)
	}

	// The hash in the CSP must match the inline script exactly as the
	// browser sees it, or the explorer would be blocked.
	i := strings.LastIndex(body, "<script>")
	j := strings.LastIndex(body, "</script>")
	if i < 0 || j < i {
		t.Fatalf("no inline script in page:\n%s", body)
	}
	sum := sha256.Sum256([]byte(body[i+len("<script>") : j]))
	if got := "'sha256-" + base64.StdEncoding.EncodeToString(sum[:]) + "'"; got != bootstrapHash {
		t.Errorf("inline script hash %s, CSP allows %s", got, bootstrapHash)
	}

	refs := assetRefs(body)
	if len(refs) != 4 {
		t.Fatalf("page references %d assets, want 4: %q", len(refs), refs)
	}
	for _, ref := range refs {
		if !strings.HasPrefix(ref, testAssetsBase) {
			t.Errorf("asset %q is not under %q", ref, testAssetsBase)
		}
	}
}

// directive returns the named CSP directive, or "".
func directive(csp, name string) string {
	for _, d := range strings.Split(csp, ";") {
		d = strings.TrimSpace(d)
		if strings.HasPrefix(d, name+" ") {
			return d
		}
	}
	return ""
}

func TestPageHeadAndMethods(t *testing.T) {
	h := Handler("t", "/graphql", testAssetsBase)

	get := httptest.NewRecorder()
	h.ServeHTTP(get, httptest.NewRequest(http.MethodGet, "/", nil))
	req := httptest.NewRequest(http.MethodHead, "/", nil)
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if csp := get.Header().Get("Content-Security-Policy"); rec.Code != http.StatusOK || rec.Body.Len() != 0 || csp == "" || rec.Header().Get("Content-Security-Policy") != csp {
		t.Errorf("HEAD: status %d, %d body bytes, CSP %q", rec.Code, rec.Body.Len(), rec.Header().Get("Content-Security-Policy"))
	}

	req = httptest.NewRequest(http.MethodPost, "/", strings.NewReader("{}"))
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != http.StatusMethodNotAllowed || rec.Header().Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: status %d, Allow %q", rec.Code, rec.Header().Get("Allow"))
	}
}

func TestCSPHostAndOrigins(t *testing.T) {
	// A Host header that tries to inject a directive must not reach the CSP.
	h := Handler("t", "/graphql", testAssetsBase)
	req := httptest.NewRequest(http.MethodGet, "/", nil)
	req.Host = "evil.test; script-src *"
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	csp := rec.Header().Get("Content-Security-Policy")
	if strings.Contains(csp, "evil") || strings.Contains(csp, "*") {
		t.Errorf("hostile Host leaked into CSP: %q", csp)
	}

	// An endpoint and asset base on other origins are allowed explicitly.
	h = Handler("t", "https://api.example.com/graphql", "https://static.example.com/gi")
	rec = httptest.NewRecorder()
	h.ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/", nil))
	csp = rec.Header().Get("Content-Security-Policy")
	for _, want := range []string{"https://api.example.com", "wss://api.example.com"} {
		if !strings.Contains(directive(csp, "connect-src"), want) {
			t.Errorf("connect-src lacks %q: %q", want, csp)
		}
	}
	if !strings.Contains(directive(csp, "script-src"), "https://static.example.com") {
		t.Errorf("script-src lacks the asset origin: %q", csp)
	}
	refs := assetRefs(rec.Body.String())
	if len(refs) == 0 || rec.Code != http.StatusOK {
		t.Fatalf("page %d with %d assets", rec.Code, len(refs))
	}
	for _, ref := range refs {
		if !strings.HasPrefix(ref, "https://static.example.com/gi/") {
			t.Errorf("asset %q not under the (slash-completed) base", ref)
		}
	}
}

func TestAssets(t *testing.T) {
	mux := newMux("incidentd", "/graphql")
	page := get(t, mux, "/graphql", nil).Body.String()

	wantType := map[string]string{
		".js":  "text/javascript; charset=utf-8",
		".css": "text/css; charset=utf-8",
	}
	refs := assetRefs(page)
	if len(refs) == 0 {
		t.Fatalf("the page references no assets: %.300s", page)
	}
	for _, ref := range refs {
		t.Run(ref, func(t *testing.T) {
			rec := get(t, mux, ref, nil)
			if rec.Code != http.StatusOK {
				t.Fatalf("status = %d", rec.Code)
			}
			name := strings.TrimPrefix(ref[:strings.IndexByte(ref, '?')], testAssetsBase)
			ext := name[strings.LastIndexByte(name, '.'):]
			if got := rec.Header().Get("Content-Type"); got != wantType[ext] {
				t.Errorf("Content-Type = %q, want %q", got, wantType[ext])
			}
			if got := rec.Header().Get("Cache-Control"); !strings.Contains(got, "max-age=31536000") {
				t.Errorf("Cache-Control = %q", got)
			}
			if rec.Body.Len() == 0 {
				t.Fatal("empty body")
			}
			embedded, err := assetsFS.ReadFile("assets/" + name)
			if err != nil || !bytes.Equal(rec.Body.Bytes(), embedded) {
				t.Errorf("body differs from embedded assets/%s (err %v)", name, err)
			}

			// Compressed variant decodes to the same bytes.
			rec = get(t, mux, ref, http.Header{"Accept-Encoding": {"br, gzip"}})
			if rec.Header().Get("Content-Encoding") != "gzip" {
				t.Fatalf("Content-Encoding = %q", rec.Header().Get("Content-Encoding"))
			}
			zr, err := gzip.NewReader(rec.Body)
			if err != nil {
				t.Fatal(err)
			}
			plain, err := io.ReadAll(zr)
			if err != nil || !bytes.Equal(plain, embedded) {
				t.Errorf("gzip body does not decode to the file (err %v)", err)
			}

			// Revalidation with the ETag is answered without a body.
			etag := rec.Header().Get("ETag")
			rec = get(t, mux, ref, http.Header{"Accept-Encoding": {"gzip"}, "If-None-Match": {etag}})
			if rec.Code != http.StatusNotModified {
				t.Errorf("If-None-Match: status %d, want 304", rec.Code)
			}
		})
	}
}

func TestAssetsNotFound(t *testing.T) {
	mux := newMux("incidentd", "/graphql")
	for _, p := range []string{
		"nope.js",
		"",
		"licenses/react.LICENSE",
		"VERSIONS.txt",
	} {
		if rec := get(t, mux, testAssetsBase+p, nil); rec.Code != http.StatusNotFound {
			t.Errorf("%q: status %d, want 404", p, rec.Code)
		}
	}
	// ServeMux would redirect a dot-dot path before it reaches Assets, so
	// call the handler directly: nothing outside the served set leaks.
	if rec := get(t, Assets(), "/../graphiql.go", nil); rec.Code != http.StatusNotFound {
		t.Errorf("dot-dot path: status %d, want 404", rec.Code)
	}
}

// TestVersionsFile checks that the embedded files are exactly those recorded
// in VERSIONS.txt by fetch-assets.sh, so hand edits are caught.
func TestVersionsFile(t *testing.T) {
	f, err := assetsFS.Open("assets/VERSIONS.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	seen := 0
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) != 3 || strings.HasPrefix(fields[0], "#") || strings.Contains(fields[0], "@") {
			continue
		}
		body, err := assetsFS.ReadFile("assets/" + fields[0])
		if err != nil {
			t.Errorf("%s listed but not embedded: %v", fields[0], err)
			continue
		}
		sum := sha256.Sum256(body)
		if got := hex.EncodeToString(sum[:]); got != fields[1] {
			t.Errorf("%s: sha256 %s, VERSIONS.txt says %s", fields[0], got, fields[1])
		}
		seen++
	}
	if seen != len(servable) {
		t.Errorf("VERSIONS.txt covers %d files, %d are served", seen, len(servable))
	}
}

func TestAcceptsGzip(t *testing.T) {
	for header, want := range map[string]bool{
		"":                   false,
		"gzip":               true,
		"GZIP":               true,
		"br, gzip;q=0.5":     true,
		"deflate, br":        false,
		"gzip;q=0":           false,
		"gzip ; q=0.0, br":   false,
		"x-gzip, identity":   false,
		"br;q=1, gzip; q=1 ": true,
	} {
		if got := acceptsGzip(header); got != want {
			t.Errorf("acceptsGzip(%q) = %v, want %v", header, got, want)
		}
	}
}
