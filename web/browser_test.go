package web_test

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/incidentd/incidentd/internal/apitest"
)

// The browser tests drive a real headless Chromium: the hosted page with
// and without JavaScript, the widget embedded on another origin following
// the live stream, and the API's browser tools (Swagger UI, GraphiQL).
// They wait for the DOM to show what they expect (never for a time), with
// a generous bound only so that a broken build fails instead of hanging.

const skipBrowser = "chromium is not installed: browser tests skipped (CI installs it)"

// domWait bounds each wait for the DOM.
const domWait = 20 * time.Second

// chromium finds the browser, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip(skipBrowser)
	return ""
}

// startBrowser launches one headless browser for the test; each subtest
// opens its own tab with tab.
func startBrowser(t *testing.T) context.Context {
	t.Helper()
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(chromium(t)), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("disable-dev-shm-usage", true), chromedp.Flag("headless", true))
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() {
		cancel()
		cancelAlloc()
	})
	// The first run starts the browser and binds it to ctx (no timeout here:
	// it would stop the browser).
	if err := chromedp.Do(ctx); err != nil {
		t.Fatalf("start chromium: %v", err)
	}
	return ctx
}

// tab is a browser tab with its console recorded.
type tab struct {
	ctx context.Context
	t   *testing.T
	mu  sync.Mutex
	log []chromedp.ConsoleMessage
}

func newTab(t *testing.T, browser context.Context) *tab {
	t.Helper()
	ctx, cancel := chromedp.NewContext(browser)
	t.Cleanup(cancel)
	if err := chromedp.Do(ctx); err != nil { // opens the tab
		t.Fatalf("open tab: %v", err)
	}
	tb := &tab{ctx: ctx, t: t}
	msgs := chromedp.Console(ctx) // subscribed from here on
	go func() {
		for m, err := range msgs {
			if err != nil {
				return
			}
			tb.mu.Lock()
			tb.log = append(tb.log, m)
			tb.mu.Unlock()
		}
	}()
	return tb
}

// do runs actions with a bound, failing the test on error.
func (tb *tab) do(what string, steps ...chromedp.Action[chromedp.Void]) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, domWait)
	defer cancel()
	if err := chromedp.Do(ctx, steps...); err != nil {
		tb.t.Fatalf("%s: %v", what, err)
	}
}

// eval evaluates a JavaScript expression to a string.
func (tb *tab) eval(expr string) string {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, domWait)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Evaluate[string](expr))
	if err != nil {
		tb.t.Fatalf("evaluate %s: %v", expr, err)
	}
	return v
}

// waitFor waits until the JavaScript expression is truthy; on failure it
// reports what dump evaluates to.
func (tb *tab) waitFor(what, expr, dump string) {
	tb.t.Helper()
	ctx, cancel := context.WithTimeout(tb.ctx, domWait)
	defer cancel()
	if _, err := chromedp.Run(ctx, chromedp.Poll[chromedp.Void](expr, chromedp.WithPollingTimeout(domWait))); err != nil {
		state, _ := chromedp.Run(tb.ctx, chromedp.Evaluate[string](dump))
		tb.t.Fatalf("waiting for %s: %v\nstate: %s\nconsole: %s", what, err, state, tb.console(nil))
	}
}

// console returns the recorded messages that keep says are errors.
func (tb *tab) console(keep func(chromedp.ConsoleMessage) bool) []string {
	tb.mu.Lock()
	defer tb.mu.Unlock()
	var out []string
	for _, m := range tb.log {
		if keep == nil || keep(m) {
			out = append(out, m.String()+" ["+m.Source+" "+m.URL+"]")
		}
	}
	return out
}

// anyError keeps exceptions, console.error calls and the browser's error
// log entries (a CSP refusal, an asset that failed to load).
func anyError(m chromedp.ConsoleMessage) bool {
	return m.IsException() || m.Type == chromedp.ConsoleError
}

// scriptError keeps what a script did wrong: exceptions and console.error
// calls, not the network's complaints (a stream being refused while its
// endpoint is away is the widget's business to survive).
func scriptError(m chromedp.ConsoleMessage) bool {
	return m.IsException() || (m.Type == chromedp.ConsoleError && m.Source == "")
}

func (tb *tab) noErrors(where string, keep func(chromedp.ConsoleMessage) bool) {
	tb.t.Helper()
	if errs := tb.console(keep); len(errs) > 0 {
		tb.t.Errorf("console errors on %s:\n%s", where, strings.Join(errs, "\n"))
	}
}

func TestBrowser(t *testing.T) {
	browser := startBrowser(t)

	t.Run("status page", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, b apitest.Backend) { testStatusPage(t, b, browser) })
	})
	t.Run("widget", func(t *testing.T) {
		apitest.Each(t, func(t *testing.T, b apitest.Backend) { testWidget(t, b, browser) })
	})
	t.Run("widget polls without EventSource", func(t *testing.T) {
		testWidgetPolling(t, apitest.Backends(t)[0], browser)
	})
	t.Run("API tools", func(t *testing.T) {
		testTools(t, apitest.Backends(t)[0], browser)
	})
}

func testStatusPage(t *testing.T, b apitest.Backend, browser context.Context) {
	ts := publish(t, b, apitest.Config{})
	api := ts.component(t, "API", map[string]string{"group": "Core"})
	ts.component(t, "Docs", nil)
	inc := ts.incident(t, "Elevated errors", api, "major")
	ts.s.Do("POST", "/v1/incidents/"+inc+"/updates", ts.key, map[string]any{"displayName": "Identified", "description": "a bad deploy"}).Expect(t, 201)
	now := time.Now().UTC()
	ts.s.Do("POST", "/v1/maintenance", ts.key, map[string]any{"description": "Database upgrade", "components": []string{api},
		"startsAt": now.Add(2 * time.Hour).Format(time.RFC3339), "endsAt": now.Add(3 * time.Hour).Format(time.RFC3339)}).Expect(t, 201)
	url := ts.s.URL + "/status/" + ts.tenant
	text := `document.body.innerText`

	// Without JavaScript the page is whole.
	noJS := newTab(t, browser)
	noJS.do("disable scripts", chromedp.Func(func(ctx context.Context, tg *chromedp.Target) error {
		_, err := cdp.Call(ctx, tg, emulation.SetScriptExecutionDisabled, emulation.SetScriptExecutionDisabledParams{Value: true})
		return err
	}), chromedp.Navigate(url))
	body := noJS.eval(text)
	for _, want := range []string{ts.tenant + " status", "Partial outage", "Core", "API", "Docs", "Elevated errors",
		"Identified: a bad deploy", "Affects: API", "Database upgrade", "Past incidents", "No incidents reported."} {
		if !strings.Contains(body, want) {
			t.Errorf("without JavaScript the page lacks %q:\n%s", want, body)
		}
	}
	if got := noJS.eval(`String(document.documentElement.getAttribute("data-incidentd"))`); got != "null" {
		t.Errorf("scripts were disabled, yet the page went live (%s)", got)
	}

	// With JavaScript it follows the stream: a new incident and a
	// resolution show without a reload, and are announced.
	live := newTab(t, browser)
	live.do("open the page", chromedp.Navigate(url))
	dump := `document.documentElement.outerHTML.slice(0, 4000)`
	live.waitFor("the page to go live", `document.documentElement.getAttribute("data-incidentd") === "live"`, dump)
	// The first frame shows what the page already does: the page's
	// fingerprint (Go) and the frame's (JavaScript) agree, so no refresh.
	if got := live.eval(`String(document.documentElement.getAttribute("data-incidentd-refreshes"))`); got != "null" {
		t.Errorf("the page refreshed on its first frame (%s times): the fingerprints disagree", got)
	}
	live.eval(`window.__sameDocument = "yes"`)
	ts.incident(t, "Login failures", "", "")
	live.waitFor("the new incident", `[...document.querySelectorAll("[data-incident] h3")].some(h => h.textContent === "Login failures")`, dump)
	live.waitFor("the announcement", `document.getElementById("incidentd-announce").textContent === "Partial outage"`, dump)
	ts.s.Do("POST", "/v1/incidents/"+inc+"/updates", ts.key, map[string]any{"displayName": "Monitoring", "description": "rolled back"}).Expect(t, 201)
	live.waitFor("the new timeline entry", `document.body.innerText.includes("Monitoring: rolled back")`, dump)
	ts.resolve(t, inc)
	live.waitFor("the overall status to recover",
		`document.querySelector("[data-overall]").textContent === "Incident in progress" && document.getElementById("incidentd-announce").textContent === "Incident in progress"`, dump)
	if live.eval(`String(window.__sameDocument)`) != "yes" {
		t.Error("the page reloaded instead of updating in place")
	}
	// The CSP lets everything the page needs through: no refusals, no errors.
	live.noErrors("the live page", anyError)
	noJS.noErrors("the page without JavaScript", anyError)
}

