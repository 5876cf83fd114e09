// Command loadgen drives an incidentd server with concurrent HTTP traffic and
// reports, per scenario, throughput and exact latency percentiles. With
// -fanout it instead measures how GraphQL subscription events fan out to
// many WebSocket subscribers; with -ingest, how monitoring reports
// (POST /v1/component_status) hold up under many concurrent reporters.
//
// Usage:
//
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -key $KEY -seed 100000 -conns 50 -duration 10s
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -key $KEY -fanout -subscribers 10000 \
//		-mutation-rate 20 -duration 30s -server-pid $(pgrep -n incidentd)
//	go run ./cmd/loadgen -url http://127.0.0.1:8080 -key $KEY -ingest -components 1000 -conns 32 -duration 20s
//
// The URL and key may also come from LOADGEN_URL and LOADGEN_KEY. Before
// anything else loadgen sends one GET /v1/incidents?limit=1 and exits non-zero
// if the server is unreachable or rejects the key.
//
// # Scenarios
//
// With -seed N it first tops the tenant up to N incidents (only the
// difference is created) using the same concurrency, and prints a "seed" row.
// Seeded titles and descriptions draw from a small vocabulary (database,
// timeout, gateway, ...) that the keyword scenario searches for, so keyword
// queries match a realistic share of rows. The seeded data depends only on
// -rand-seed and the incident's position, not on scheduling.
//
// Scenarios (-scenarios, comma-separated, run in the order given):
//
//	get          GET /v1/incidents/{id}, ids sampled from up to 5,000 collected ids
//	gql-get      POST /graphql: incident(id:) with every field, ids as for get
//	list         GET /v1/incidents (default page of 20)
//	gql-list     POST /graphql: incidents(first: 20) with totalCount, pageInfo and every field of the nodes
//	keyword      GET /v1/incidents?keyword=<vocabulary word>
//	cursor-deep  GET /v1/incidents?cursor=<cursor ~90% deep in the list>
//	offset-deep  GET /v1/incidents?limit=20&offset=<90% of totalCount>
//	post         POST /v1/incidents with a random incident
//	post-2       POST as post, half the workers with -key2 (a second tenant)
//	mixed        90% reads spread over get/list/keyword, 10% post
//	mixed-list   45% list, 45% keyword, 10% post (a dashboard beside a writer)
//	bare         GET against a bare net/http server that loadgen starts as a
//	             process of its own: the machine's ceiling, in the same run
//
// Each scenario runs -conns workers for -warmup (samples discarded), then for
// -duration. Workers issue requests back to back over -conns keep-alive
// connections. Latency covers the whole request including reading the body.
// The GraphQL twins are measured exactly like their REST counterparts; a
// GraphQL response also counts as an error when its "errors" array is not
// empty.
//
// Output (stdout) is a table, or JSON lines with -json; progress and error
// diagnostics go to stderr. Columns: requests is every completed request,
// errors those that failed (non-2xx, GraphQL errors or transport error);
// throughput and the percentiles cover the successful requests only, so fast
// failures such as 429s cannot flatter the numbers. Percentiles are
// nearest-rank over the full sorted sample.
//
// When both halves of a twin ran, a last line compares them:
//
//	graphql/rest cost ratio: get 1.08x, list 1.35x
//
// each the REST req/s over the GraphQL req/s, so above 1 means GraphQL is
// slower ("n/a" when the GraphQL scenario completed nothing). With -json it is
// a last object instead: {"graphqlRestCostRatio":{"get":1.08,"list":1.35}}.
//
// # Fan-out
//
// -fanout ignores -scenarios, -seed and -warmup. It:
//
//  1. raises the soft open-files limit to the hard limit, so 10,000
//     connections fit, and, with -server-pid, reads the server's VmRSS;
//  2. opens -subscribers WebSockets to /graphql (subprotocol
//     graphql-transport-ws), -sub-batch at a time, each sending
//     connection_init with the key and subscribing to
//     incidentChanged { id type at incident { id } }; each connection gets
//     up to -timeout to be acknowledged;
//  3. idles 2 s (and reads VmRSS again: the delta over the subscribers is the
//     server's memory per subscriber, meaningful on an otherwise idle,
//     freshly started server: Go returns freed memory to the OS lazily);
//  4. creates -mutation-rate incidents per second with POST /v1/incidents
//     for -duration, paced by a ticker and sent by enough workers (4 to 64)
//     to keep the pace with POSTs of up to a second;
//  5. waits up to 5 s for the last events, then completes every subscription
//     and closes every connection with 1000.
//
// Subscribers answer pings and never stop reading. Every event is matched to
// the incident it announces; each subscriber that was healthy when the
// creations started must receive one event per created incident. The report
// gives the ramp-up time and failures, expected deliveries (created incidents
// x subscribers), deliveries, missing ones, duplicates, events of other
// incidents, subscribers dropped on the way, delivery latency (receipt time
// minus the event's "at", so loadgen and the server must share a clock)
// percentiles over all deliveries, and the p50/p99 of the creating POSTs
// (numbers illustrative):
//
//	subscribers:  10000 of 10000 subscribed, 0 failed; ramp-up 2.314s (200 at a time)
//	server RSS:   52340 -> 241220 KiB, 18.9 KiB per subscriber
//	mutations:    600 created, 0 failed in 30.0s (20.0/s, target 20.0/s); POST p50 2.10ms p99 6.30ms
//	deliveries:   6000000 expected, 6000000 delivered, 0 missing (0 subscribers short); 0 duplicates, 0 other events, 0 bad messages, 0 subscribers dropped
//	latency (ms): p50 41.20  p95 88.10  p99 120.40  max 180.90  (receipt - event.at, over all deliveries)
//
// With -json the report is one JSON object with the same numbers.
//
// # Ingestion
//
// -ingest ignores -scenarios, -seed and -warmup. Its key needs the scopes
// components:write and incidents:write. -conns is the number of concurrent
// reporters (-conns 32 for the 32 of the ingestion load test). It:
//
//  1. makes sure the -components N components ingest-0..ingest-<N-1> exist,
//     ingest-<i> labelled region=r<i%10>: it lists them with
//     GET /v1/components?name=ingest-&label=region:rK, creates the missing
//     ones (POST /v1/components, -conns at a time; a "create components"
//     row), so a second run creates nothing, and prints how long that took;
//  2. warms up: one "minor" report of each component, so that incidents
//     exist (a "warm-up" row);
//  3. for -duration, each reporter sends reports of random components
//     (name, impact, attributes [{region}]): a share -escalate of them
//     (default 0.05) picks a random impact above the component's highest
//     reported so far, the rest a random impact at or below it, the common
//     "still down" report that changes nothing. An outage cannot escalate,
//     so its reports are repeats. The highest impact per component is the
//     highest sent with success, or the answer's when that is higher (a run
//     on components left at major by an earlier run starts from major);
//  4. prints rows "report (repeat)", "report (escalate)" and "report (all)",
//     throughput shares of the same window, then how many answers had
//     created=true (a new incident) per kind;
//  5. walks GET /v1/component_status over every component of the tenant and
//     counts the components in more than one open incident, which must be 0
//     (loadgen exits 1 otherwise, naming a few on stderr), and the distinct
//     open incidents.
//
// Output (numbers illustrative):
//
//	scenario           requests  errors      req/s   p50(ms)   p95(ms)   p99(ms)   max(ms)
//	create components      1000       0     1650.2     17.80     40.10     52.30     60.70
//	warm-up                1000       0      820.4     35.20     80.50     95.10    110.20
//	report (repeat)      179842       0     8991.3      3.10      7.20     11.40     48.30
//	report (escalate)      9421       0      471.0      9.80     21.60     30.10     61.00
//	report (all)         189263       0     9462.3      3.30      8.90     14.20     61.00
//	components:   1000 ready: 0 found, 1000 created; setup 0.652s (32 at a time)
//	created=true: warm-up 1 of 1000, repeat 0 of 179842, escalate 212 of 9421
//	verify:       0 components in more than one open incident (must be 0); 214 distinct open incidents over 1000 components
//
// With -json the rows are JSON lines as for the scenarios, followed by one
// object with "mode":"ingest" and the numbers of the last three lines.
package main

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

const (
	idSampleSize    = 5000 // ids collected for the get scenario
	walkLimit       = 100  // page size of the setup walk (the server's maximum)
	maxWalkPages    = 1000 // bounds setup time on huge tenants
	deepCursorsKept = 10   // spreads cursor-deep over a few pages instead of one hot page
	deepFraction    = 0.9  // "deep" means this fraction of totalCount
	listLimit       = 20   // the server's default page size
	mixedPostShare  = 10   // percent of mixed requests that are writes

	maxErrorKinds  = 5   // distinct error kinds printed per scenario
	errBodyPreview = 300 // bytes of an error body kept for diagnosis

	seedAge = 365 * 24 * time.Hour // seeded incidents occurred within this span
	postAge = 90 * 24 * time.Hour  // incidents posted during the run, likewise
)

// allScenarios is the default run, in order.
var allScenarios = []string{"get", "gql-get", "list", "gql-list", "keyword", "cursor-deep", "offset-deep", "post", "mixed"}

// extraScenarios run only when named.
var extraScenarios = []string{"bare", "mixed-list", "post-2"}

// Generated content. The keyword scenario searches for vocabulary words, so
// every seeded title contains two of them.
var (
	vocabulary = []string{"database", "timeout", "gateway", "latency", "disk",
		"certificate", "dns", "memory", "queue", "cache"}
	services = []string{"user-service", "api-gateway", "auth-service", "billing-service",
		"payment-service", "order-service", "inventory-service", "search-service",
		"notification-service", "email-service", "shipping-service", "catalog-service",
		"analytics-service", "reporting-service", "media-service", "session-service",
		"config-service", "scheduler-service", "webhook-service", "frontend"}
	severities = []string{"critical", "high", "medium", "low"}
	statuses   = []string{"open", "investigating", "resolved", "closed"}
	tagPool    = []string{"production", "staging", "customer-impact", "network", "storage",
		"security", "regional", "rollback", "on-call", "postmortem"}
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

// run is main without the process exit, so tests can drive it.
func run(args []string, stdout, stderr io.Writer) int {
	cfg, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err == nil && cfg.serveBare != "" {
		if err := serveBare(cfg.serveBare, stdout, os.Stdin); err != nil {
			fmt.Fprintln(stderr, "loadgen:", err)
			return 1
		}
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		return 2
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	lg := newLoadgen(cfg, stdout, stderr)
	runMode := lg.runAll
	switch {
	case cfg.fanout:
		runMode = lg.runFanout
	case cfg.ingest:
		runMode = lg.runIngest
	}
	if err := runMode(ctx); err != nil {
		fmt.Fprintln(stderr, "loadgen:", err)
		if ctx.Err() != nil {
			return 130
		}
		return 1
	}
	return 0
}

// config holds the parsed flags.
type config struct {
	baseURL   string
	key       string
	key2      string
	serveBare string
	seed      int
	conns     int
	duration  time.Duration
	requests  int // when > 0, each measured phase is this many requests instead of -duration
	warmup    time.Duration
	timeout   time.Duration
	scenarios []string
	jsonOut   bool
	randSeed  uint64

	// -fanout mode
	fanout       bool
	subscribers  int
	mutationRate float64
	serverPID    int
	subBatch     int

	// -ingest mode
	ingest     bool
	components int
	escalate   float64
}

func parseFlags(args []string, stderr io.Writer) (config, error) {
	var cfg config
	var scenarios string
	fs := flag.NewFlagSet("loadgen", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.StringVar(&cfg.baseURL, "url", envOr("LOADGEN_URL", "http://127.0.0.1:8080"), "server base URL (env LOADGEN_URL)")
	fs.StringVar(&cfg.key, "key", os.Getenv("LOADGEN_KEY"), "API key sent as X-API-Key (env LOADGEN_KEY)")
	fs.StringVar(&cfg.key2, "key2", os.Getenv("LOADGEN_KEY2"), "post-2: the API key of a second tenant (env LOADGEN_KEY2)")
	fs.StringVar(&cfg.serveBare, "serve-bare", "", "run only the bare server of the bare scenario on `addr` (used by loadgen itself)")
	fs.IntVar(&cfg.seed, "seed", 0, "make sure the tenant holds at least `N` incidents before measuring")
	fs.IntVar(&cfg.conns, "conns", 50, "concurrent workers (-ingest: reporters), and HTTP connections kept alive")
	fs.DurationVar(&cfg.duration, "duration", 10*time.Second, "measured duration of each scenario, of the -fanout creations or of the -ingest reports")
	fs.IntVar(&cfg.requests, "requests", 0, "when `N` > 0, measure N requests per scenario (-ingest: N reports; -fanout: N creations, paced by -mutation-rate) instead of -duration: a run whose amount of work does not depend on the machine's speed")
	fs.DurationVar(&cfg.warmup, "warmup", time.Second, "unmeasured warm-up before each scenario")
	fs.DurationVar(&cfg.timeout, "timeout", 30*time.Second, "timeout of a single request, or of setting up one -fanout subscription")
	fs.StringVar(&scenarios, "scenarios", strings.Join(allScenarios, ","), "comma-separated scenarios to run, in order")
	fs.BoolVar(&cfg.jsonOut, "json", false, "print results as JSON lines instead of a table (-fanout: one JSON object; -ingest: rows, then one summary object)")
	fs.Uint64Var(&cfg.randSeed, "rand-seed", 1, "seed of the generated data and of request choices")
	fs.BoolVar(&cfg.fanout, "fanout", false, "measure GraphQL subscription fan-out instead of running -scenarios")
	fs.IntVar(&cfg.subscribers, "subscribers", 1000, "-fanout: WebSocket subscribers to open")
	fs.Float64Var(&cfg.mutationRate, "mutation-rate", 20, "-fanout: incidents created per second during -duration")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "-fanout: `pid` of the server, to report its memory per subscriber (reads /proc/PID/status)")
	fs.IntVar(&cfg.subBatch, "sub-batch", 200, "-fanout: connections opened concurrently while ramping up")
	fs.BoolVar(&cfg.ingest, "ingest", false, "load monitoring ingestion (POST /v1/component_status) instead of running -scenarios")
	fs.IntVar(&cfg.components, "components", 1000, "-ingest: report on `N` components, ingest-0, ingest-1, ... (created when missing)")
	fs.Float64Var(&cfg.escalate, "escalate", 0.05, "-ingest: `fraction` of reports that escalate to a higher impact; the rest repeat one at or below")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: loadgen [flags]\n       loadgen -fanout [flags]\n       loadgen -ingest [flags]\n\nscenarios: %s\n\nflags:\n",
			strings.Join(allScenarios, ", "))
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		return cfg, err
	}
	if cfg.serveBare != "" {
		return cfg, nil
	}
	if fs.NArg() > 0 {
		return cfg, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	var err error
	if cfg.scenarios, err = parseScenarios(scenarios); err != nil {
		return cfg, err
	}
	return cfg, cfg.validate()
}

func (c *config) validate() error {
	u, err := url.Parse(c.baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return fmt.Errorf("-url %q: want an absolute http(s) URL", c.baseURL)
	}
	c.baseURL = strings.TrimRight(c.baseURL, "/")
	switch {
	case c.key == "":
		return errors.New("no API key: pass -key or set LOADGEN_KEY")
	case c.seed < 0:
		return errors.New("-seed must be >= 0")
	case c.conns < 1:
		return errors.New("-conns must be >= 1")
	case c.duration <= 0:
		return errors.New("-duration must be > 0")
	case c.requests < 0:
		return errors.New("-requests must be >= 0")
	case c.warmup < 0:
		return errors.New("-warmup must be >= 0")
	case c.timeout <= 0:
		return errors.New("-timeout must be > 0")
	case c.fanout && c.ingest:
		return errors.New("-fanout and -ingest are separate modes: choose one")
	}
	if c.ingest {
		switch {
		case c.components < 1:
			return errors.New("-components must be >= 1")
		case !(c.escalate >= 0 && c.escalate <= 1):
			return errors.New("-escalate must be a fraction between 0 and 1")
		}
		return nil
	}
	if !c.fanout {
		return nil
	}
	switch {
	case c.subscribers < 1:
		return errors.New("-subscribers must be >= 1")
	case !(c.mutationRate > 0) || math.IsInf(c.mutationRate, 0):
		return errors.New("-mutation-rate must be > 0")
	case c.subBatch < 1:
		return errors.New("-sub-batch must be >= 1")
	case c.serverPID < 0:
		return errors.New("-server-pid must be > 0")
	}
	return nil
}

// parseScenarios splits a comma list, keeping its order and dropping repeats.
func parseScenarios(s string) ([]string, error) {
	var out []string
	for name := range strings.SplitSeq(s, ",") {
		name = strings.TrimSpace(name)
		switch {
		case name == "" || slices.Contains(out, name):
			continue
		case !slices.Contains(allScenarios, name) && !slices.Contains(extraScenarios, name):
			return nil, fmt.Errorf("unknown scenario %q (want some of: %s)", name, strings.Join(append(allScenarios, extraScenarios...), ","))
		}
		out = append(out, name)
	}
	if len(out) == 0 {
		return nil, errors.New("-scenarios is empty")
	}
	return out, nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// ---- HTTP ----

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
	return &client{
		hc:   &http.Client{Transport: tr, Timeout: cfg.timeout},
		base: cfg.baseURL,
		key:  cfg.key,
	}
}

// request describes one API call; building the *http.Request is left to do
// so generators stay cheap and testable.
type request struct {
	base   string // another server than -url (the bare scenario)
	key    string // another key than -key (post-2)
	method string
	path   string
	query  url.Values
	body   []byte
	op     string // GraphQL operation name; set on GraphQL requests only
}

func (r request) String() string {
	switch {
	case r.op != "":
		return r.method + " " + r.path + " (" + r.op + ")"
	case len(r.query) == 0:
		return r.method + " " + r.path
	}
	return r.method + " " + r.path + "?" + r.query.Encode()
}

// do sends r and always drains the body, both because latency includes the
// body and because an unread body keeps its connection from being reused.
// The body is returned when keep is set, and a prefix of it on non-2xx.
func (c *client) do(ctx context.Context, r request, keep bool) (status int, body []byte, err error) {
	u := c.base + r.path
	if r.base != "" {
		u = r.base + r.path
	}
	if len(r.query) > 0 {
		u += "?" + r.query.Encode()
	}
	var rd io.Reader
	if r.body != nil {
		rd = bytes.NewReader(r.body)
	}
	req, err := http.NewRequestWithContext(ctx, r.method, u, rd)
	if err != nil {
		return 0, nil, err
	}
	if r.key != "" {
		req.Header.Set("X-API-Key", r.key)
	} else {
		req.Header.Set("X-API-Key", c.key)
	}
	req.Header.Set("Accept", "application/json")
	if r.body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, err
	}
	defer resp.Body.Close()
	switch {
	case keep:
		body, err = io.ReadAll(resp.Body)
	case !is2xx(resp.StatusCode):
		body, err = io.ReadAll(io.LimitReader(resp.Body, errBodyPreview))
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
		}
	default:
		_, err = io.Copy(io.Discard, resp.Body)
	}
	return resp.StatusCode, body, err
}

