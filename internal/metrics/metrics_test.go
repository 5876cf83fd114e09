package metrics_test

import (
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	promodel "github.com/prometheus/common/model"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/internal/metrics"
	"github.com/incidentd/incidentd/internal/server"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// scrape reads url (a /metrics endpoint) with an optional bearer token and
// returns the status and, on 200, the parsed families.
func scrape(t *testing.T, url, token string) (int, map[string]*dto.MetricFamily) {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("scrape %s: %v", url, err)
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		_, _ = io.Copy(io.Discard, res.Body)
		return res.StatusCode, nil
	}
	p := expfmt.NewTextParser(promodel.UTF8Validation)
	fams, err := p.TextToMetricFamilies(res.Body)
	if err != nil {
		t.Fatalf("parse the scrape of %s: %v", url, err)
	}
	return res.StatusCode, fams
}

// series returns the metrics of family name whose labels include want.
func series(fams map[string]*dto.MetricFamily, name string, want map[string]string) []*dto.Metric {
	var out []*dto.Metric
	for _, m := range fams[name].GetMetric() {
		labels := map[string]string{}
		for _, l := range m.GetLabel() {
			labels[l.GetName()] = l.GetValue()
		}
		ok := true
		for k, v := range want {
			if labels[k] != v {
				ok = false
			}
		}
		if ok {
			out = append(out, m)
		}
	}
	return out
}

// value is the value of the one series of name with labels (a counter's,
// a gauge's, or a histogram's count); it fails the test when there is none.
func value(t *testing.T, fams map[string]*dto.MetricFamily, name string, labels map[string]string) float64 {
	t.Helper()
	ms := series(fams, name, labels)
	if len(ms) != 1 {
		t.Fatalf("%s%v: %d series, want 1 (family: %v)", name, labels, len(ms), fams[name])
	}
	m := ms[0]
	switch {
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	case m.Untyped != nil:
		return m.Untyped.GetValue()
	}
	t.Fatalf("%s%v: no value", name, labels)
	return 0
}

