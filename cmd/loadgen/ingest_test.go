package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
)

func TestChooseImpact(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	for cur := -1; cur <= impactOutage; cur++ {
		const draws = 20000
		escalations := 0
		seen := map[int]bool{}
		for range draws {
			impact, escalated := chooseImpact(rng, cur, 0.25)
			base := max(cur, 0)
			switch {
			case impact < 0 || impact > impactOutage:
				t.Fatalf("cur %d: impact %d out of range", cur, impact)
			case escalated && impact <= base:
				t.Fatalf("cur %d: escalation to %d", cur, impact)
			case !escalated && impact > base:
				t.Fatalf("cur %d: repeat at %d", cur, impact)
			}
			if escalated {
				escalations++
			}
			seen[impact] = true
		}
		if cur == impactOutage {
			if escalations != 0 {
				t.Errorf("an outage escalated %d times", escalations)
			}
		} else if share := float64(escalations) / draws; share < 0.23 || share > 0.27 {
			t.Errorf("cur %d: escalation share %.3f, want about 0.25", cur, share)
		}
		// Repeats cover the impacts up to cur, escalations those above.
		if len(seen) != len(impactNames) {
			t.Errorf("cur %d: impacts drawn %v, want all four", cur, seen)
		}
	}
	for range 1000 {
		if _, esc := chooseImpact(rng, impactMinor, 0); esc {
			t.Fatal("escalated with -escalate 0")
		}
		if impact, esc := chooseImpact(rng, impactMinor, 1); !esc || impact <= impactMinor {
			t.Fatalf("-escalate 1 from minor: %d, %v", impact, esc)
		}
	}
	a, b := rand.New(rand.NewPCG(7, 7)), rand.New(rand.NewPCG(7, 7))
	for range 100 {
		i1, e1 := chooseImpact(a, 1, 0.5)
		i2, e2 := chooseImpact(b, 1, 0.5)
		if i1 != i2 || e1 != e2 {
			t.Fatal("same seed, different choices")
		}
	}
}

func TestComponentIndex(t *testing.T) {
	for _, i := range []int{0, 7, 10, 999, 123456} {
		if got := componentIndex(componentName(i)); got != i {
			t.Errorf("componentIndex(%q) = %d", componentName(i), got)
		}
	}
	for _, bad := range []string{"ingest-", "ingest-01", "ingest--1", "ingest-1x", "Ingest-1", "x-ingest-1", "ingest-+1"} {
		if got := componentIndex(bad); got != -1 {
			t.Errorf("componentIndex(%q) = %d, want -1", bad, got)
		}
	}
	if componentRegion(0) != "r0" || componentRegion(13) != "r3" || componentRegion(999) != "r9" {
		t.Error("componentRegion")
	}
}

func TestReportRequest(t *testing.T) {
	r := reportRequest(42, impactOutage)
	if r.method != http.MethodPost || r.path != "/v1/component_status" {
		t.Errorf("request %s", r)
	}
	want := `{"name":"ingest-42","impact":"outage","attributes":[{"name":"region","value":"r2"}]}`
	if string(r.body) != want {
		t.Errorf("body %s, want %s", r.body, want)
	}
}

func TestTrackerAndAnswer(t *testing.T) {
	tr := newTracker(3)
	var resp reportResponse
	if err := json.Unmarshal([]byte(`{"id":"inc_1","created":true,"components":[`+
		`{"id":"cmp_a","impact":"minor"},{"id":"cmp_b","impact":"outage"}]}`), &resp); err != nil {
		t.Fatal(err)
	}
	if !resp.Created || resp.impactOf("cmp_b") != impactOutage || resp.impactOf("cmp_a") != impactMinor || resp.impactOf("cmp_z") != -1 {
		t.Errorf("answer %+v", resp)
	}
	tr.observe(0, impactMinor)
	tr.observe(0, 0) // never lowers
	tr.observe(1, impactOutage)
	if tr.get(0) != impactMinor || tr.get(1) != impactOutage || tr.get(2) != -1 {
		t.Errorf("tracker %v", tr.cur)
	}
	if h := tr.histogram(); !reflect.DeepEqual(h, []int{1, 0, 1, 0, 1}) {
		t.Errorf("histogram %v", h)
	}
	if got := describeHistogram([]int{1, 0, 1, 0, 1}); got != "components at 1 never reported, 0 maintenance, 1 minor, 0 major, 1 outage" {
		t.Errorf("describeHistogram = %q", got)
	}
}

func TestOpenCheck(t *testing.T) {
	var page statusPage
	if err := json.Unmarshal([]byte(`{"data":[
		{"id":"c1","displayName":"ingest-1","labels":{"region":"r1"},"status":"minor","incidents":[{"id":"i1","title":"Incident","impact":"minor"}]},
		{"id":"c2","displayName":"ingest-2","labels":{"region":"r2"},"status":"operational","incidents":[]},
		{"id":"c3","displayName":"ingest-3","labels":{"region":"r3"},"status":"major","incidents":[{"id":"i2","impact":"major"},{"id":"i1","impact":"minor"}]},
		{"id":"c4","displayName":"ingest-4","labels":{"region":"r4"},"status":"minor","incidents":[{"id":"i1","impact":"minor"}]}
	],"pagination":{"totalCount":4,"hasMore":false}}`), &page); err != nil {
		t.Fatal(err)
	}
	oc := openCheck{incidents: map[string]struct{}{}}
	oc.add(page.Data)
	if oc.components != 4 || oc.multi != 1 || len(oc.incidents) != 2 {
		t.Errorf("openCheck = %+v", oc)
	}
	if len(oc.offenders) != 1 || !strings.Contains(oc.offenders[0], "ingest-3") || !strings.Contains(oc.offenders[0], "i2, i1") {
		t.Errorf("offenders %q", oc.offenders)
	}
}

func TestIngestFlags(t *testing.T) {
	for _, args := range [][]string{
		{"-ingest", "-fanout"},
		{"-ingest", "-components", "0"},
		{"-ingest", "-escalate", "1.5"},
		{"-ingest", "-escalate", "-0.1"},
		{"-ingest", "-escalate", "NaN"},
	} {
		var stderr bytes.Buffer
		if code := run(append([]string{"-key", "k"}, args...), &bytes.Buffer{}, &stderr); code != 2 {
			t.Errorf("%v: exit %d, want 2 (%s)", args, code, stderr.String())
		}
	}
	cfg, err := parseFlags([]string{"-key", "k", "-ingest"}, &bytes.Buffer{})
	if err != nil || !cfg.ingest || cfg.components != 1000 || cfg.escalate != 0.05 || cfg.conns != 50 {
		t.Errorf("defaults %+v, %v", cfg, err)
	}
}

// fakeIngest models the ingestion rules closely enough for loadgen: a
// component joins the newest open incident of its impact or opens one,
// reports at the same or a lower impact change nothing, and escalations
// move it (closing an incident left empty).
type fakeIngest struct {
	leaky bool // escalations leave the component in its old incident too

	mu        sync.Mutex
	comps     []fakeComponent
	incidents []*fakeIncident // open ones, oldest first
	nextInc   int
}

type fakeComponent struct {
	ID, Name, Region string
}

type fakeIncident struct {
	id      string
	impacts map[string]int // component id -> impact
}

func (f *fakeIncident) impact() int {
	best := -1
	for _, i := range f.impacts {
		best = max(best, i)
	}
	return best
}

func (f *fakeIngest) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/incidents", func(w http.ResponseWriter, _ *http.Request) {
		json.NewEncoder(w).Encode(map[string]any{"data": []any{}, "pagination": map[string]any{"totalCount": 0}})
	})
	mux.HandleFunc("POST /v1/components", f.createComponent)
	mux.HandleFunc("GET /v1/components", f.listComponents)
	mux.HandleFunc("POST /v1/component_status", f.report)
	mux.HandleFunc("GET /v1/component_status", f.status)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-API-Key") != "secret" {
			http.Error(w, `{"error":"unauthorized"}`, http.StatusUnauthorized)
			return
		}
		mux.ServeHTTP(w, r)
	})
}

func (f *fakeIngest) createComponent(w http.ResponseWriter, r *http.Request) {
	var in componentCreate
	if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.DisplayName == "" {
		http.Error(w, "bad component", http.StatusBadRequest)
		return
	}
	f.mu.Lock()
	c := fakeComponent{ID: fmt.Sprintf("cmp_%06d", len(f.comps)), Name: in.DisplayName, Region: in.Labels["region"]}
	f.comps = append(f.comps, c)
	f.mu.Unlock()
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": c.ID, "displayName": c.Name, "labels": map[string]string{"region": c.Region}})
}

// page cuts limit/offset out of n items.
func page(w http.ResponseWriter, r *http.Request, n int) (from, to int, ok bool) {
	q := r.URL.Query()
	limit, err1 := strconv.Atoi(q.Get("limit"))
	offset, err2 := strconv.Atoi(cmpOr(q.Get("offset"), "0"))
	if err1 != nil || err2 != nil || limit < 1 || limit > 100 || offset < 0 {
		http.Error(w, "bad paging", http.StatusBadRequest)
		return 0, 0, false
	}
	return min(offset, n), min(offset+limit, n), true
}

func cmpOr(s, def string) string {
	if s == "" {
		return def
	}
	return s
}

func (f *fakeIngest) listComponents(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	f.mu.Lock()
	var match []fakeComponent
	for _, c := range f.comps {
		if strings.HasPrefix(strings.ToLower(c.Name), strings.ToLower(q.Get("name"))) &&
			(q.Get("label") == "" || q.Get("label") == "region:"+c.Region) {
			match = append(match, c)
		}
	}
	f.mu.Unlock()
	from, to, ok := page(w, r, len(match))
	if !ok {
		return
	}
	data := []map[string]any{}
	for _, c := range match[from:to] {
		data = append(data, map[string]any{"id": c.ID, "displayName": c.Name, "labels": map[string]string{"region": c.Region}})
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data,
		"pagination": map[string]any{"totalCount": len(match), "hasMore": to < len(match)}})
}

func (f *fakeIngest) report(w http.ResponseWriter, r *http.Request) {
	var rep componentReport
	if err := json.NewDecoder(r.Body).Decode(&rep); err != nil || len(rep.Attributes) != 1 {
		http.Error(w, "bad report", http.StatusBadRequest)
		return
	}
	impact := parseImpact(rep.Impact)
	f.mu.Lock()
	defer f.mu.Unlock()
	var comp string
	for _, c := range f.comps {
		if c.Name == rep.Name && c.Region == rep.Attributes[0].Value {
			comp = c.ID
		}
	}
	if comp == "" || impact < 0 {
		http.Error(w, `{"error":"no such component"}`, http.StatusBadRequest)
		return
	}
	var cur *fakeIncident
	for _, inc := range slices.Backward(f.incidents) {
		if _, ok := inc.impacts[comp]; ok {
			cur = inc
			break
		}
	}
	target, created := cur, false
	if cur == nil || cur.impacts[comp] < impact {
		target = nil
		for _, inc := range slices.Backward(f.incidents) {
			if inc != cur && len(inc.impacts) > 0 && inc.impact() == impact {
				target = inc
				break
			}
		}
		if cur != nil && !f.leaky {
			delete(cur.impacts, comp)
			if len(cur.impacts) == 0 {
				f.incidents = slices.DeleteFunc(f.incidents, func(i *fakeIncident) bool { return i == cur })
			}
		}
		if target == nil {
			f.nextInc++
			target = &fakeIncident{id: fmt.Sprintf("inc_%06d", f.nextInc), impacts: map[string]int{}}
			f.incidents = append(f.incidents, target)
			created = true
		}
		target.impacts[comp] = impact
	}
	comps := []map[string]string{}
	for id, i := range target.impacts {
		comps = append(comps, map[string]string{"id": id, "impact": impactNames[i]})
	}
	w.WriteHeader(http.StatusCreated)
	json.NewEncoder(w).Encode(map[string]any{"id": target.id, "impact": impactNames[target.impact()],
		"created": created, "components": comps, "updates": []any{}})
}

func (f *fakeIngest) status(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	from, to, ok := page(w, r, len(f.comps))
	if !ok {
		return
	}
	data := []map[string]any{}
	for _, c := range f.comps[from:to] {
		incs := []map[string]string{}
		for _, inc := range f.incidents {
			if i, ok := inc.impacts[c.ID]; ok {
				incs = append(incs, map[string]string{"id": inc.id, "title": "Incident", "impact": impactNames[i]})
			}
		}
		data = append(data, map[string]any{"id": c.ID, "displayName": c.Name,
			"labels": map[string]string{"region": c.Region}, "status": "operational", "incidents": incs})
	}
	json.NewEncoder(w).Encode(map[string]any{"data": data,
		"pagination": map[string]any{"totalCount": len(f.comps), "hasMore": to < len(f.comps)}})
}

// decodeIngest splits -ingest -json output into its rows and the summary.
func decodeIngest(t *testing.T, out []byte) ([]result, ingestSummary) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(string(out)), "\n")
	var rows []result
	var sum ingestSummary
	for i, line := range lines {
		var err error
		if i == len(lines)-1 {
			err = json.Unmarshal([]byte(line), &sum)
		} else {
			var r result
			err = json.Unmarshal([]byte(line), &r)
			rows = append(rows, r)
		}
		if err != nil {
			t.Fatalf("bad JSON line %q: %v", line, err)
		}
	}
	if sum.Mode != "ingest" {
		t.Fatalf("last line is not the summary: %q", lines[len(lines)-1])
	}
	return rows, sum
}

