package web_test

import (
	"bytes"
	"compress/gzip"
	"io"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/web"
)

// tenantSetup is a published tenant on a running server.
type tenantSetup struct {
	s      *apitest.Server
	tenant string
	key    string
}

// publish starts a server on b and publishes a fresh tenant for origins.
func publish(t *testing.T, b apitest.Backend, cfg apitest.Config, origins ...string) tenantSetup {
	t.Helper()
	s := apitest.Start(t, b, cfg)
	ts := tenantSetup{s: s, tenant: apitest.Tenant("web")}
	ts.key = s.Key(ts.tenant, model.ScopeWrite, model.ScopeRead)
	ts.setOrigins(t, origins...)
	return ts
}

func (ts tenantSetup) setOrigins(t *testing.T, origins ...string) {
	t.Helper()
	if origins == nil {
		origins = []string{}
	}
	ts.s.Do("PUT", "/v1/status/publication", ts.key, map[string]any{"public": true, "allowedOrigins": origins}).Expect(t, 204)
}

// component creates a component and returns its id.
func (ts tenantSetup) component(t *testing.T, name string, labels map[string]string) string {
	t.Helper()
	body := map[string]any{"displayName": name}
	if labels != nil {
		body["labels"] = labels
	}
	return ts.s.Do("POST", "/v1/components", ts.key, body).Expect(t, 201).Map(t)["id"].(string)
}

// incident opens an incident affecting component at impact (major, outage, ...).
func (ts tenantSetup) incident(t *testing.T, title, component, impact string) string {
	t.Helper()
	body := map[string]any{"title": title, "severity": "high", "occurredAt": time.Now().UTC().Add(-time.Minute).Format(time.RFC3339)}
	if component != "" {
		body["affects"] = []map[string]any{{"reference": component, "type": "imp_" + impact}}
	}
	return ts.s.Do("POST", "/v1/incidents", ts.key, body).Expect(t, 201).Map(t)["id"].(string)
}

func (ts tenantSetup) resolve(t *testing.T, id string) {
	t.Helper()
	ts.s.Do("PATCH", "/v1/incidents/"+id, ts.key, map[string]any{"status": "resolved"}).Expect(t, 200)
}

func (ts tenantSetup) page(t *testing.T) *apitest.Response {
	t.Helper()
	return ts.s.Do("GET", "/status/"+ts.tenant, "", nil)
}

func TestWidgetSizeBound(t *testing.T) {
	var buf bytes.Buffer
	zw := gzip.NewWriter(&buf)
	if _, err := zw.Write(web.WidgetJS); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	// The budget the embedding pages pay: at most 10 KB on the wire.
	if n := buf.Len(); n > 10*1024 {
		t.Fatalf("widget.js is %d bytes gzipped, over the 10 KB budget", n)
	}
	t.Logf("widget.js: %d bytes, %d gzipped", len(web.WidgetJS), buf.Len())
}

func TestWidgetScript(t *testing.T) {
	s := apitest.Start(t, apitest.Backends(t)[0], apitest.Config{})
	res := s.Do("GET", "/widget.js", "", nil, "Accept-Encoding", "identity")
	res.Expect(t, 200)
	if !bytes.Equal(res.Body, web.WidgetJS) {
		t.Fatal("the served script is not the embedded one")
	}
	etag := res.Header.Get("ETag")
	if ct := res.Header.Get("Content-Type"); ct != "application/javascript; charset=utf-8" || etag == "" ||
		!strings.HasPrefix(res.Header.Get("Cache-Control"), "public, max-age=") || res.Header.Get("Content-Encoding") != "" {
		t.Fatalf("headers %v", res.Header)
	}

	gz := s.Do("GET", "/widget.js", "", nil, "Accept-Encoding", "br, gzip;q=0.8").Expect(t, 200)
	if gz.Header.Get("Content-Encoding") != "gzip" || gz.Header.Get("ETag") != etag || !strings.Contains(gz.Header.Get("Vary"), "Accept-Encoding") {
		t.Fatalf("gzip headers %v", gz.Header)
	}
	zr, err := gzip.NewReader(bytes.NewReader(gz.Body))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := io.ReadAll(zr)
	if err != nil || !bytes.Equal(plain, web.WidgetJS) {
		t.Fatalf("gzip body does not decode to the script: %v", err)
	}
	if r := s.Do("GET", "/widget.js", "", nil, "Accept-Encoding", "gzip;q=0"); r.Header.Get("Content-Encoding") != "" {
		t.Errorf("gzip;q=0 answered with %q", r.Header.Get("Content-Encoding"))
	}

	for _, inm := range []string{etag, `"other", ` + etag, "W/" + etag, "*"} {
		r := s.Do("GET", "/widget.js", "", nil, "If-None-Match", inm)
		if r.Status != 304 || len(r.Body) != 0 {
			t.Errorf("If-None-Match %s: %d, %d bytes", inm, r.Status, len(r.Body))
		}
	}
	s.Do("GET", "/widget.js", "", nil, "If-None-Match", `"stale"`).Expect(t, 200)
	if r := s.Do("POST", "/widget.js", "", "x"); r.Status != 405 || r.Header.Get("Allow") != "GET, HEAD" {
		t.Errorf("POST: %d %v", r.Status, r.Header)
	}
	if r := s.Do("HEAD", "/widget.js", "", nil, "Accept-Encoding", "identity"); r.Status != 200 || len(r.Body) != 0 ||
		r.Header.Get("Content-Length") != res.Header.Get("Content-Length") {
		t.Errorf("HEAD: %d %v", r.Status, r.Header)
	}
}

