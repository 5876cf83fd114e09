package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	ms := func(vs ...int) []time.Duration {
		out := make([]time.Duration, len(vs))
		for i, v := range vs {
			out[i] = time.Duration(v) * time.Millisecond
		}
		return out
	}
	hundred := make([]int, 100)
	for i := range hundred {
		hundred[i] = i + 1
	}
	tests := []struct {
		name   string
		sample []time.Duration
		p      float64
		want   time.Duration
	}{
		{"empty", nil, 50, 0},
		{"single", ms(7), 99, 7 * time.Millisecond},
		{"median of odd", ms(1, 2, 3, 4, 5), 50, 3 * time.Millisecond},
		{"median of even takes lower", ms(1, 2, 3, 4), 50, 2 * time.Millisecond},
		{"p95 of 1..100", ms(hundred...), 95, 95 * time.Millisecond},
		{"p99 of 1..100", ms(hundred...), 99, 99 * time.Millisecond},
		{"max", ms(1, 2, 3), 100, 3 * time.Millisecond},
		{"tiny p clamps to min", ms(4, 5, 6), 0.0001, 4 * time.Millisecond},
	}
	for _, tt := range tests {
		if got := percentile(tt.sample, tt.p); got != tt.want {
			t.Errorf("%s: percentile(p=%v) = %v, want %v", tt.name, tt.p, got, tt.want)
		}
	}
}

func TestParseScenarios(t *testing.T) {
	got, err := parseScenarios(" post, get ,post,,")
	if err != nil || !reflect.DeepEqual(got, []string{"post", "get"}) {
		t.Errorf("parseScenarios = %v, %v; want [post get]", got, err)
	}
	if _, err := parseScenarios("get,nope"); err == nil {
		t.Error("unknown scenario accepted")
	}
	if _, err := parseScenarios(" , "); err == nil {
		t.Error("empty list accepted")
	}
}

func TestNewIncident(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	rng := rand.New(rand.NewPCG(1, 2))
	for range 1000 {
		inc := newIncident(rng, now, seedAge)
		if n := len(inc.Title); n < 1 || n > 200 {
			t.Fatalf("title length %d: %q", n, inc.Title)
		}
		if len(inc.Service) > 100 || !slices.Contains(services, inc.Service) {
			t.Fatalf("bad service %q", inc.Service)
		}
		if !slices.Contains(severities, inc.Severity) || !slices.Contains(statuses, inc.Status) {
			t.Fatalf("bad severity/status %q/%q", inc.Severity, inc.Status)
		}
		if inc.Tags == nil || len(inc.Tags) > 3 || len(slices.Compact(slices.Sorted(slices.Values(inc.Tags)))) != len(inc.Tags) {
			t.Fatalf("bad tags %#v", inc.Tags)
		}
		at, err := time.Parse(time.RFC3339, inc.OccurredAt)
		if err != nil || at.After(now) || at.Before(now.Add(-seedAge-time.Second)) {
			t.Fatalf("occurredAt %q out of range (%v)", inc.OccurredAt, err)
		}
		words := 0
		for _, w := range vocabulary {
			if strings.Contains(strings.ToLower(inc.Title), w) {
				words++
			}
		}
		if words < 2 {
			t.Fatalf("title %q holds fewer than two vocabulary words", inc.Title)
		}
	}
	a := newIncident(rand.New(rand.NewPCG(9, 9)), now, postAge)
	b := newIncident(rand.New(rand.NewPCG(9, 9)), now, postAge)
	if !reflect.DeepEqual(a, b) {
		t.Errorf("same seed, different incidents: %+v vs %+v", a, b)
	}
}

// fakeServer implements just enough of the API contract for loadgen: the
// REST routes, POST /graphql and, in fake_ws_test.go, the subscription
// WebSocket.
type fakeServer struct {
	mu        sync.Mutex
	incidents []incident
	ids       []string
	byKey     map[string]int // creations per API key

	gqlErrors bool // POST /graphql answers 200 with an errors array

	ws fakeWS
}