func TestIngestEndToEnd(t *testing.T) {
	fi := &fakeIngest{}
	srv := httptest.NewServer(fi.handler())
	defer srv.Close()

	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-ingest", "-components", "250", "-conns", "8",
		"-requests", "300", "-escalate", "0.2", "-json"}, &stdout, &stderr)
	t.Logf("stderr:\n%s", stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	rows, sum := decodeIngest(t, stdout.Bytes())
	var names []string
	for _, r := range rows {
		names = append(names, r.Scenario)
		if r.Requests == 0 || r.Errors != 0 || r.Throughput <= 0 || r.P50 > r.P99 || r.P99 > r.Max {
			t.Errorf("implausible row %+v", r)
		}
	}
	if want := []string{rowCreate, "warm-up", "report (repeat)", "report (escalate)", rowAll}; !reflect.DeepEqual(names, want) {
		t.Fatalf("rows %v, want %v", names, want)
	}
	if rows[0].Requests != 250 || rows[1].Requests != 250 || rows[4].Requests != 300 || rows[4].Requests != rows[2].Requests+rows[3].Requests {
		t.Errorf("row counts %+v", rows)
	}
	if s := float64(rows[3].Requests) / float64(rows[4].Requests); s > 0.4 {
		t.Errorf("escalation share %.3f with -escalate 0.2", s) // below 0.2 as outages cannot escalate
	}
	if sum.Components != 250 || sum.ComponentsFound != 0 || sum.ComponentsCreated != 250 || sum.SetupSeconds <= 0 {
		t.Errorf("summary components %+v", sum)
	}
	if sum.CreatedWarmUp != 1 || sum.WarmUpReports != 250 || sum.CreatedRepeat != 0 || sum.CreatedEscalate == 0 ||
		sum.RepeatReports != rows[2].Requests || sum.EscalateReports != rows[3].Requests {
		t.Errorf("summary created %+v", sum)
	}
	if sum.CheckedComponents != 250 || sum.MultiIncident != 0 || sum.DistinctOpenIncidents != len(fi.incidents) || sum.DistinctOpenIncidents < 2 {
		t.Errorf("summary check %+v (fake holds %d open incidents)", sum, len(fi.incidents))
	}

	// Again, as a table: nothing to create, and the components left at
	// higher impacts are learnt from the warm-up, so repeats still create
	// nothing.
	stdout.Reset()
	stderr.Reset()
	code = run([]string{"-url", srv.URL, "-key", "secret", "-ingest", "-components", "250", "-conns", "8",
		"-requests", "200"}, &stdout, &stderr)
	out := stdout.String()
	t.Logf("table:\n%s", out)
	if code != 0 || len(fi.comps) != 250 {
		t.Fatalf("rerun: exit %d, %d components; stderr:\n%s", code, len(fi.comps), stderr.String())
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if len(lines) != 8 || !strings.HasPrefix(lines[0], "scenario ") || !strings.Contains(lines[0], "p99(ms)") ||
		!strings.HasPrefix(lines[1], "warm-up ") || !strings.HasPrefix(lines[3], "report (escalate) ") {
		t.Fatalf("table has %d lines, want a header, 4 rows and 3 summary lines", len(lines))
	}
	if len(lines[0]) != len(lines[3]) {
		t.Errorf("columns misaligned:\n%s\n%s", lines[0], lines[3])
	}
	for i, prefix := range []string{"components:   250 ready: 250 found, 0 created;", "created=true: warm-up 0 of 250, repeat 0 of ",
		"verify:       0 components in more than one open incident (must be 0); "} {
		if !strings.HasPrefix(lines[5+i], prefix) {
			t.Errorf("line %q, want prefix %q", lines[5+i], prefix)
		}
	}
}

func TestIngestDetectsDuplicates(t *testing.T) {
	srv := httptest.NewServer((&fakeIngest{leaky: true}).handler())
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-ingest", "-components", "20", "-conns", "2",
		"-requests", "100", "-escalate", "1", "-json"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "in more than one open incident") ||
		!strings.Contains(stderr.String(), "in several open incidents: cmp_") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	_, sum := decodeIngest(t, stdout.Bytes())
	if sum.MultiIncident == 0 || sum.MultiIncident > 20 {
		t.Errorf("summary %+v", sum)
	}
}