func TestStatusPage(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		ts := publish(t, b, apitest.Config{}, "https://b.example.com", "https://a.example.com:8443")
		api := ts.component(t, "API", map[string]string{"group": "Core"})
		ts.component(t, "DB <script>alert(1)</script>", map[string]string{"group": "Core"})
		ts.component(t, "Docs", nil)
		inc := ts.incident(t, `Slow "API" & <b>errors</b>`, api, "major")
		ts.s.Do("POST", "/v1/incidents/"+inc+"/updates", ts.key, map[string]any{"displayName": "Identified", "description": "a bad deploy"}).Expect(t, 201)
		now := time.Now().UTC()
		ts.s.Do("POST", "/v1/maintenance", ts.key, map[string]any{"description": "Database upgrade", "components": []string{api},
			"startsAt": now.Add(2 * time.Hour).Format(time.RFC3339), "endsAt": now.Add(3 * time.Hour).Format(time.RFC3339)}).Expect(t, 201)
		old := ts.incident(t, "Yesterday's blip", "", "")
		ts.resolve(t, old)

		res := ts.page(t).Expect(t, 200)
		h := res.Header
		if h.Get("Content-Type") != "text/html; charset=utf-8" || h.Get("Cache-Control") != "public, max-age=10" {
			t.Errorf("headers %v", h)
		}
		if h.Get("X-Frame-Options") != "" {
			t.Errorf("X-Frame-Options %q on a page its tenant lets frame", h.Get("X-Frame-Options"))
		}
		csp := h.Get("Content-Security-Policy")
		if !strings.HasSuffix(csp, "; frame-ancestors https://a.example.com:8443 https://b.example.com") ||
			!strings.HasPrefix(csp, "default-src 'none'; script-src 'self'; connect-src 'self'; style-src 'sha256-") {
			t.Errorf("CSP %q", csp)
		}
		if h.Get("X-RateLimit-Limit") == "" {
			t.Error("the page is not charged to the client's address")
		}
		body := string(res.Body)
		for _, want := range []string{
			"<title>" + ts.tenant + " status</title>",
			`<span data-overall>Partial outage</span>`,
			"<h3>Core</h3>", "<h3>Other</h3>", "<span>Docs</span>",
			`<span>DB &lt;script&gt;alert(1)&lt;/script&gt;</span>`,
			`<h3>Slow &#34;API&#34; &amp; &lt;b&gt;errors&lt;/b&gt;</h3>`,
			`data-status="major">Partial outage</span>`,
			"Affects: API", "<strong>Identified</strong>: a bad deploy",
			"<h3>Database upgrade</h3>", "Scheduled <time",
			"Yesterday&#39;s blip", "No incidents reported.",
			`<script src="/widget.js" defer data-incidentd-page></script>`,
		} {
			if !strings.Contains(body, want) {
				t.Errorf("page lacks %s", want)
			}
		}
		if strings.Contains(body, "<script>alert") || strings.Contains(body, "<b>errors") {
			t.Error("a tenant's text reached the page unescaped")
		}
		if strings.Count(body, "Yesterday") != 1 || strings.Count(body, "Slow &#34;API") != 1 {
			t.Error("an incident is listed twice (open and past)")
		}

		// Framing follows the publication: any origin, then none.
		ts.setOrigins(t, "*")
		if csp := ts.page(t).Header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "; frame-ancestors *") {
			t.Errorf("CSP for *: %q", csp)
		}
		ts.setOrigins(t)
		if csp := ts.page(t).Header.Get("Content-Security-Policy"); !strings.HasSuffix(csp, "; frame-ancestors 'none'") {
			t.Errorf("CSP for no origins: %q", csp)
		}

		if r := ts.s.Do("HEAD", "/status/"+ts.tenant, "", nil); r.Status != 200 || len(r.Body) != 0 || r.Header.Get("Content-Length") == "" {
			t.Errorf("HEAD: %d %d bytes %v", r.Status, len(r.Body), r.Header)
		}
		if r := ts.s.Do("POST", "/status/"+ts.tenant, "", "x"); r.Status != 405 {
			t.Errorf("POST: %d", r.Status)
		}
	})
}

func TestStatusPageNotFound(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		ts := publish(t, b, apitest.Config{}, "*")
		// Unpublished and never heard of look the same.
		ts.s.Do("PUT", "/v1/status/publication", ts.key, map[string]any{"public": false}).Expect(t, 204)
		unpublished := ts.page(t).Expect(t, 404)
		unknown := ts.s.Do("GET", "/status/"+apitest.Tenant("nobody"), "", nil).Expect(t, 404)
		if !bytes.Equal(unpublished.Body, unknown.Body) {
			t.Errorf("unpublished and unknown tenants differ:\n%s\n%s", unpublished.Body, unknown.Body)
		}
		for _, r := range []*apitest.Response{unpublished, unknown} {
			if r.Header.Get("Content-Type") != "text/html; charset=utf-8" || r.Header.Get("X-Frame-Options") != "DENY" ||
				!strings.HasSuffix(r.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
				!strings.Contains(string(r.Body), "Status page not found") || strings.Contains(string(r.Body), ts.tenant) {
				t.Errorf("404: %v\n%s", r.Header, r.Body)
			}
		}
	})
}

func TestStatusPageRateLimited(t *testing.T) {
	ts := publish(t, apitest.Backends(t)[0], apitest.Config{RateLimit: "3-M"}, "*")
	var last *apitest.Response
	for range 4 {
		last = ts.page(t)
	}
	last.Expect(t, 429)
	if last.Header.Get("Retry-After") == "" || last.Header.Get("Cache-Control") != "no-store" ||
		!strings.Contains(string(last.Body), "Too many requests") {
		t.Errorf("429: %v\n%s", last.Header, last.Body)
	}
}

// setClock is a clock the test moves.
type setClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *setClock) Now() time.Time      { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *setClock) add(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// TestStatusPageUptime: an hour operational, an hour in outage after a
// monitoring report, resolved, an hour operational again: the strip's
// today is an outage, the days before the component existed are empty,
// and the page shows 2/3 uptime and an hour to resolve; a component
// created alongside that nothing affected is operational throughout.
func TestStatusPageUptime(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		clock := &setClock{now: time.Date(2026, 11, 30, 8, 0, 0, 0, time.UTC)}
		ts := publish(t, b, apitest.Config{Clock: clock})
		ts.component(t, "API", map[string]string{"region": "eu"})
		ts.component(t, "Docs", nil)
		clock.add(time.Hour)
		rep := ts.s.Do("POST", "/api/v1/component_status", ts.key, map[string]any{"name": "API", "impact": "outage",
			"attributes": []map[string]string{{"name": "region", "value": "eu"}}}).Expect(t, 201).Map(t)
		clock.add(time.Hour)
		ts.resolve(t, rep["id"].(string))
		clock.add(time.Hour)

		res := ts.page(t).Expect(t, 200)
		body := string(res.Body)
		strips := regexp.MustCompile(`(?s)<li><span>([^<]*)</span>.*?<ol class="bars" aria-label="([^"]*)">(.*?)</ol>(.*?)</div></li>`).FindAllStringSubmatch(body, -1)
		if len(strips) != 2 {
			t.Fatalf("%d uptime strips:\n%s", len(strips), body)
		}
		bar := regexp.MustCompile(`<li class="bar lv-(\w+)" title="([^"]*)" data-level="(\w+)"><span class="sr-only">([^<]*)</span></li>`)
		for _, s := range strips {
			name, summary, bars, figures := s[1], s[2], bar.FindAllStringSubmatch(s[3], -1), s[4]
			if len(bars) != model.UptimeDays {
				t.Fatalf("%s: %d bars", name, len(bars))
			}
			for i, b := range bars[:model.UptimeDays-1] {
				date := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC).AddDate(0, 0, i-(model.UptimeDays-1)).Format(time.DateOnly)
				if b[1] != "none" || b[2] != date+": no data" || b[4] != b[2] {
					t.Fatalf("%s: bar %d before the component existed: %q", name, i, b[0])
				}
			}
			today := bars[model.UptimeDays-1]
			want, uptime := "outage", "66.67%"
			if name == "Docs" {
				want, uptime = "operational", "100.00%"
			}
			if today[1] != want || today[3] != want || today[2] != "2026-11-30: "+want || today[4] != today[2] {
				t.Errorf("%s: today's bar %q", name, today[0])
			}
			if !strings.Contains(figures, "<strong data-uptime-90d>"+uptime+"</strong> uptime over 90 days") ||
				!strings.Contains(figures, "<span data-uptime-30d>"+uptime+"</span> over 30 days") {
				t.Errorf("%s: figures %s", name, figures)
			}
			wantSummary := name + ", last 90 days: 1 day " + map[string]string{"outage": "with a major outage", "operational": "operational"}[want] + ", 89 days without data"
			if summary != wantSummary {
				t.Errorf("%s: summary %q, want %q", name, summary, wantSummary)
			}
			if mttr := strings.Contains(figures, "mean time to resolve <span data-mttr>1h 0m</span>"); mttr != (name == "API") {
				t.Errorf("%s: MTTR shown %v: %s", name, mttr, figures)
			}
		}
		// Still no inline style for the CSP to refuse.
		if strings.Contains(body, " style=") {
			t.Error("the page has an inline style attribute")
		}
	})
}