// TestMetricsScrape drives both doors, a subscription and a monitoring
// report, then scrapes /metrics on the main listener: requests are labelled
// by route template (never the raw path), 404s without a route as
// unmatched; GraphQL operations by name, type and outcome; the subscriber
// gauge follows the subscription; events delivered are timed; the pool is
// reported (with PostgreSQL's acquisition counters there).
func TestMetricsScrape(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{})
		tenant := apitest.Tenant("metrics")
		key := s.Key(tenant, model.ScopeIncidentsWrite, model.ScopeComponentsWrite)

		created := s.Do("POST", "/v1/incidents", key, map[string]any{
			"title": "Database connection timeout", "severity": "high", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201).Map(t)
		id := created["id"].(string)
		s.Do("GET", "/v1/incidents/"+id, key, nil).Expect(t, 200)
		s.Do("GET", "/v1/incidents/inc_doesnotexist0", key, nil).Expect(t, 404)
		s.Do("GET", "/no/such/route/xyz", key, nil).Expect(t, 404)
		s.Do("GET", "/v1/no-such-collection", key, nil).Expect(t, 404)

		if st, r := s.GQL(key, `query IncidentList { incidents(first: 1) { totalCount } }`, nil); st != 200 || len(r.Errors) > 0 {
			t.Fatalf("IncidentList: %d %+v", st, r.Errors)
		}
		if st, r := s.GQL(key, `{ incidents(first: 1) { totalCount } }`, nil); st != 200 || len(r.Errors) > 0 {
			t.Fatalf("anonymous query: %d %+v", st, r.Errors)
		}
		// Allowed in, refused inside: the key lacks apikeys:admin.
		if _, r := s.GQL(key, `query Keys { apiKeys { id } }`, nil); len(r.Errors) == 0 {
			t.Fatal("Keys: want an error")
		}
		// Refused before it runs: no such field.
		if _, r := s.GQL(key, `query Broken { noSuchField }`, nil); len(r.Errors) == 0 {
			t.Fatal("Broken: want an error")
		}

		// A monitoring report opens an incident.
		s.Do("POST", "/v1/components", key, map[string]any{"displayName": "API", "labels": map[string]string{"region": "eu"}}).Expect(t, 201)
		s.Do("POST", "/v1/component_status", key, map[string]any{"name": "API", "impact": "major",
			"attributes": []map[string]string{{"name": "region", "value": "eu"}}}).Expect(t, 201)
		// The same report again changes nothing.
		s.Do("POST", "/v1/component_status", key, map[string]any{"name": "API", "impact": "major",
			"attributes": []map[string]string{{"name": "region", "value": "eu"}}}).Expect(t, 201)

		_, fams := scrape(t, s.URL+"/metrics", "")
		const dur = "http_server_request_duration_seconds"
		for _, c := range []struct{ method, route, status string }{
			{"POST", "/v1/incidents", "201"},
			{"GET", "/v1/incidents/{id}", "200"},
			{"GET", "/v1/incidents/{id}", "404"},
			{"GET", "unmatched", "404"},
			{"POST", "/graphql", "200"},
			{"POST", "/v1/component_status", "201"},
		} {
			if n := value(t, fams, dur, map[string]string{"method": c.method, "route": c.route, "status": c.status}); n < 1 {
				t.Errorf("%s %s %s: count %v", c.method, c.route, c.status, n)
			}
		}
		if n := value(t, fams, dur, map[string]string{"method": "GET", "route": "unmatched", "status": "404"}); n != 2 {
			t.Errorf("unmatched 404s: %v, want 2", n)
		}
		for _, m := range fams[dur].GetMetric() {
			for _, l := range m.GetLabel() {
				if l.GetName() == "route" && (strings.Contains(l.GetValue(), id) || strings.Contains(l.GetValue(), "xyz") ||
					strings.Contains(l.GetValue(), "doesnotexist") || strings.Contains(l.GetValue(), "no-such")) {
					t.Errorf("a raw path became a route label: %q", l.GetValue())
				}
			}
		}
		if value(t, fams, "http_server_requests_in_flight", nil) < 1 {
			t.Error("in flight: the scrape itself is a request in flight")
		}

		const ops = "graphql_operations_total"
		for _, c := range []struct {
			op, typ, outcome string
			want             float64
		}{
			{"incidents", "query", "ok", 2}, // IncidentList and the anonymous one: by the field they start with
			{"apiKeys", "query", "error", 1},
			{"anonymous", "unknown", "error", 1}, // Broken failed validation: no field to name it by
		} {
			if n := value(t, fams, ops, map[string]string{"operation": c.op, "type": c.typ, "outcome": c.outcome}); n != c.want {
				t.Errorf("%s %s %s: %v, want %v", c.op, c.typ, c.outcome, n, c.want)
			}
		}

		const decisions = "incidentd_ingest_decisions_total"
		if n := value(t, fams, decisions, map[string]string{"decision": "create"}); n != 1 {
			t.Errorf("create decisions: %v", n)
		}
		if n := value(t, fams, decisions, map[string]string{"decision": "no_change"}); n != 1 {
			t.Errorf("no_change decisions: %v", n)
		}

		for _, g := range []string{"incidentd_db_pool_acquired_connections", "incidentd_db_pool_idle_connections",
			"incidentd_db_pool_total_connections"} {
			value(t, fams, g, nil)
		}
		if value(t, fams, "incidentd_db_pool_max_connections", nil) < 1 {
			t.Error("pool max: want at least 1")
		}
		if b.Name == "postgres" {
			if value(t, fams, "incidentd_db_pool_acquires_total", nil) < 1 {
				t.Error("pool acquisitions: want some after these requests")
			}
			value(t, fams, "incidentd_db_pool_acquire_duration_seconds_total", nil)
		}
		for _, f := range []string{"go_goroutines", "process_cpu_seconds_total"} {
			if fams[f] == nil {
				t.Errorf("%s: missing (Go and process collectors)", f)
			}
		}
		if n := value(t, fams, "incidentd_live_subscribers", nil); n != 0 {
			t.Errorf("subscribers before any: %v", n)
		}

		// A subscription moves the gauge; its event is timed on delivery.
		ws, ack, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
		if err != nil || ack.Type != "connection_ack" {
			t.Fatalf("dial: %v %+v", err, ack)
		}
		ws.Use(t)
		ws.Subscribe("1", `subscription Watch { incidentChanged { id type } }`, nil)
		s.WaitSubscriptions(1)
		_, fams = scrape(t, s.URL+"/metrics", "")
		// The names clients gave their operations are their own text: never a label.
		for _, m := range fams[ops].GetMetric() {
			for _, l := range m.GetLabel() {
				if v := l.GetValue(); v == "IncidentList" || v == "Keys" || v == "Broken" || v == "Watch" || v == "noSuchField" {
					t.Errorf("client-chosen text %q became a label", v)
				}
			}
		}
		if n := value(t, fams, "incidentd_live_subscribers", nil); n != 1 {
			t.Errorf("subscribers with one open: %v", n)
		}
		lagBefore := value(t, fams, "incidentd_event_delivery_lag_seconds", nil)
		s.Do("POST", "/v1/incidents", key, map[string]any{
			"title": "Second", "severity": "low", "occurredAt": "2024-01-15T14:30:00Z"}).Expect(t, 201)
		ws.NextData("1", 10*time.Second)
		_, fams = scrape(t, s.URL+"/metrics", "")
		if n := value(t, fams, "incidentd_event_delivery_lag_seconds", nil); n <= lagBefore {
			t.Errorf("delivery lag observations: %v after an event, %v before", n, lagBefore)
		}
		if n := value(t, fams, ops, map[string]string{"operation": "incidentChanged", "type": "subscription", "outcome": "ok"}); n != 1 {
			t.Errorf("Watch subscription: %v", n)
		}
		ws.Stop("1")
		s.WaitSubscriptions(0)
		ws.Close()
		_, fams = scrape(t, s.URL+"/metrics", "")
		if n := value(t, fams, "incidentd_live_subscribers", nil); n != 0 {
			t.Errorf("subscribers after the stop: %v", n)
		}
	})
}

// TestMetricsRateLimitRefusals: a spent budget's 429 is counted by tier and window.
func TestMetricsRateLimitRefusals(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{RateLimit: "2-M"})
		key := s.Key(apitest.Tenant("limited"), model.ScopeIncidentsRead)
		for range 2 {
			s.Do("GET", "/v1/incidents", key, nil).Expect(t, 200)
		}
		s.Do("GET", "/v1/incidents", key, nil).Expect(t, 429)
		_, fams := scrape(t, s.URL+"/metrics", "") // /metrics is not charged
		if n := value(t, fams, "incidentd_rate_limit_refusals_total", map[string]string{"tier": "default", "reason": "budget"}); n != 1 {
			t.Errorf("refusals: %v, want 1", n)
		}
		if n := value(t, fams, "http_server_request_duration_seconds", map[string]string{"route": "/v1/incidents", "status": "429"}); n != 1 {
			t.Errorf("429s timed: %v", n)
		}
	})
}

// start serves a server built with cfg over b, as the command does: the
// main handler, and the scrape handler on a listener of its own.
func start(t *testing.T, b apitest.Backend, cfg server.Config) (main, separate *httptest.Server) {
	t.Helper()
	st := apitest.OpenStore(t, b, store.Options{})
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	app, err := server.New(st, cfg)
	if err != nil {
		t.Fatal(err)
	}
	main, separate = httptest.NewServer(app.Handler), httptest.NewServer(app.Metrics)
	t.Cleanup(func() {
		app.Close()
		main.Close()
		separate.Close()
	})
	return main, separate
}

// TestMetricsToken: with a token, a scrape without it, or with another, is
// a 401; with it, a 200.
func TestMetricsToken(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		srv, _ := start(t, b, server.Config{MetricsToken: "s3cret-token"})
		for _, tok := range []string{"", "wrong", "s3cret-token-and-more", "s3cret-toke"} {
			if st, _ := scrape(t, srv.URL+"/metrics", tok); st != http.StatusUnauthorized {
				t.Errorf("token %q: %d, want 401", tok, st)
			}
		}
		st, fams := scrape(t, srv.URL+"/metrics", "s3cret-token")
		if st != http.StatusOK || fams["http_server_request_duration_seconds"] == nil {
			t.Errorf("with the token: %d, families %d", st, len(fams))
		}
		// The refused scrapes were requests like any other.
		if n := value(t, fams, "http_server_request_duration_seconds", map[string]string{"route": "/metrics", "status": "401"}); n != 4 {
			t.Errorf("401 scrapes: %v, want 4", n)
		}
	})
}

// TestMetricsSeparateAddress: with the scrape on its own address, the main
// listener answers /metrics with 404 and the other serves it.
func TestMetricsSeparateAddress(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		srv, sep := start(t, b, server.Config{MetricsSeparate: true})
		res, err := http.Get(srv.URL + "/healthz")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if st, _ := scrape(t, srv.URL+"/metrics", ""); st != http.StatusNotFound {
			t.Errorf("main listener /metrics: %d, want 404", st)
		}
		st, fams := scrape(t, sep.URL+"/metrics", "")
		if st != http.StatusOK {
			t.Fatalf("separate listener: %d", st)
		}
		if n := value(t, fams, "http_server_request_duration_seconds", map[string]string{"route": "/healthz", "status": "200"}); n != 1 {
			t.Errorf("healthz: %v", n)
		}
		if n := value(t, fams, "http_server_request_duration_seconds", map[string]string{"route": "unmatched", "status": "404"}); n != 1 {
			t.Errorf("the main listener's /metrics is unmatched there: %v", n)
		}
	})
}

// TestOperationNameBounds: long or ill-formed names, and names past the
// first MaxOperationNames, count as other; a name already seen keeps its own.
func TestOperationNameBounds(t *testing.T) {
	m := metrics.New()
	m.GraphQLOperation(strings.Repeat("a", 65), "query", false)
	m.GraphQLOperation("not-a-name", "unknown", true)
	m.GraphQLOperation("", "query", false)
	for i := range metrics.MaxOperationNames {
		m.GraphQLOperation(fmt.Sprintf("Op%d", i), "query", false)
	}
	m.GraphQLOperation("OneTooMany", "query", false)
	m.GraphQLOperation("Op0", "query", false)
	srv := httptest.NewServer(m.Handler(""))
	defer srv.Close()
	_, fams := scrape(t, srv.URL, "")
	const ops = "graphql_operations_total"
	for _, c := range []struct {
		op, typ, outcome string
		want             float64
	}{
		{"other", "query", "ok", 2}, // the long name and OneTooMany
		{"other", "unknown", "error", 1},
		{"anonymous", "query", "ok", 1},
		{"Op0", "query", "ok", 2},
		{fmt.Sprintf("Op%d", metrics.MaxOperationNames-1), "query", "ok", 1},
	} {
		if n := value(t, fams, ops, map[string]string{"operation": c.op, "type": c.typ, "outcome": c.outcome}); n != c.want {
			t.Errorf("%s %s %s: %v, want %v", c.op, c.typ, c.outcome, n, c.want)
		}
	}
	if n := len(fams[ops].GetMetric()); n != metrics.MaxOperationNames+3 {
		t.Errorf("%d series, want %d", n, metrics.MaxOperationNames+3)
	}
}