func is2xx(code int) bool { return code >= 200 && code <= 299 }

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

// list fetches and decodes one list page, treating any non-2xx as an error.
func (c *client) list(ctx context.Context, q url.Values) (listPage, error) {
	var page listPage
	r := request{method: http.MethodGet, path: "/v1/incidents", query: q}
	status, body, err := c.do(ctx, r, true)
	if err != nil {
		return page, fmt.Errorf("%s: %w", r, err)
	}
	if status == http.StatusTooManyRequests {
		return page, fmt.Errorf("%s: HTTP 429: raise the server's INCIDENTD_RATE_LIMIT", r)
	}
	if !is2xx(status) {
		return page, fmt.Errorf("%s: HTTP %d: %s", r, status, preview(body))
	}
	if err := json.Unmarshal(body, &page); err != nil {
		return page, fmt.Errorf("%s: decoding response: %w", r, err)
	}
	return page, nil
}

// preflight checks reachability and the key with one cheap request and
// returns the tenant's totalCount.
func (c *client) preflight(ctx context.Context) (int, error) {
	r := request{method: http.MethodGet, path: "/v1/incidents", query: url.Values{"limit": {"1"}}}
	status, body, err := c.do(ctx, r, true)
	if err != nil {
		return 0, fmt.Errorf("server unreachable at %s: %w", c.base, err)
	}
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden:
		return 0, fmt.Errorf("API key rejected by %s (HTTP %d): %s", c.base, status, preview(body))
	case status == http.StatusTooManyRequests:
		return 0, fmt.Errorf("rate limited by %s already on the first request (HTTP 429): raise the server's INCIDENTD_RATE_LIMIT", c.base)
	case !is2xx(status):
		return 0, fmt.Errorf("%s: unexpected HTTP %d: %s", r, status, preview(body))
	}
	var page listPage
	if err := json.Unmarshal(body, &page); err != nil {
		return 0, fmt.Errorf("%s: decoding response: %w", r, err)
	}
	return page.Pagination.TotalCount, nil
}

func preview(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > errBodyPreview {
		s = s[:errBodyPreview] + "..."
	}
	return s
}

// ---- data generation ----

// incident is the POST /v1/incidents body.
type incident struct {
	Title       string   `json:"title"`
	Description string   `json:"description"`
	Severity    string   `json:"severity"`
	OccurredAt  string   `json:"occurredAt"`
	Service     string   `json:"service"`
	Tags        []string `json:"tags"`
	Status      string   `json:"status"`
}

// newIncident makes a random valid incident that occurred within maxAge
// before now. Its title reads like "Database timeout in user-service".
func newIncident(rng *rand.Rand, now time.Time, maxAge time.Duration) incident {
	i := rng.IntN(len(vocabulary))
	j := (i + 1 + rng.IntN(len(vocabulary)-1)) % len(vocabulary) // a different word
	w1, w2 := vocabulary[i], vocabulary[j]
	svc := pick(rng, services)
	tags := make([]string, 0, 3) // non-nil: the API expects [] rather than null
	for _, k := range rng.Perm(len(tagPool))[:rng.IntN(4)] {
		tags = append(tags, tagPool[k])
	}
	occurred := now.Add(-time.Duration(rng.Int64N(int64(maxAge))))
	return incident{
		Title:       fmt.Sprintf("%s %s in %s", strings.ToUpper(w1[:1])+w1[1:], w2, svc),
		Description: fmt.Sprintf("Elevated %s and %s errors reported by %s; on-call is investigating.", w1, w2, svc),
		Severity:    pick(rng, severities),
		OccurredAt:  occurred.UTC().Truncate(time.Second).Format(time.RFC3339),
		Service:     svc,
		Tags:        tags,
		Status:      pick(rng, statuses),
	}
}

