// Package metrics holds incidentd's Prometheus metrics: the collectors, the
// HTTP middleware that times requests by route template, and the /metrics
// handler. Each server has a registry of its own (never the global default),
// so that two servers in one process, as in tests, never share counts.
package metrics

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/go-chi/chi/v5"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/incidentd/incidentd/model"
)

// Label values that stand for many: they keep the series count bounded
// whatever clients send.
const (
	// Unmatched is the route of a request no route template matched (a 404
	// of an unknown path): the raw path would make a series per path.
	Unmatched = "unmatched"
	// Other stands for a method, or a GraphQL operation name, past the bounds.
	Other = "other"
	// Anonymous is the operation name of a GraphQL operation without one.
	Anonymous = "anonymous"
)

// MaxOperationNames bounds the distinct GraphQL operation names kept as
// labels; later new names count as Other.
const MaxOperationNames = 200

// maxOperationNameLen: longer names count as Other.
const maxOperationNameLen = 64

// Metrics is one server's set of collectors.
type Metrics struct {
	reg *prometheus.Registry

	requestDuration *prometheus.HistogramVec
	inFlight        prometheus.Gauge
	graphqlOps      *prometheus.CounterVec
	deliveryLag     prometheus.Histogram
	refusals        *prometheus.CounterVec
	ingest          *prometheus.CounterVec

	opNames boundedNames
}

// New returns a registry with the Go runtime and process collectors and
// incidentd's own metrics.
func New() *Metrics {
	m := &Metrics{
		reg: prometheus.NewRegistry(),
		requestDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "http_server_request_duration_seconds",
			Help:    "Time to serve an HTTP request, by method, chi route template and status code (streams and WebSockets: their whole life).",
			Buckets: prometheus.DefBuckets,
		}, []string{"method", "route", "status"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "http_server_requests_in_flight",
			Help: "HTTP requests being served now (open streams and WebSockets included).",
		}),
		graphqlOps: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "graphql_operations_total",
			Help: "GraphQL operations by the schema field they start with (anonymous when refused before validation), type and outcome.",
		}, []string{"operation", "type", "outcome"}),
		deliveryLag: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "incidentd_event_delivery_lag_seconds",
			Help:    "Time from an event's write (its commit time stamp) to the live hub handing it to subscribers.",
			Buckets: []float64{.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30},
		}),
		refusals: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentd_rate_limit_refusals_total",
			Help: "Requests and operations refused with rate_limited (429), by tier and by the window spent (budget or burst).",
		}, []string{"tier", "reason"}),
		ingest: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "incidentd_ingest_decisions_total",
			Help: "Monitoring reports by what the ingestion rules decided.",
		}, []string{"decision"}),
		opNames: boundedNames{max: MaxOperationNames, seen: map[string]struct{}{}},
	}
	m.reg.MustRegister(
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		m.requestDuration, m.inFlight, m.graphqlOps, m.deliveryLag, m.refusals, m.ingest,
	)
	return m
}