const embedPage = `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>embed</title><link rel="icon" href="data:,">%s</head>
<body>
<p>A page of another origin.</p>
<incidentd-status id="banner" tenant="%[2]s" mode="banner"></incidentd-status>
<incidentd-status id="badge" tenant="%[2]s" mode="badge"%[4]s></incidentd-status>
<incidentd-status id="list" tenant="%[2]s" mode="list"></incidentd-status>
<script src="%[3]s/widget.js"></script>
</body></html>`

// embedOn serves a page embedding the widget from server, on an origin of
// its own, under the policy csp if any; head goes into the page's head
// first.
func embedOn(t *testing.T, server, tenant, head, badgeAttrs, csp string) *httptest.Server {
	page := fmt.Sprintf(embedPage, head, html.EscapeString(tenant), server, badgeAttrs)
	hs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		if csp != "" {
			w.Header().Set("Content-Security-Policy", csp)
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		_, _ = w.Write([]byte(page))
	}))
	t.Cleanup(hs.Close)
	return hs
}

// In the widget's shadow roots.
const (
	jsBanner    = `document.getElementById("banner")`
	jsBannerBox = jsBanner + `.shadowRoot.querySelector(".banner")`
	jsLive      = `document.getElementById("badge").shadowRoot.querySelector("[role=status]").textContent`
	jsBadge     = `document.getElementById("badge").shadowRoot.querySelector(".text").textContent`
	jsList      = `document.getElementById("list").shadowRoot.querySelector(".list").innerText`
	widgetDump  = `JSON.stringify({banner: ` + jsBanner + `.shadowRoot.innerHTML, badge: ` + jsBadge + `, live: ` + jsLive +
		`, list: ` + jsList + `, states: [...document.querySelectorAll("incidentd-status")].map(e => e.state)})`
)

func testWidget(t *testing.T, b apitest.Backend, browser context.Context) {
	ts := publish(t, b, apitest.Config{})
	// A strict embedding page: the widget needs its server in script-src
	// and connect-src, and no inline style.
	// The page counts the streams opened (its one inline script runs by
	// nonce).
	count := `<script nonce="n0nce">window.streams = 0; window.EventSource = class extends EventSource {
		constructor(...a) { super(...a); window.streams++ } }</script>`
	embed := embedOn(t, ts.s.URL, ts.tenant, count, "",
		"default-src 'none'; script-src 'nonce-n0nce' "+ts.s.URL+"; connect-src "+ts.s.URL+"; style-src 'none'; img-src data:")
	ts.setOrigins(t, embed.URL)
	api := ts.component(t, "API", map[string]string{"group": "Core"})
	ts.component(t, "Search", map[string]string{"group": "Core"})
	ts.component(t, "Docs", nil)

	tb := newTab(t, browser)
	tb.do("open the embedding page", chromedp.Navigate(embed.URL))
	tb.waitFor("operational", `[...document.querySelectorAll("incidentd-status")].every(e => e.state === "operational")`, widgetDump)
	if got := tb.eval(jsBadge); got != "All systems operational" {
		t.Errorf("badge %q", got)
	}
	// Three elements of one tenant share one stream.
	if got := tb.eval(`String(window.streams)`); got != "1" {
		t.Errorf("%s streams opened for one tenant", got)
	}
	if got := tb.eval(jsLive); got != "All systems operational" {
		t.Errorf("live region %q", got)
	}
	if got := tb.eval(jsList); !strings.Contains(got, "CORE\nAPI\nOperational\nSearch\nOperational\nOTHER\nDocs\nOperational") {
		t.Errorf("list %q", got)
	}
	hidden := jsBanner + `.getBoundingClientRect().height === 0 && ` + jsBannerBox + `.hidden`
	if tb.eval(`String(`+hidden+`)`) != "true" {
		t.Errorf("the banner shows while all is well: %s", tb.eval(widgetDump))
	}
	// Its styles apply under style-src 'none' (a constructed sheet).
	if got := tb.eval(`getComputedStyle(document.getElementById("badge").shadowRoot.querySelector(".badge")).borderRadius`); got != "999px" {
		t.Errorf("the widget's styles did not apply: border-radius %q", got)
	}
	// The live region is read out: role status, polite.
	if got := tb.eval(`(e => e.getAttribute("role") + " " + e.getAttribute("aria-live"))(document.getElementById("banner").shadowRoot.querySelector("[aria-live]"))`); got != "status polite" {
		t.Errorf("live region %q", got)
	}

	// An incident appears without a reload, and is announced.
	inc := ts.incident(t, "Elevated errors", api, "major")
	tb.waitFor("the banner", jsBanner+`.getBoundingClientRect().height > 0 && `+jsBannerBox+`.textContent.includes("Elevated errors")`, widgetDump)
	tb.waitFor("the badge and the announcement", jsBadge+` === "Partial outage" && `+jsLive+` === "Partial outage: Elevated errors"`, widgetDump)
	if got := tb.eval(jsList); !strings.Contains(got, "API\nPartial outage") {
		t.Errorf("list %q", got)
	}

	// Resolved: the banner hides again, and the recovery is announced.
	ts.resolve(t, inc)
	tb.waitFor("the banner to hide", hidden+` && `+jsLive+` === "All systems operational"`, widgetDump)

	// Unpublished: the stream ends, and the widget shows a neutral state.
	ts.s.Do("PUT", "/v1/status/publication", ts.key, map[string]any{"public": false}).Expect(t, 204)
	tb.waitFor("the neutral state", `[...document.querySelectorAll("incidentd-status")].every(e => e.state === "unavailable") && `+
		hidden+` && `+jsBadge+` === "Status unavailable"`, widgetDump)
	tb.noErrors("the embedding page", func(m chromedp.ConsoleMessage) bool {
		return scriptError(m) || (m.Type == chromedp.ConsoleError && m.Source == "security") // CSP refusals
	})
}

func testWidgetPolling(t *testing.T, b apitest.Backend, browser context.Context) {
	ts := publish(t, b, apitest.Config{})
	// A browser without EventSource: the widget polls the summary.
	embed := embedOn(t, ts.s.URL, ts.tenant, `<script>delete window.EventSource</script>`, ` poll-interval="1"`, "")
	ts.setOrigins(t, embed.URL)
	api := ts.component(t, "API", nil)

	tb := newTab(t, browser)
	tb.do("open the embedding page", chromedp.Navigate(embed.URL))
	tb.waitFor("operational", `document.getElementById("badge").state === "operational"`, widgetDump)
	if got := tb.eval(`typeof EventSource`); got != "undefined" {
		t.Fatalf("EventSource is %s", got)
	}
	inc := ts.incident(t, "Database down", api, "outage")
	tb.waitFor("the outage", jsBadge+` === "Major outage" && `+jsLive+` === "Major outage: Database down"`, widgetDump)
	ts.resolve(t, inc)
	tb.waitFor("the recovery", jsBadge+` === "All systems operational"`, widgetDump)

	// Unpublished: the widget shows a neutral state and stops.
	ts.s.Do("PUT", "/v1/status/publication", ts.key, map[string]any{"public": false}).Expect(t, 204)
	tb.waitFor("the neutral state", `[...document.querySelectorAll("incidentd-status")].every(e => e.state === "unavailable") && `+
		jsBannerBox+`.hidden`, widgetDump)
	tb.noErrors("the embedding page", scriptError)
}

func testTools(t *testing.T, b apitest.Backend, browser context.Context) {
	s := apitest.Start(t, b, apitest.Config{})
	// Swagger UI: the operations of the document are listed.
	docs := newTab(t, browser)
	docs.do("open Swagger UI", chromedp.Navigate(s.URL+"/api/docs/"))
	docs.waitFor("Swagger UI's operations", `document.querySelectorAll(".opblock").length > 10`, `document.body.innerText.slice(0, 2000)`)
	docs.noErrors("Swagger UI", toolError)

	// GraphiQL (the explorer is on in test servers): its editor renders.
	gql := newTab(t, browser)
	gql.do("open GraphiQL", chromedp.Navigate(s.URL+"/graphql"))
	gql.waitFor("GraphiQL's editor", `document.querySelector(".graphiql-container .graphiql-editor") !== null`, `document.body.innerHTML.slice(0, 2000)`)
	gql.noErrors("GraphiQL", toolError)
}

// toolError is an error of the tools' scripts or a refusal of the
// browser's (a CSP violation, a blocked asset), not a request the server
// answered with an error: GraphiQL introspects without a key, which the
// server rightly refuses, and the tools ship no favicon.
func toolError(m chromedp.ConsoleMessage) bool {
	return anyError(m) && m.Source != "network"
}