func pick(rng *rand.Rand, from []string) string { return from[rng.IntN(len(from))] }

func postRequest(inc incident) request {
	body, err := json.Marshal(inc)
	if err != nil {
		panic(err) // a struct of strings always marshals
	}
	return request{method: http.MethodPost, path: "/v1/incidents", body: body}
}

// ---- running load ----

// generator builds the request for a job number; rng belongs to the calling
// worker, so generators need no locking.
type generator func(rng *rand.Rand, job int) request

// scheduler hands out job numbers until the phase is over.
type scheduler func() (job int, ok bool)

// measured is the scheduler of a measured phase: -requests jobs, or
// -duration.
func (c *config) measured() scheduler {
	if c.requests > 0 {
		return jobRange(0, c.requests)
	}
	return untilDeadline(c.duration)
}

// describe says how long a measured phase is.
func (c *config) describe() string {
	if c.requests > 0 {
		return fmt.Sprintf("%d requests", c.requests)
	}
	return "for " + c.duration.String()
}

// untilDeadline runs a phase for a duration.
func untilDeadline(d time.Duration) scheduler {
	deadline := time.Now().Add(d)
	return func() (int, bool) { return 0, time.Now().Before(deadline) }
}

// jobRange runs a phase for the jobs from..to-1, each exactly once.
func jobRange(from, to int) scheduler {
	var next atomic.Int64
	next.Store(int64(from))
	return func() (int, bool) {
		j := int(next.Add(1) - 1)
		return j, j < to
	}
}