func TestIngestReportErrors(t *testing.T) {
	fi := &fakeIngest{}
	// A component of the right name in the wrong region is not ours: it
	// is created again, correctly labelled.
	fi.comps = append(fi.comps, fakeComponent{ID: "cmp_x", Name: "ingest-3", Region: "r9"})
	h := fi.handler()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost && r.URL.Path == "/v1/component_status" && r.Header.Get("X-API-Key") == "secret" {
			var rep componentReport
			if err := json.NewDecoder(r.Body).Decode(&rep); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest) // loadgen sent a report that is not JSON
				return
			}
			if rep.Name == "ingest-1" {
				http.Error(w, `{"error":"slow down"}`, http.StatusTooManyRequests)
				return
			}
			r.Body = nopBody(rep)
		}
		h.ServeHTTP(w, r)
	}))
	defer srv.Close()
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-ingest", "-components", "5", "-conns", "2",
		"-requests", "50", "-json"}, &stdout, &stderr)
	if code != 0 {
		t.Fatalf("exit %d; stderr:\n%s", code, stderr.String())
	}
	rows, sum := decodeIngest(t, stdout.Bytes())
	if sum.ComponentsFound != 0 || sum.ComponentsCreated != 5 || len(fi.comps) != 6 {
		t.Errorf("summary %+v, %d components", sum, len(fi.comps))
	}
	if w := rows[1]; w.Scenario != "warm-up" || w.Requests != 5 || w.Errors != 1 || w.ErrorKinds["429"] != 1 {
		t.Errorf("warm-up row %+v", w)
	}
	if !strings.Contains(stderr.String(), "HTTP 429") || !strings.Contains(stderr.String(), "rate limiting") ||
		!strings.Contains(stderr.String(), "1 never reported") {
		t.Errorf("stderr:\n%s", stderr.String())
	}
}

// nopBody re-encodes a decoded report as a request body.
func nopBody(rep componentReport) *readCloser {
	return &readCloser{bytes.NewReader(mustJSON(rep))}
}

type readCloser struct{ *bytes.Reader }

func (readCloser) Close() error { return nil }

func TestReadReport(t *testing.T) {
	tests := []struct {
		body    string
		fast    bool // scanReport reads it without the fallback
		created bool
		impact  int
	}{
		{`{"id":"inc_1","created":true,"components":[{"id":"cmp_a","impact":"minor"},{"id":"cmp_b","impact":"outage"}],` +
			`"updates":[{"order":1,"displayName":"Incident opened by monitoring","description":"x \"quoted\" \u00e9"}],"incident":{"id":"inc_1","tags":["monitoring"],"resolvedAt":null}}`,
			true, true, impactOutage},
		{` { "created" : false , "components" : [ { "impact" : "major" , "id" : "cmp_b" } ] } `, true, false, 2},
		{`{"created":false,"components":[{"id":"cmp_a","impact":"minor"}]}`, true, false, -1},
		{`{"created":true,"components":[]}`, true, true, -1},
		{`{"id":"m_1","created":false,"components":[{"id":"cmp_b","impact":"maintenance"}],"incident":null,"maintenance":{"id":"m_1"}}`, true, false, 0},
		{`{"created":true,"created":false}`, true, false, -1}, // the last duplicate wins, as in encoding/json
		// The fallback: escapes in the read strings, case-folded keys, nulls.
		{`{"created":true,"components":[{"id":"cmp\u005fb","impact":"major"}]}`, false, true, 2},
		{`{"Created":true}`, false, true, -1},
		{`{"created":false,"components":null}`, false, false, -1},
	}
	for _, tt := range tests {
		created, impact, ok := scanReport([]byte(tt.body), "cmp_b")
		if ok != tt.fast || ok && (created != tt.created || impact != tt.impact) {
			t.Errorf("scanReport(%s) = %v, %d, %v", tt.body, created, impact, ok)
		}
		created, impact, err := readReport([]byte(tt.body), "cmp_b")
		if err != nil || created != tt.created || impact != tt.impact {
			t.Errorf("readReport(%s) = %v, %d, %v; want %v, %d", tt.body, created, impact, err, tt.created, tt.impact)
		}
	}
	for _, bad := range []string{``, `[]`, `{"created":tru}`, `{"created":true`, `{"created":true}x`, `<html>`} {
		if _, _, ok := scanReport([]byte(bad), "cmp_b"); ok {
			t.Errorf("scanReport accepted %q", bad)
		}
		if _, _, err := readReport([]byte(bad), "cmp_b"); err == nil {
			t.Errorf("readReport accepted %q", bad)
		}
	}
}