func (f *fakeServer) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("POST /v1/incidents", f.create)
	mux.HandleFunc("GET /v1/incidents", f.list)
	mux.HandleFunc("GET /v1/incidents/{id}", f.get)
	mux.HandleFunc("POST /graphql", f.graphql)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodGet && r.URL.Path == "/graphql" {
			// Counted before the hijack, while httptest still tracks the
			// connection: see startFake.
			f.ws.handled.Add(1)
			defer f.ws.handled.Done()
			f.websocket(w, r) // authenticates with connection_init instead
			return
		}
		if k := r.Header.Get("X-API-Key"); k != "secret" && k != "secret2" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeServer) create(w http.ResponseWriter, r *http.Request) {
	var inc incident
	if err := json.NewDecoder(r.Body).Decode(&inc); err != nil || inc.Title == "" ||
		!slices.Contains(severities, inc.Severity) || !slices.Contains(statuses, inc.Status) {
		http.Error(w, "bad incident", http.StatusBadRequest)
		return
	}
	if _, err := time.Parse(time.RFC3339, inc.OccurredAt); err != nil {
		http.Error(w, "bad occurredAt", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	id := fmt.Sprintf("inc_%012d", len(f.ids))
	if f.byKey == nil {
		f.byKey = map[string]int{}
	}
	f.byKey[r.Header.Get("X-API-Key")]++
	f.incidents = append(f.incidents, inc)
	f.ids = append(f.ids, id)
	f.mu.Unlock()
	f.publish(id)
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]string{"id": id, "title": inc.Title})
}

func (f *fakeServer) get(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if !slices.Contains(f.ids, r.PathValue("id")) {
		http.NotFound(w, r)
		return
	}
	json.NewEncoder(w).Encode(map[string]string{"id": r.PathValue("id")})
}

// list pages by offset; its cursor is "c<offset>".
func (f *fakeServer) list(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	limit, offset := 20, 0
	if v := q.Get("limit"); v != "" {
		limit, _ = strconv.Atoi(v)
	}
	if v := q.Get("offset"); v != "" {
		offset, _ = strconv.Atoi(v)
	}
	if c := q.Get("cursor"); c != "" {
		n, err := strconv.Atoi(strings.TrimPrefix(c, "c"))
		if err != nil || !strings.HasPrefix(c, "c") || q.Has("offset") {
			http.Error(w, "bad cursor", http.StatusBadRequest)
			return
		}
		offset = n
	}
	if limit < 1 || limit > 100 {
		http.Error(w, "bad limit", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	var ids []string
	for i, inc := range f.incidents {
		kw := q.Get("keyword")
		if kw == "" || strings.Contains(strings.ToLower(inc.Title+inc.Description), kw) {
			ids = append(ids, f.ids[i])
		}
	}
	f.mu.Unlock()
	total := len(ids)
	end := min(offset+limit, total)
	data := []map[string]string{}
	for _, id := range ids[min(offset, total):end] {
		data = append(data, map[string]string{"id": id})
	}
	var next *string
	if end < total {
		c := "c" + strconv.Itoa(end)
		next = &c
	}
	json.NewEncoder(w).Encode(map[string]any{
		"data": data,
		"pagination": map[string]any{"totalCount": total, "limit": limit, "offset": offset,
			"hasMore": end < total, "nextCursor": next},
	})
}

// graphql answers the two queries loadgen sends, telling them apart by
// their root field.
func (f *fakeServer) graphql(w http.ResponseWriter, r *http.Request) {
	var req gqlBody
	if err := json.NewDecoder(r.Body).Decode(&req); err != nil || req.Query == "" {
		http.Error(w, `{"errors":[{"message":"bad request"}]}`, http.StatusBadRequest)
		return
	}
	if f.gqlErrors {
		json.NewEncoder(w).Encode(map[string]any{"data": nil, "errors": []map[string]string{{"message": "boom"}}})
		return
	}
	node := func(id string) map[string]any {
		return map[string]any{"id": id, "title": "Database timeout", "severity": "HIGH", "status": "OPEN",
			"tags": []string{}, "isDeleted": false}
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case strings.Contains(req.Query, "incidents("):
		nodes := []map[string]any{}
		for _, id := range f.ids[:min(listLimit, len(f.ids))] {
			nodes = append(nodes, node(id))
		}
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"incidents": map[string]any{
			"totalCount": len(f.ids), "nodes": nodes,
			"pageInfo": map[string]any{"hasNextPage": len(f.ids) > listLimit, "endCursor": "c20"}}}})
	case strings.Contains(req.Query, "incident("):
		id, _ := req.Variables["id"].(string)
		var inc any // null when unknown, as the schema says
		if slices.Contains(f.ids, id) {
			inc = node(id)
		}
		json.NewEncoder(w).Encode(map[string]any{"data": map[string]any{"incident": inc}})
	default:
		json.NewEncoder(w).Encode(map[string]any{"errors": []map[string]string{{"message": "unknown query"}}})
	}
}

// decodeLines splits -json output into result rows and the ratio object.
func decodeLines(t *testing.T, out []byte) (rows []result, ratios map[string]*float64) {
	t.Helper()
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		if bytes.Contains(sc.Bytes(), []byte("graphqlRestCostRatio")) {
			var v struct {
				R map[string]*float64 `json:"graphqlRestCostRatio"`
			}
			if err := json.Unmarshal(sc.Bytes(), &v); err != nil {
				t.Fatalf("bad ratio line %q: %v", sc.Text(), err)
			}
			ratios = v.R
			continue
		}
		var r result
		if err := json.Unmarshal(sc.Bytes(), &r); err != nil {
			t.Fatalf("bad JSON line %q: %v", sc.Text(), err)
		}
		rows = append(rows, r)
	}
	return rows, ratios
}

func TestRunEndToEnd(t *testing.T) {
	fs := &fakeServer{}
	srv := httptest.NewServer(fs.handler())
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-seed", "450", "-conns", "4",
		"-requests", "40", "-warmup", "20ms", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	var got []string
	rows, ratios := decodeLines(t, stdout.Bytes())
	for _, r := range rows {
		// -requests fixes each measured scenario's work (the seed row is the
		// 450 creations).
		if (r.Scenario != "seed" && r.Requests != 40) || r.Errors != 0 || r.Throughput <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
			t.Errorf("implausible result %+v", r)
		}
		got = append(got, r.Scenario)
	}
	t.Logf("stderr:\n%s", stderr.String())
	want := append([]string{"seed"}, allScenarios...)
	if !reflect.DeepEqual(got, want) {
		t.Errorf("scenarios %v, want %v; stderr:\n%s", got, want, stderr.String())
	}
	if len(ratios) != 2 || ratios["get"] == nil || ratios["list"] == nil || *ratios["get"] <= 0 {
		t.Errorf("ratio object %v, want get and list", ratios)
	}

	// A second run with the same -seed must create nothing.
	seeded := len(fs.ids)
	if seeded < 450 {
		t.Fatalf("seeded %d incidents, want >= 450", seeded)
	}
	stdout.Reset()
	code = run([]string{"-url", srv.URL, "-key", "secret", "-seed", "450", "-conns", "2",
		"-requests", "10", "-warmup", "0s", "-scenarios", "list"}, &stdout, &stderr)
	if code != 0 || len(fs.ids) != seeded {
		t.Errorf("reseed: exit %d, incidents %d -> %d", code, seeded, len(fs.ids))
	}
	t.Logf("table:\n%s", stdout.String())
	if !strings.Contains(stdout.String(), "p99(ms)") || !strings.Contains(stdout.String(), "list") {
		t.Errorf("table output missing:\n%s", stdout.String())
	}
	if strings.Contains(stdout.String(), "ratio") {
		t.Errorf("ratio printed without GraphQL twins:\n%s", stdout.String())
	}

	// The twins side by side, then the ratio line.
	stdout.Reset()
	code = run([]string{"-url", srv.URL, "-key", "secret", "-conns", "2", "-requests", "20", "-warmup", "0s",
		"-scenarios", "get,gql-get,list,gql-list"}, &stdout, &stderr)
	t.Logf("table:\n%s", stdout.String())
	lines := strings.Split(strings.TrimSpace(stdout.String()), "\n")
	if code != 0 || len(lines) != 6 {
		t.Fatalf("twins: exit %d, %d lines, want header, 4 rows and the ratio", code, len(lines))
	}
	if !regexp.MustCompile(`^graphql/rest cost ratio: get \d+\.\d\dx, list \d+\.\d\dx$`).MatchString(lines[5]) {
		t.Errorf("ratio line %q", lines[5])
	}
}

func TestGraphQLErrorsCount(t *testing.T) {
	fs := &fakeServer{gqlErrors: true}
	srv := httptest.NewServer(fs.handler())
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-seed", "30", "-conns", "2", "-requests", "20",
		"-warmup", "0s", "-scenarios", "gql-get,get", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	rows, ratios := decodeLines(t, stdout.Bytes())
	if len(rows) != 3 || rows[1].Scenario != "gql-get" {
		t.Fatalf("rows %+v", rows)
	}
	if g := rows[1]; g.Requests == 0 || g.Errors != g.Requests || g.ErrorKinds["graphql"] != g.Errors || g.Throughput != 0 {
		t.Errorf("gql-get with errors: %+v", g)
	}
	if v, ok := ratios["get"]; !ok || v != nil {
		t.Errorf("ratio with a failing GraphQL twin: %v, want get: null", ratios)
	}
	if !strings.Contains(stderr.String(), `GraphQL errors: "boom"`) {
		t.Errorf("stderr lacks the GraphQL error:\n%s", stderr.String())
	}
}

func TestRunFailsFast(t *testing.T) {
	srv := httptest.NewServer((&fakeServer{}).handler())
	var stderr bytes.Buffer
	if code := run([]string{"-url", srv.URL, "-key", "wrong"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "key rejected") {
		t.Errorf("wrong key: exit %d, stderr %q", code, stderr.String())
	}
	srv.Close()
	stderr.Reset()
	if code := run([]string{"-url", srv.URL, "-key", "secret"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "unreachable") {
		t.Errorf("closed server: exit %d, stderr %q", code, stderr.String())
	}
	for _, bad := range []string{"-conns=0", "-requests=-1", "-duration=0s"} {
		if code := run([]string{"-url", srv.URL, "-key", "secret", bad}, &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%s: exit %d, want 2", bad, code)
		}
	}
}

// TestMain lets the test binary stand in for loadgen when the bare
// scenario starts it as its bare server.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "-serve-bare" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
	os.Exit(m.Run())
}

// TestExtraScenarios: bare measures a server of its own (started and
// stopped by loadgen), mixed-list mixes lists, keyword lists and creates,
// post-2 creates with both keys.
func TestExtraScenarios(t *testing.T) {
	f := &fakeServer{}
	srv := startFake(t, f)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-key2", "secret2", "-conns", "2", "-requests", "40", "-warmup", "0s",
		"-json", "-scenarios", "bare,mixed-list,post-2"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d: %s", code, stderr.String())
	}
	rows := map[string]result{}
	for _, line := range strings.Split(strings.TrimSpace(stdout.String()), "\n") {
		var r result
		if err := json.Unmarshal([]byte(line), &r); err != nil || r.Scenario == "" {
			t.Fatalf("output line %q is not a result: %v", line, err)
		}
		rows[r.Scenario] = r
	}
	for _, sc := range []string{"bare", "mixed-list", "post-2"} {
		if r := rows[sc]; r.Requests == 0 || r.Errors != 0 {
			t.Errorf("%s: %+v", sc, r)
		}
	}
	f.mu.Lock()
	byKey := fmt.Sprint(f.byKey)
	bothKeys := f.byKey["secret"] > 0 && f.byKey["secret2"] > 0
	f.mu.Unlock()
	if !bothKeys {
		t.Errorf("creations by key: %s (post-2 uses both)", byKey)
	}
	if code := run([]string{"-url", srv.URL, "-key", "secret", "-scenarios", "post-2", "-requests", "5"}, &bytes.Buffer{}, &stderr); code != 1 ||
		!strings.Contains(stderr.String(), "-key2") {
		t.Errorf("post-2 without -key2: exit %d, %s", code, stderr.String())
	}
}

// TestScenarioMixes: mixed-list draws 10% creates, 45% lists and 45%
// keyword lists; mixed spreads its 90% of reads over list, keyword and get.
func TestScenarioMixes(t *testing.T) {
	fx := &fixtures{ids: []string{"inc_1"}, now: time.Now()}
	for _, tt := range []struct {
		name string
		want map[string]float64
	}{
		{"mixed-list", map[string]float64{"POST": 0.10, "list": 0.45, "keyword": 0.45}},
		{"mixed", map[string]float64{"POST": 0.10, "list": 0.30, "keyword": 0.30, "get": 0.30}},
	} {
		gen, _ := fx.scenario(tt.name)
		rng := rand.New(rand.NewPCG(1, 1))
		const draws = 20000
		got := map[string]float64{}
		for j := range draws {
			r := gen(rng, j)
			switch {
			case r.method == http.MethodPost:
				got["POST"]++
			case r.query.Has("keyword"):
				got["keyword"]++
			case r.path == "/v1/incidents":
				got["list"]++
			default:
				got["get"]++
			}
		}
		for k, share := range tt.want {
			if s := got[k] / draws; s < share-0.02 || s > share+0.02 {
				t.Errorf("%s: %s share %.3f, want %.2f", tt.name, k, s, share)
			}
		}
		if len(got) != len(tt.want) {
			t.Errorf("%s: drew %v", tt.name, got)
		}
	}
}

func TestPacer(t *testing.T) {
	closed := pacer{n: 3}
	for sent, stop := range []bool{false, false, false, true} {
		if wait, s := closed.Pace(time.Hour, uint64(sent)); wait != 0 || s != stop {
			t.Errorf("closed loop, %d sent: wait %v stop %v", sent, wait, s)
		}
	}
	if _, stop := (pacer{}).Pace(time.Hour, 1e9); stop {
		t.Error("a phase without -requests stopped on its count")
	}
	clock := pacer{every: 50 * time.Millisecond}
	if wait, _ := clock.Pace(0, 0); wait != 0 {
		t.Errorf("first paced request waits %v", wait)
	}
	// Late by more than a beat (every worker was busy): the next request
	// goes at the next beat, not at once to catch up.
	if wait, _ := clock.Pace(130*time.Millisecond, 1); wait != 20*time.Millisecond {
		t.Errorf("wait %v after a missed beat, want 20ms", wait)
	}
}