// workerStats is what one worker observed; merged once the phase ends so the
// hot loop shares nothing.
type workerStats struct {
	latencies []time.Duration // successful requests only
	requests  int
	errors    int
	kinds     map[string]int // error counts by status code or "transport"
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

// loadgen holds what every phase shares.
type loadgen struct {
	cfg    config
	c      *client
	out    *printer
	diag   *errorLog
	stderr io.Writer
	phases uint64 // distinguishes the random streams of successive phases
}

func newLoadgen(cfg config, stdout, stderr io.Writer) *loadgen {
	return &loadgen{
		cfg:    cfg,
		c:      newClient(cfg),
		out:    &printer{w: stdout, json: cfg.jsonOut},
		diag:   &errorLog{w: stderr, seen: map[string]int{}, printed: map[string]bool{}},
		stderr: stderr,
	}
}

func (lg *loadgen) logf(format string, args ...any) {
	fmt.Fprintf(lg.stderr, "loadgen: "+format+"\n", args...)
}

// runPhase runs cfg.conns workers until sched is exhausted and returns the
// merged stats and the wall time. In-flight requests finish after the
// deadline rather than being cancelled, so no sample is cut short.
func (lg *loadgen) runPhase(ctx context.Context, name string, gen generator, sched scheduler) (workerStats, time.Duration) {
	lg.phases++
	stats := make([]workerStats, lg.cfg.conns)
	var wg sync.WaitGroup
	start := time.Now()
	for w := range stats {
		// Per-worker streams keep runs repeatable for a given -rand-seed
		// without a shared, locked generator.
		rng := rand.New(rand.NewPCG(lg.cfg.randSeed, lg.phases<<32|uint64(w)))
		wg.Go(func() { lg.work(ctx, name, gen, sched, rng, &stats[w]) })
	}
	wg.Wait()
	elapsed := time.Since(start)

	var all workerStats
	all.kinds = map[string]int{}
	for _, s := range stats {
		all.latencies = append(all.latencies, s.latencies...)
		all.requests += s.requests
		all.errors += s.errors
		for k, n := range s.kinds {
			all.kinds[k] += n
		}
	}
	return all, elapsed
}

func (lg *loadgen) work(ctx context.Context, name string, gen generator, sched scheduler, rng *rand.Rand, st *workerStats) {
	for ctx.Err() == nil {
		job, ok := sched()
		if !ok {
			return
		}
		r := gen(rng, job)
		gql := r.op != ""
		start := time.Now()
		status, body, err := lg.c.do(ctx, r, gql) // GraphQL bodies are inspected for errors
		lat := time.Since(start)
		var gqlErr string
		if gql && err == nil && is2xx(status) {
			gqlErr = graphQLError(body)
		}
		switch {
		case err != nil && ctx.Err() != nil:
			return // interrupted by the user, not a server failure
		case err != nil:
			st.fail("transport")
			lg.diag.report(name, "transport", r, err.Error())
		case !is2xx(status):
			kind := strconv.Itoa(status)
			st.fail(kind)
			lg.diag.report(name, kind, r, preview(body))
		case gqlErr != "":
			st.fail("graphql")
			lg.diag.report(name, "graphql", r, gqlErr)
		default:
			st.requests++
			st.latencies = append(st.latencies, lat)
		}
	}
}

func (s *workerStats) fail(kind string) {
	s.requests++
	s.errors++
	if s.kinds == nil {
		s.kinds = map[string]int{}
	}
	s.kinds[kind]++
}

// measure runs a warm-up, whose samples are discarded so connection set-up
// and cold caches do not pollute the numbers, then the measured phase.
func (lg *loadgen) measure(ctx context.Context, name string, gen generator) result {
	if lg.cfg.warmup > 0 {
		lg.logf("%s: warming up for %s", name, lg.cfg.warmup)
		lg.runPhase(ctx, name, gen, untilDeadline(lg.cfg.warmup))
	}
	lg.logf("%s: measuring %s with %d connections", name, lg.cfg.describe(), lg.cfg.conns)
	st, elapsed := lg.runPhase(ctx, name, gen, lg.cfg.measured())
	return summarize(name, lg.cfg.conns, st, elapsed)
}

// summarize turns raw samples into a result row.
func summarize(name string, conns int, st workerStats, elapsed time.Duration) result {
	slices.Sort(st.latencies)
	r := result{
		Scenario: name,
		Conns:    conns,
		Seconds:  elapsed.Seconds(),
		Requests: st.requests,
		Errors:   st.errors,
		P50:      ms(percentile(st.latencies, 50)),
		P95:      ms(percentile(st.latencies, 95)),
		P99:      ms(percentile(st.latencies, 99)),
		Max:      ms(percentile(st.latencies, 100)),
	}
	if len(st.kinds) > 0 {
		r.ErrorKinds = st.kinds
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

// ---- orchestration ----

// runAll is the whole session: preflight, seeding, setup walk, scenarios.
func (lg *loadgen) runAll(ctx context.Context) error {
	total, err := lg.c.preflight(ctx)
	if err != nil {
		return err
	}
	lg.logf("connected to %s: tenant holds %d incidents", lg.cfg.baseURL, total)

	if lg.cfg.seed > total {
		lg.seed(ctx, total, lg.cfg.seed)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if total, err = lg.c.preflight(ctx); err != nil {
			return err
		}
		lg.logf("tenant now holds %d incidents", total)
	} else if lg.cfg.seed > 0 {
		lg.logf("seed: tenant already holds >= %d incidents, nothing to create", lg.cfg.seed)
	}

	fx, err := lg.prepare(ctx, total)
	if err != nil {
		return err
	}
	if slices.Contains(lg.cfg.scenarios, "bare") {
		u, stop, err := startBare(ctx)
		if err != nil {
			return err
		}
		defer stop()
		fx.bareURL = u
	}
	if slices.Contains(lg.cfg.scenarios, "post-2") && lg.cfg.key2 == "" {
		return errors.New("post-2 needs -key2, a key of another tenant")
	}
	fx.key2 = lg.cfg.key2
	results := map[string]result{}
	for _, name := range lg.cfg.scenarios {
		gen, why := fx.generator(name)
		if gen == nil {
			lg.logf("%s: skipped: %s", name, why)
			continue
		}
		res := lg.measure(ctx, name, gen)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		lg.out.print(res)
		results[name] = res
	}
	lg.out.printRatios(costRatios(results))
	return nil
}

// seed creates incidents number from..to-1. Each incident's content comes
// from its own number, so a given -rand-seed always yields the same data set
// whatever the interleaving of workers.
func (lg *loadgen) seed(ctx context.Context, from, to int) {
	lg.logf("seed: creating %d incidents (%d -> %d)", to-from, from, to)
	now := time.Now()
	stream := lg.cfg.randSeed ^ 0x5eed5eed5eed5eed // apart from the worker streams
	gen := func(_ *rand.Rand, job int) request {
		rng := rand.New(rand.NewPCG(stream, uint64(job)))
		return postRequest(newIncident(rng, now, seedAge))
	}
	// Large seeds take minutes; report progress so the run does not look hung.
	var started atomic.Int64
	jobs := jobRange(from, to)
	sched := func() (int, bool) {
		j, ok := jobs()
		if ok {
			started.Add(1)
		}
		return j, ok
	}
	done := make(chan struct{})
	go func() {
		tick := time.NewTicker(5 * time.Second)
		defer tick.Stop()
		for {
			select {
			case <-done:
				return
			case <-tick.C:
				lg.logf("seed: %d/%d requests started", started.Load(), to-from)
			}
		}
	}()
	st, elapsed := lg.runPhase(ctx, "seed", gen, sched)
	close(done)
	if ctx.Err() != nil {
		return
	}
	lg.out.print(summarize("seed", lg.cfg.conns, st, elapsed))
	if st.errors > 0 {
		lg.logf("seed: %d of %d creations failed; the tenant holds fewer than %d incidents", st.errors, to-from, to)
	}
}

// fixtures are what the read scenarios need, gathered once before them.
type fixtures struct {
	bareURL     string
	key2        string
	now         time.Time
	ids         []string
	deepCursors []string
	cursorLimit int
	deepOffset  int
}

// prepare walks the list once, if any chosen scenario needs ids or deep
// cursors, and derives the deep offset from totalCount.
func (lg *loadgen) prepare(ctx context.Context, total int) (*fixtures, error) {
	fx := &fixtures{
		now:         time.Now(),
		cursorLimit: walkLimit,
		deepOffset:  int(math.Round(deepFraction * float64(total))),
	}
	has := func(s string) bool { return slices.Contains(lg.cfg.scenarios, s) }
	wantIDs := has("get") || has("gql-get") || has("mixed")
	wantDeep := has("cursor-deep")
	if !wantIDs && !wantDeep {
		return fx, nil
	}
	if err := lg.walk(ctx, fx, total, wantIDs, wantDeep); err != nil {
		return nil, fmt.Errorf("setup walk: %w", err)
	}
	if len(fx.deepCursors) > 0 {
		fx.cursorLimit = lg.probeCursorLimit(ctx, fx.deepCursors[0])
	}
	return fx, nil
}

// walk follows the cursor chain with the largest page size, collecting up to
// idSampleSize ids and, if wantDeep, the cursors of the last pages reached
// near deepFraction of total (or at maxWalkPages).
func (lg *loadgen) walk(ctx context.Context, fx *fixtures, total int, wantIDs, wantDeep bool) error {
	target := int(math.Ceil(deepFraction * float64(total)))
	start := time.Now()
	cursor, rows, pages := "", 0, 0
	for pages < maxWalkPages {
		q := url.Values{"limit": {strconv.Itoa(walkLimit)}}
		if cursor != "" {
			q.Set("cursor", cursor)
		}
		page, err := lg.c.list(ctx, q)
		if err != nil {
			return err
		}
		pages++
		rows += len(page.Data)
		for _, it := range page.Data {
			if wantIDs && len(fx.ids) < idSampleSize && it.ID != "" {
				fx.ids = append(fx.ids, it.ID)
			}
		}
		next := page.Pagination.NextCursor
		if next == nil || *next == "" || len(page.Data) == 0 {
			break
		}
		cursor = *next
		if wantDeep {
			fx.deepCursors = append(fx.deepCursors, cursor)
			if len(fx.deepCursors) > deepCursorsKept {
				fx.deepCursors = fx.deepCursors[1:]
			}
		}
		idsDone := !wantIDs || len(fx.ids) >= idSampleSize
		deepDone := !wantDeep || rows >= target
		if idsDone && deepDone {
			break
		}
	}
	lg.logf("setup: walked %d pages (%d rows) in %s: %d ids, %d deep cursors",
		pages, rows, time.Since(start).Round(time.Millisecond), len(fx.ids), len(fx.deepCursors))
	return nil
}

// probeCursorLimit picks the page size for cursor-deep. A page of listLimit
// makes it comparable with offset-deep, but a server may bind cursors to the
// limit that produced them; then we fall back to the walk's limit.
func (lg *loadgen) probeCursorLimit(ctx context.Context, cursor string) int {
	q := url.Values{"limit": {strconv.Itoa(listLimit)}, "cursor": {cursor}}
	if _, err := lg.c.list(ctx, q); err != nil {
		lg.logf("cursor-deep: limit=%d with a deep cursor failed (%v); using limit=%d", listLimit, err, walkLimit)
		return walkLimit
	}
	return listLimit
}

// generator returns the request generator of a scenario, or nil and the
// reason it cannot run.
func (fx *fixtures) generator(name string) (generator, string) {
	switch name {
	case "get":
		if len(fx.ids) == 0 {
			return nil, "no incidents to get (use -seed)"
		}
		return fx.get, ""
	case "gql-get":
		if len(fx.ids) == 0 {
			return nil, "no incidents to get (use -seed)"
		}
		return fx.gqlGet, ""
	case "list":
		return fx.list, ""
	case "gql-list":
		return fx.gqlList, ""
	case "keyword":
		return fx.keyword, ""
	case "cursor-deep":
		if len(fx.deepCursors) == 0 {
			return nil, "the list has only one page (use a larger -seed)"
		}
		return fx.cursorDeep, ""
	case "offset-deep":
		return fx.offsetDeep, ""
	case "post":
		return fx.post, ""
	case "mixed":
		return fx.mixed, ""
	case "mixed-list":
		return fx.mixedList, ""
	case "post-2":
		return fx.post2, ""
	case "bare":
		return func(*rand.Rand, int) request {
			return request{base: fx.bareURL, method: http.MethodGet, path: "/v1/incidents/inc_000000000000"}
		}, ""
	}
	return nil, "unknown scenario"
}

func (fx *fixtures) get(rng *rand.Rand, _ int) request {
	id := fx.ids[rng.IntN(len(fx.ids))]
	return request{method: http.MethodGet, path: "/v1/incidents/" + url.PathEscape(id)}
}

func (fx *fixtures) list(*rand.Rand, int) request {
	return request{method: http.MethodGet, path: "/v1/incidents",
		query: url.Values{"limit": {strconv.Itoa(listLimit)}}}
}

func (fx *fixtures) keyword(rng *rand.Rand, _ int) request {
	return request{method: http.MethodGet, path: "/v1/incidents",
		query: url.Values{"keyword": {pick(rng, vocabulary)}}}
}

func (fx *fixtures) cursorDeep(rng *rand.Rand, _ int) request {
	return request{method: http.MethodGet, path: "/v1/incidents", query: url.Values{
		"limit":  {strconv.Itoa(fx.cursorLimit)},
		"cursor": {pick(rng, fx.deepCursors)},
	}}
}

func (fx *fixtures) offsetDeep(*rand.Rand, int) request {
	return request{method: http.MethodGet, path: "/v1/incidents", query: url.Values{
		"limit":  {strconv.Itoa(listLimit)},
		"offset": {strconv.Itoa(fx.deepOffset)},
	}}
}

func (fx *fixtures) post(rng *rand.Rand, _ int) request {
	return postRequest(newIncident(rng, fx.now, postAge))
}

// mixed approximates a read-heavy production mix.
func (fx *fixtures) mixed(rng *rand.Rand, job int) request {
	if rng.IntN(100) < mixedPostShare {
		return fx.post(rng, job)
	}
	reads := []generator{fx.list, fx.keyword}
	if len(fx.ids) > 0 {
		reads = append(reads, fx.get)
	}
	return reads[rng.IntN(len(reads))](rng, job)
}

// mixedList is a dashboard beside a writer: 45% default list, 45% keyword
// list, 10% creates.
func (fx *fixtures) mixedList(rng *rand.Rand, job int) request {
	switch n := rng.IntN(100); {
	case n < mixedPostShare:
		return fx.post(rng, job)
	case n < mixedPostShare+(100-mixedPostShare)/2:
		return fx.list(rng, job)
	}
	return fx.keyword(rng, job)
}

// post2 is post from two tenants at once: half the requests with -key2.
func (fx *fixtures) post2(rng *rand.Rand, job int) request {
	r := fx.post(rng, job)
	if rng.IntN(2) == 1 {
		r.key = fx.key2
	}
	return r
}

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
		b, err := json.Marshal(r)
		if err != nil {
			panic(err) // plain numbers and strings always marshal
		}
		fmt.Fprintf(p.w, "%s\n", b)
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
	seen      map[string]int // distinct kinds printed, by scenario
	printed   map[string]bool
	warned429 bool
}

func (l *errorLog) report(scenario, kind string, r request, detail string) {
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
		fmt.Fprintf(l.w, "loadgen: %s: %s: %s\n", scenario, r, detail)
	case "graphql":
		fmt.Fprintf(l.w, "loadgen: %s: %s: GraphQL errors: %s\n", scenario, r, detail)
	default:
		fmt.Fprintf(l.w, "loadgen: %s: %s: HTTP %s: %s\n", scenario, r, kind, detail)
	}
	if kind == "429" && !l.warned429 {
		l.warned429 = true
		fmt.Fprintln(l.w, "loadgen: the server is rate limiting: raise its INCIDENTD_RATE_LIMIT (or lower -conns) for meaningful numbers")
	}
}