// Registry is the server's own registry, for collectors wired elsewhere.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Handler serves the registry in the Prometheus text format. With a token,
// a scrape must send "Authorization: Bearer <token>" (401 otherwise).
func (m *Metrics) Handler(token string) http.Handler {
	h := promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{Registry: m.reg})
	if token == "" {
		return h
	}
	// Comparing digests keeps the comparison constant-time whatever the
	// length of what was sent.
	want := sha256.Sum256([]byte(token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="metrics"`)
			http.Error(w, "Unauthorized", http.StatusUnauthorized)
			return
		}
		h.ServeHTTP(w, r)
	})
}

// Middleware times every request by its chi route template. It must wrap
// the chi router from outside: it puts the routing context in the request
// itself, so that it can read the template chi filled in once the request
// is served. onRoute, if set, is told each served request's route (to name
// its trace span).
func (m *Metrics) Middleware(next http.Handler, onRoute func(r *http.Request, route string)) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		m.inFlight.Inc()
		defer m.inFlight.Dec()
		r, rctx := withRouteContext(r, next)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			// A panic that escaped the router still counts (as the 500 net/http
			// turns it into), then goes on up.
			status := sw.status
			v := recover()
			switch {
			case status != 0:
			case v != nil:
				status = http.StatusInternalServerError
			default:
				status = http.StatusOK // what net/http sends for a handler that wrote nothing
			}
			tmpl := route(rctx, r)
			m.requestDuration.WithLabelValues(methodLabel(r.Method), tmpl, strconv.Itoa(status)).Observe(time.Since(start).Seconds())
			if onRoute != nil {
				onRoute(r, tmpl)
			}
			if v != nil {
				panic(v) // counted; net/http (or an outer recoverer) deals with it
			}
		}()
		next.ServeHTTP(sw, r)
	})
}

// withRouteContext returns r with a chi routing context (the one already in
// it, or a new one), which chi fills in while it routes: a router that finds
// one in its request uses it instead of a pooled one of its own.
func withRouteContext(r *http.Request, next http.Handler) (*http.Request, *chi.Context) {
	if rctx := chi.RouteContext(r.Context()); rctx != nil {
		return r, rctx
	}
	rctx := chi.NewRouteContext()
	if routes, ok := next.(chi.Routes); ok {
		rctx.Routes = routes // as chi sets it for the requests it routes
	}
	return r.WithContext(context.WithValue(r.Context(), chi.RouteCtxKey, rctx)), rctx
}

// route is the route template of a served request, never its raw path:
// Unmatched when no route matched (a 404 of an unknown path). Middleware of
// a mounted router (authentication, rate limits) answers before the router
// picks a route, leaving only the mount's catch-all ("/v1/*"): the route
// the request would have taken is looked up then.
func route(rctx *chi.Context, r *http.Request) string {
	p := rctx.RoutePattern()
	if strings.HasSuffix(p, "/*") && rctx.Routes != nil {
		path := r.URL.RawPath
		if path == "" {
			path = r.URL.Path
		}
		probe := chi.NewRouteContext()
		p = ""
		if rctx.Routes.Match(probe, r.Method, path) {
			p = probe.RoutePattern()
		}
	}
	if p == "" {
		return Unmatched
	}
	return p
}

var knownMethods = map[string]bool{
	http.MethodGet: true, http.MethodHead: true, http.MethodPost: true, http.MethodPut: true, http.MethodPatch: true,
	http.MethodDelete: true, http.MethodOptions: true, http.MethodConnect: true, http.MethodTrace: true,
}

// methodLabel bounds the method label: net/http accepts any token as a method.
func methodLabel(m string) string {
	if knownMethods[m] {
		return m
	}
	return Other
}

// GraphQLOperation counts one GraphQL operation: name is the schema field
// it starts with ("" when it was refused before validation; still bounded
// below, in case a caller passes anything else), typ query, mutation, subscription or unknown (refused
// before it could be parsed), failed whether its response carried errors.
func (m *Metrics) GraphQLOperation(name, typ string, failed bool) {
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.graphqlOps.WithLabelValues(m.opNames.label(name), typ, outcome).Inc()
}

// Delivered observes the lag of events the hub has just been handed, now.
func (m *Metrics) Delivered(now time.Time, evs []*model.Event) {
	for _, e := range evs {
		m.deliveryLag.Observe(max(0, now.Sub(e.At).Seconds()))
	}
}

// RateLimitRefused counts one refused charge: tier as configured, reason
// budget (the main window) or burst.
func (m *Metrics) RateLimitRefused(tier, reason string) {
	m.refusals.WithLabelValues(tier, reason).Inc()
}

// IngestDecision counts one monitoring report's decision.
func (m *Metrics) IngestDecision(decision string) {
	m.ingest.WithLabelValues(decision).Inc()
}

// WatchSubscribers exports count (the live hub's subscriptions) as
// incidentd_live_subscribers, read on each scrape.
func (m *Metrics) WatchSubscribers(count func() int) {
	m.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "incidentd_live_subscribers",
		Help: "Live subscriptions (GraphQL subscriptions and server-sent event streams) the hub holds.",
	}, func() float64 { return float64(count()) }))
}

// boundedNames keeps the label values of GraphQL operation names bounded:
// clients choose them, so only well-formed, short names, and only the first
// max of them, become label values.
type boundedNames struct {
	mu   sync.Mutex
	max  int
	seen map[string]struct{}
}

func (b *boundedNames) label(name string) string {
	if name == "" {
		return Anonymous
	}
	if len(name) > maxOperationNameLen || !isGraphQLName(name) {
		return Other
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if _, ok := b.seen[name]; ok {
		return name
	}
	if len(b.seen) >= b.max {
		return Other
	}
	b.seen[name] = struct{}{}
	return name
}

// isGraphQLName reports whether s is a GraphQL Name: /[_A-Za-z][_0-9A-Za-z]*/.
func isGraphQLName(s string) bool {
	for i, c := range []byte(s) {
		switch {
		case c == '_', c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z':
		case c >= '0' && c <= '9' && i > 0:
		default:
			return false
		}
	}
	return s != ""
}

// statusWriter records the status code sent.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (s *statusWriter) WriteHeader(code int) {
	// 1xx answers other than 101 (a WebSocket's) are informational: the
	// final status comes after them.
	if s.status == 0 && (code >= 200 || code == http.StatusSwitchingProtocols) {
		s.status = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

// Flush serves streaming handlers (server-sent events) that assert http.Flusher.
func (s *statusWriter) Flush() {
	if s.status == 0 {
		s.status = http.StatusOK
	}
	_ = http.NewResponseController(s.ResponseWriter).Flush()
}

// Unwrap lets http.ResponseController and WebSocket upgrades reach the real writer.
func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }
