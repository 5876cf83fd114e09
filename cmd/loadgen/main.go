// Command loadgen drives an incidentd server with concurrent HTTP traffic and
// reports, per scenario, throughput and exact latency percentiles. With
// -fanout it instead measures how GraphQL subscription events fan out to
// many WebSocket subscribers; with -public, how a published status reaches
// many anonymous viewers (SSE and WebSocket); with -ingest, how monitoring
// reports (POST /v1/component_status) hold up under many concurrent
// reporters.
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
// -duration (or -requests requests). Workers are those of vegeta's attacker
// (github.com/tsenart/vegeta) with no rate set: each sends its next request
// as soon as its last is answered, over -conns keep-alive connections.
// Latency covers the whole request including reading the body.
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
//     for -duration, paced by a clock (a beat missed while every worker is busy is dropped, not
//     sent late in a burst) and sent by enough workers (4 to 64)
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
// # Public viewers
//
// -public ignores -scenarios, -seed and -warmup. Its key needs
// incidents:read and incidents:write, and components:write when -tenant (the
// key's tenant) is not published yet. It:
//
//  1. publishes -tenant unless GET /v1/public/{tenant}/status already
//     answers, creates one incident titled "loadgen public <run> change 0"
//     and checks that the public status shows it;
//  2. opens -viewers anonymous viewers, -sub-batch at a time: a share
//     -ws-share on /graphql/public (graphql-transport-ws, the publicStatus
//     subscription with version, components and the open incidents' title
//     and updatedAt), the rest on GET /v1/public/{tenant}/status/events;
//     on an IPv4 loopback server, at most -per-address of them per source
//     address 127.0.x.y, so that each stays below the server's cap per
//     client address (INCIDENTD_PUBLIC_MAX_PER_IP) as distinct clients
//     would; each viewer is open once it has read its first state;
//  3. idles 2 s, reading the server's VmRSS before and after (-server-pid);
//  4. makes -mutation-rate changes per second for -duration (or -requests
//     changes), one at a time so that the states have one order: each
//     renames the incident ("... change <k>") with PATCH /v1/incidents/{id},
//     which alters the public status every time without growing it;
//  5. waits up to 5 s for every viewer to read the latest state, reads
//     VmRSS again, closes the viewers and resolves the incident.
//
// A state is a whole status, and a viewer that falls behind gets only the
// newest: so each viewer must reach the latest state, and a change it never
// saw was superseded (counted as skipped, not missing). Latency is the
// receipt of a state minus the updatedAt the write answered for its change
// (the server's clock inside the write's transaction: loadgen and the
// server must share a clock), over every state received; the report also
// gives it from the write's answer instead. Output (numbers illustrative):
//
//	viewers:      2000 of 2000 open (1000 SSE, 1000 WebSocket) from 50 source addresses (up to 40 each), 0 failed; ramp-up 1.902s (200 at a time)
//	server RSS:   61480 KiB before, 98260 with the viewers, 99100 after the changes; 18831 bytes per viewer
//	changes:      60 made, 0 failed in 30.0s (2.0/s, target 2.0/s); PATCH p50 3.10ms p99 7.20ms
//	state size:   SSE data 905 bytes, GraphQL next 370 bytes
//	deliveries:   2000 of 2000 viewers reached the latest state; 120000 states delivered, 0 skipped (superseded, by design); ...
//	latency (ms): p50 21.30  p95 38.20  p99 45.10  max 60.70  (receipt - the change's updatedAt, over all states received); ...
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
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"slices"
	"strconv"
	"strings"
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
	case cfg.public:
		runMode = lg.runPublic
	case cfg.webhooks:
		runMode = lg.runWebhooks
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

	// -public mode (with -mutation-rate, -server-pid and -sub-batch)
	public     bool
	tenant     string
	viewers    int
	wsShare    float64
	perAddress int

	// -webhooks mode (with -mutation-rate and -key2)
	webhooks bool
	// allHealthy: -webhooks without the slow and the failing receiver.
	allHealthy bool
	receivers  int

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
	fs.Float64Var(&cfg.mutationRate, "mutation-rate", 20, "-fanout: incidents created per second during -duration; -public: changes per second; -webhooks: incidents created per second")
	fs.IntVar(&cfg.serverPID, "server-pid", 0, "-fanout, -public: `pid` of the server, to report its memory per subscriber or viewer (reads /proc/PID/status)")
	fs.IntVar(&cfg.subBatch, "sub-batch", 200, "-fanout, -public: connections opened concurrently while ramping up")
	fs.BoolVar(&cfg.ingest, "ingest", false, "load monitoring ingestion (POST /v1/component_status) instead of running -scenarios")
	fs.IntVar(&cfg.components, "components", 1000, "-ingest: report on `N` components, ingest-0, ingest-1, ... (created when missing)")
	fs.BoolVar(&cfg.public, "public", false, "measure anonymous viewers of a published status (SSE and /graphql/public) instead of running -scenarios")
	fs.StringVar(&cfg.tenant, "tenant", os.Getenv("LOADGEN_TENANT"), "-public: the key's tenant, whose status the viewers watch (published when it is not) (env LOADGEN_TENANT)")
	fs.IntVar(&cfg.viewers, "viewers", 1000, "-public: viewers to open")
	fs.Float64Var(&cfg.wsShare, "ws-share", 0.5, "-public: `fraction` of the viewers on WebSocket (/graphql/public); the rest on SSE")
	fs.IntVar(&cfg.perAddress, "per-address", 40, "-public: at most `N` viewers per loopback source address (127.0.x.y), below the server's cap per client address; 0: one address")
	fs.BoolVar(&cfg.webhooks, "webhooks", false, "measure outgoing webhook delivery to local receivers (healthy, one slow, one failing) instead of running -scenarios; -key2: a tenant without endpoints for the baseline")
	fs.BoolVar(&cfg.allHealthy, "all-healthy", false, "-webhooks: every receiver healthy (the control run: the healthy receivers' latency without a slow and a failing one)")
	fs.IntVar(&cfg.receivers, "receivers", 10, "-webhooks: local receivers, one endpoint each: all healthy but one slow and one failing")
	fs.Float64Var(&cfg.escalate, "escalate", 0.05, "-ingest: `fraction` of reports that escalate to a higher impact; the rest repeat one at or below")
	fs.Usage = func() {
		fmt.Fprintf(fs.Output(), "usage: loadgen [flags]\n       loadgen -fanout [flags]\n       loadgen -ingest [flags]\n       loadgen -public -tenant T [flags]\n       loadgen -webhooks [flags]\n\nscenarios: %s\n\nflags:\n",
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
	case c.public && (c.fanout || c.ingest):
		return errors.New("-public, -fanout and -ingest are separate modes: choose one")
	case c.webhooks && (c.public || c.fanout || c.ingest):
		return errors.New("-webhooks, -public, -fanout and -ingest are separate modes: choose one")
	case c.webhooks && c.allHealthy && c.receivers < 1:
		return errors.New("-receivers must be >= 1")
	case c.webhooks && !c.allHealthy && c.receivers < 3:
		return errors.New("-receivers must be >= 3: healthy ones, one slow and one failing")
	case c.public && c.tenant == "":
		return errors.New("-public needs -tenant (or LOADGEN_TENANT): the key's tenant")
	case c.public && c.viewers < 1:
		return errors.New("-viewers must be >= 1")
	case c.public && !(c.wsShare >= 0 && c.wsShare <= 1):
		return errors.New("-ws-share must be a fraction between 0 and 1")
	case c.public && c.perAddress < 0:
		return errors.New("-per-address must be >= 0")
	case c.ingest && c.components < 1:
		return errors.New("-components must be >= 1")
	case c.ingest && !(c.escalate >= 0 && c.escalate <= 1):
		return errors.New("-escalate must be a fraction between 0 and 1")
	case !c.fanout && !c.public && !c.webhooks:
		return nil // the -fanout flags matter only with -fanout, -public or -webhooks
	case c.fanout && c.subscribers < 1:
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

// loadgen holds what every mode shares.
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

// ---- the scenarios ----

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
		gen, why := fx.scenario(name)
		if gen == nil {
			lg.logf("%s: skipped: %s", name, why)
			continue
		}
		p := lg.cfg.measured(name, gen)
		if strings.HasPrefix(name, "gql-") {
			// A GraphQL failure hides in a 200's body, so read it whole.
			p.keep, p.judge = -1, judgeGraphQL
		}
		if lg.cfg.warmup > 0 {
			// Discarded, so connection set-up and cold caches do not
			// pollute the numbers.
			lg.logf("%s: warming up for %s", name, lg.cfg.warmup)
			lg.attack(ctx, phase{name: name, gen: gen, duration: lg.cfg.warmup, keep: p.keep, judge: p.judge})
		}
		lg.logf("%s: measuring %s with %d connections", name, lg.cfg.describe(), lg.cfg.conns)
		st, elapsed := lg.attack(ctx, p)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		res := summarize(name, lg.cfg.conns, st[0], elapsed)
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
	stream := lg.cfg.randSeed ^ 0x5eed5eed5eed5eed // apart from the workers' streams
	st, elapsed := lg.attack(ctx, phase{name: "seed", jobs: to - from, keep: errBodyPreview,
		gen: func(_ *rand.Rand, job int) request {
			rng := rand.New(rand.NewPCG(stream, uint64(from+job)))
			return postRequest(newIncident(rng, now, seedAge))
		}})
	if ctx.Err() != nil {
		return
	}
	lg.out.print(summarize("seed", lg.cfg.conns, st[0], elapsed))
	if st[0].errors > 0 {
		lg.logf("seed: %d of %d creations failed; the tenant holds fewer than %d incidents", st[0].errors, to-from, to)
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
		var page listPage
		if err := lg.c.getJSON(ctx, "/v1/incidents", q, &page); err != nil {
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
	if err := lg.c.getJSON(ctx, "/v1/incidents", q, &listPage{}); err != nil {
		lg.logf("cursor-deep: limit=%d with a deep cursor failed (%v); using limit=%d", listLimit, err, walkLimit)
		return walkLimit
	}
	return listLimit
}

// scenario returns the requests of a scenario, or nil and why it cannot run.
func (fx *fixtures) scenario(name string) (generator, string) {
	listOf := func(q func(*rand.Rand) url.Values) generator {
		return func(rng *rand.Rand, _ int) request {
			return request{method: http.MethodGet, path: "/v1/incidents", query: q(rng)}
		}
	}
	list := listOf(func(*rand.Rand) url.Values { return url.Values{"limit": {strconv.Itoa(listLimit)}} })
	keyword := listOf(func(rng *rand.Rand) url.Values { return url.Values{"keyword": {pick(rng, vocabulary)}} })
	post := func(rng *rand.Rand, _ int) request { return postRequest(newIncident(rng, fx.now, postAge)) }
	get := func(rng *rand.Rand, _ int) request {
		return request{method: http.MethodGet, path: "/v1/incidents/" + url.PathEscape(pick(rng, fx.ids))}
	}
	reads := mix(share{1, list}, share{1, keyword}) // mixed's reads, spread evenly
	if len(fx.ids) > 0 {
		reads = mix(share{1, list}, share{1, keyword}, share{1, get})
	}
	needIDs := len(fx.ids) == 0 && (name == "get" || name == "gql-get")
	switch {
	case needIDs:
		return nil, "no incidents to get (use -seed)"
	case name == "cursor-deep" && len(fx.deepCursors) == 0:
		return nil, "the list has only one page (use a larger -seed)"
	}
	return map[string]generator{
		"get":      get,
		"gql-get":  fx.gqlGet,
		"list":     list,
		"gql-list": fx.gqlList,
		"keyword":  keyword,
		"cursor-deep": listOf(func(rng *rand.Rand) url.Values {
			return url.Values{"limit": {strconv.Itoa(fx.cursorLimit)}, "cursor": {pick(rng, fx.deepCursors)}}
		}),
		"offset-deep": listOf(func(*rand.Rand) url.Values {
			return url.Values{"limit": {strconv.Itoa(listLimit)}, "offset": {strconv.Itoa(fx.deepOffset)}}
		}),
		"post": post,
		// post from two tenants at once: half the requests with -key2.
		"post-2": func(rng *rand.Rand, job int) request {
			r := post(rng, job)
			if rng.IntN(2) == 1 {
				r.key = fx.key2
			}
			return r
		},
		// A read-heavy production mix, and a dashboard beside a writer.
		"mixed":      mix(share{mixedPostShare, post}, share{100 - mixedPostShare, reads}),
		"mixed-list": mix(share{mixedPostShare, post}, share{(100 - mixedPostShare) / 2, list}, share{(100 - mixedPostShare) / 2, keyword}),
		"bare": func(*rand.Rand, int) request {
			return request{base: fx.bareURL, method: http.MethodGet, path: "/v1/incidents/inc_000000000000"}
		},
	}[name], "unknown scenario"
}

// share is one part of a mix: a generator and its weight.
type share struct {
	weight int
	gen    generator
}

// mix picks, for each request, one of shares in proportion to the weights.
func mix(shares ...share) generator {
	total := 0
	for _, s := range shares {
		total += s.weight
	}
	return func(rng *rand.Rand, job int) request {
		n := rng.IntN(total)
		for _, s := range shares[:len(shares)-1] {
			if n < s.weight {
				return s.gen(rng, job)
			}
			n -= s.weight
		}
		return shares[len(shares)-1].gen(rng, job)
	}
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
	return request{method: http.MethodPost, path: "/v1/incidents", body: mustJSON(inc)}
}
