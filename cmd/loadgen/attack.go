package main

// Requests and their answers, shared by every mode: one request type and one
// way to build it, one client for the set-up calls, one load runner (vegeta's
// attacker) for every measured phase, one way to judge an answer, one
// summary and one printer for every row.

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

const (
	maxErrorKinds  = 5               // distinct error kinds printed per scenario
	errBodyPreview = 300             // bytes of an error body kept for diagnosis
	phaseProgress  = 5 * time.Second // progress lines of long fixed-count phases
)

// request describes one API call.
type request struct {
	base   string // another server than -url (the bare scenario)
	key    string // another key than -key (post-2)
	method string
	path   string
	query  url.Values
	body   []byte
}

func (r request) String() string {
	if len(r.query) == 0 {
		return r.method + " " + r.path
	}
	return r.method + " " + r.path + "?" + r.query.Encode()
}

// client sends authenticated requests to the server.
type client struct {
	hc   *http.Client
	base string
	key  string
}

func newClient(cfg config) *client {
	// The default transport keeps only 2 idle connections per host, so with
	// more workers most requests would dial afresh and we would measure TCP
	// handshakes. Pinning both limits to the worker count gives each worker a
	// reused keep-alive connection.
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          cfg.conns,
		MaxIdleConnsPerHost:   cfg.conns,
		MaxConnsPerHost:       cfg.conns,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   5 * time.Second,
		ExpectContinueTimeout: time.Second,
	}
	return &client{hc: &http.Client{Transport: tr, Timeout: cfg.timeout}, base: cfg.baseURL, key: cfg.key}
}

// target is the one place a request is built, for the load runner and the
// set-up calls alike.
func (c *client) target(r request) vegeta.Target {
	u := cmp.Or(r.base, c.base) + r.path
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	h := http.Header{"X-Api-Key": {cmp.Or(r.key, c.key)}, "Accept": {"application/json"}}
	if r.body != nil {
		h["Content-Type"] = []string{"application/json"}
	}
	return vegeta.Target{Method: r.method, URL: u, Body: r.body, Header: h}
}

// do sends one request outside a load phase and returns the whole body.
func (c *client) do(ctx context.Context, r request) (status int, body []byte, err error) {
	t := c.target(r)
	req, err := t.Request()
	if err != nil {
		return 0, nil, err
	}
	resp, err := c.hc.Do(req.WithContext(ctx))
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	if body, err = io.ReadAll(resp.Body); err != nil {
		return 0, nil, err // a transport failure, whatever the status said
	}
	return resp.StatusCode, body, nil
}

// getJSON fetches and decodes one GET, treating any non-2xx as an error.
func (c *client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	r := request{method: http.MethodGet, path: path, query: q}
	status, body, err := c.do(ctx, r)
	switch {
	case err != nil:
		return fmt.Errorf("%s: server unreachable at %s: %w", r, c.base, err)
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return fmt.Errorf("%s: API key rejected by %s (HTTP %d): %s", r, c.base, status, preview(body))
	case status == http.StatusTooManyRequests:
		return fmt.Errorf("%s: rate limited by %s (HTTP 429): raise the server's INCIDENTD_RATE_LIMIT", r, c.base)
	case !is2xx(status):
		return fmt.Errorf("%s: HTTP %d: %s", r, status, preview(body))
	}
	if err := json.Unmarshal(body, v); err != nil {
		return fmt.Errorf("%s: decoding response: %w", r, err)
	}
	return nil
}

// listPage is the part of a list response loadgen needs.
type listPage struct {
	Data []struct {
		ID string `json:"id"`
	} `json:"data"`
	Pagination struct {
		TotalCount int     `json:"totalCount"`
		HasMore    bool    `json:"hasMore"`
		NextCursor *string `json:"nextCursor"`
	} `json:"pagination"`
}

// preflight checks reachability and the key with one cheap request and
// returns the tenant's totalCount.
func (c *client) preflight(ctx context.Context) (int, error) {
	var page listPage
	err := c.getJSON(ctx, "/v1/incidents", url.Values{"limit": {"1"}}, &page)
	return page.Pagination.TotalCount, err
}

func is2xx(code int) bool { return code >= 200 && code <= 299 }

func preview(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > errBodyPreview {
		s = s[:errBodyPreview] + "..."
	}
	return s
}

// byStatus is how every answer is judged first: "" when it succeeded, else
// the kind of failure ("transport" or the status code) and what to print.
func byStatus(code int, body []byte, err string) (kind, detail string) {
	switch {
	case code == 0:
		return "transport", err
	case !is2xx(code):
		return strconv.Itoa(code), preview(body)
	}
	return "", ""
}

// ---- load phases ----

// generator builds the request of a job; rng is the job's own.
type generator func(rng *rand.Rand, job int) request

// judge classifies the answer to a job: the row it counts in and, when it
// failed, the kind of failure and what to print ("" when it succeeded).
type judge func(job int, res *vegeta.Result) (row int, kind, detail string)

func judgeStatus(_ int, res *vegeta.Result) (int, string, string) {
	kind, detail := byStatus(int(res.Code), res.Body, res.Error)
	return 0, kind, detail
}

// phase is one run of load: -conns workers sending requests back to back.
type phase struct {
	name     string
	gen      generator
	jobs     int           // > 0: exactly this many requests, jobs 0..jobs-1
	duration time.Duration // otherwise: for this long
	keep     int64         // bytes of each answer read into memory for judge (-1: all)
	judge    judge         // nil: judgeStatus; called from one goroutine
	rows     int           // rows judge counts in (0 means 1)
	workers  int           // 0: -conns
	every    time.Duration // > 0: one request per period, see pacer
}

// measured is a phase of -requests requests, or of -duration.
func (c *config) measured(name string, gen generator) phase {
	return phase{name: name, gen: gen, jobs: c.requests, duration: c.duration, keep: errBodyPreview}
}

// describe says how long a measured phase is.
func (c *config) describe() string {
	if c.requests > 0 {
		return fmt.Sprintf("%d requests", c.requests)
	}
	return "for " + c.duration.String()
}

// attack runs a phase with vegeta's attacker: -conns workers and no rate
// unless the phase sets them, so each worker sends its next request when its
// last one is answered (a closed loop, as -conns clients would). It returns the stats of each
// row and the wall time. In-flight requests finish after the deadline
// rather than being cancelled, so no sample is cut short.
func (lg *loadgen) attack(ctx context.Context, p phase) ([]stats, time.Duration) {
	lg.phases++
	stream := lg.phases << 32
	var next atomic.Uint64
	targeter := func(t *vegeta.Target) error {
		job := next.Add(1) - 1
		// A random stream per job keeps a run's requests repeatable for a
		// -rand-seed whatever the interleaving, and shares no locked source.
		rng := rand.New(rand.NewPCG(lg.cfg.randSeed, stream|job))
		*t = lg.c.target(p.gen(rng, int(job)))
		// net/http never sends the fragment, but vegeta hands it back in the
		// result's URL: it ties each answer to its job.
		t.URL += "#" + strconv.FormatUint(job, 10)
		return nil
	}
	duration := p.duration
	if p.jobs > 0 {
		duration = 0 // the pacer ends the phase
	}
	workers := uint64(cmp.Or(p.workers, lg.cfg.conns))
	atk := vegeta.NewAttacker(vegeta.Client(lg.c.hc), vegeta.Workers(workers), vegeta.MaxWorkers(workers),
		vegeta.MaxBody(p.keep))
	defer context.AfterFunc(ctx, func() { atk.Stop() })()
	check := p.judge
	if check == nil {
		check = judgeStatus
	}
	rows := make([]stats, max(p.rows, 1))
	start, logged, done := time.Now(), time.Now(), 0
	for res := range atk.Attack(targeter, pacer{uint64(p.jobs), p.every}, duration, p.name) {
		uri, frag, _ := strings.Cut(res.URL, "#")
		job, _ := strconv.Atoi(frag)
		row, kind, detail := check(job, res)
		rows[row].add(res.Latency, kind)
		if kind != "" {
			lg.diag.report(p.name, kind, res.Method+" "+uri, detail)
		}
		// Large seeds take minutes; progress shows the run is not hung.
		if done++; p.jobs > 0 && time.Since(logged) >= phaseProgress {
			logged = time.Now()
			lg.logf("%s: %d/%d requests answered", p.name, done, p.jobs)
		}
	}
	return rows, time.Since(start)
}

// pacer is vegeta's pacer of a phase. Without a period a request goes out
// whenever a worker is free (a closed loop); with one, on the beats of a
// clock, like time.Ticker: a beat missed while every worker was busy is
// dropped rather than sent late in a burst. Either way no more than n
// requests when n > 0.
type pacer struct {
	n     uint64
	every time.Duration
}

func (p pacer) Pace(elapsed time.Duration, sent uint64) (time.Duration, bool) {
	switch {
	case p.n > 0 && sent >= p.n:
		return 0, true
	case p.every == 0 || sent == 0:
		return 0, false // the first request of a paced phase goes at once
	}
	return p.every - elapsed%p.every, false
}

func (p pacer) Rate(time.Duration) float64 {
	if p.every == 0 {
		return 0
	}
	return float64(time.Second) / float64(p.every)
}

// stats is what a phase observed in one row.
type stats struct {
	latencies []time.Duration // successful requests only
	requests  int
	errors    int
	kinds     map[string]int // error counts by kind
}

func (s *stats) add(lat time.Duration, kind string) {
	s.requests++
	if kind == "" {
		s.latencies = append(s.latencies, lat)
		return
	}
	s.errors++
	if s.kinds == nil {
		s.kinds = map[string]int{}
	}
	s.kinds[kind]++
}

func (s *stats) merge(o stats) {
	s.latencies = append(s.latencies, o.latencies...)
	s.requests += o.requests
	s.errors += o.errors
	for k, n := range o.kinds {
		if s.kinds == nil {
			s.kinds = map[string]int{}
		}
		s.kinds[k] += n
	}
}

// result is one output row.
type result struct {
	Scenario   string         `json:"scenario"`
	Conns      int            `json:"conns"`
	Seconds    float64        `json:"seconds"`
	Requests   int            `json:"requests"`
	Errors     int            `json:"errors"`
	ErrorKinds map[string]int `json:"errorKinds,omitempty"`
	Throughput float64        `json:"throughputPerSec"`
	P50        float64        `json:"p50Ms"`
	P95        float64        `json:"p95Ms"`
	P99        float64        `json:"p99Ms"`
	Max        float64        `json:"maxMs"`
}

// summarize turns raw samples into a row. The percentiles are exact
// (nearest rank over every sample), which vegeta.Metrics' estimates are not,
// and cover successes only, so fast failures cannot flatter them.
func summarize(name string, conns int, st stats, elapsed time.Duration) result {
	slices.Sort(st.latencies)
	r := result{
		Scenario:   name,
		Conns:      conns,
		Seconds:    elapsed.Seconds(),
		Requests:   st.requests,
		Errors:     st.errors,
		ErrorKinds: st.kinds,
		P50:        ms(percentile(st.latencies, 50)),
		P95:        ms(percentile(st.latencies, 95)),
		P99:        ms(percentile(st.latencies, 99)),
		Max:        ms(percentile(st.latencies, 100)),
	}
	if elapsed > 0 {
		r.Throughput = float64(len(st.latencies)) / elapsed.Seconds()
	}
	return r
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100) of an
// ascending sample: the smallest value with at least p% of the sample at or
// below it. An empty sample yields 0.
func percentile[T cmp.Ordered](sorted []T, p float64) T {
	n := len(sorted)
	if n == 0 {
		var zero T
		return zero
	}
	rank := int(math.Ceil(p / 100 * float64(n)))
	rank = min(max(rank, 1), n)
	return sorted[rank-1]
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// ---- output ----

// printer writes result rows as they complete, so long runs show progress.
type printer struct {
	w      io.Writer
	json   bool
	header bool
	width  int // of the first column, when wider than the default
}

const (
	rowFormat  = "%-*s %9s %7s %10s %9s %9s %9s %9s\n"
	nameColumn = 12 // fits every scenario name
)

func (p *printer) print(r result) {
	if p.json {
		fmt.Fprintf(p.w, "%s\n", mustJSON(r))
		return
	}
	if !p.header {
		fmt.Fprintf(p.w, rowFormat, max(p.width, nameColumn), "scenario", "requests", "errors", "req/s", "p50(ms)", "p95(ms)", "p99(ms)", "max(ms)")
		p.header = true
	}
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	fmt.Fprintf(p.w, rowFormat, max(p.width, nameColumn), r.Scenario, strconv.Itoa(r.Requests), strconv.Itoa(r.Errors),
		strconv.FormatFloat(r.Throughput, 'f', 1, 64), f2(r.P50), f2(r.P95), f2(r.P99), f2(r.Max))
}

// errorLog prints the first few distinct failures of each scenario to
// stderr: enough to diagnose, without flooding the terminal when every
// request fails.
type errorLog struct {
	mu        sync.Mutex
	w         io.Writer
	printed   map[string]bool // scenario and kind
	seen      map[string]int  // distinct kinds printed, by scenario
	warned429 bool
}

func (l *errorLog) report(scenario, kind, what, detail string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	key := scenario + "\x00" + kind
	if l.printed[key] || l.seen[scenario] >= maxErrorKinds {
		return
	}
	l.printed[key] = true
	l.seen[scenario]++
	switch kind {
	case "transport":
		fmt.Fprintf(l.w, "loadgen: %s: %s: %s\n", scenario, what, detail)
	case "graphql":
		fmt.Fprintf(l.w, "loadgen: %s: %s: GraphQL errors: %s\n", scenario, what, detail)
	default:
		fmt.Fprintf(l.w, "loadgen: %s: %s: HTTP %s: %s\n", scenario, what, kind, detail)
	}
	if kind == "429" && !l.warned429 {
		l.warned429 = true
		fmt.Fprintln(l.w, "loadgen: the server is rate limiting: raise its INCIDENTD_RATE_LIMIT (or lower -conns) for meaningful numbers")
	}
}
