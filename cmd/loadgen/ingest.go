package main

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"

	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The -ingest mode: monitoring reporters hammering POST /v1/component_status
// for a fixed set of components, mostly with the cheap "still down" repeat
// and a share of escalations, then a check that no component ended up in two
// open incidents.

const (
	ingestPrefix  = "ingest-"
	ingestRegions = 10 // component i carries the label region=r<i%10>
	maxOffenders  = 5  // components in several open incidents named on stderr
)

// Monitoring impacts, as the API names them; an impact is an index here.
var impactNames = []string{"maintenance", "minor", "major", "outage"}

const (
	impactMinor  = 1
	impactOutage = 3
)

// Report kinds, each with its own row.
const (
	kindWarmUp = iota
	kindRepeat
	kindEscalate
	numKinds
)

var kindRows = [numKinds]string{"warm-up", "report (repeat)", "report (escalate)"}

const (
	rowCreate   = "create components"
	rowAll      = "report (all)"
	ingestWidth = len("report (escalate)") // widest row name of the mode
)

func componentName(i int) string   { return ingestPrefix + strconv.Itoa(i) }
func componentRegion(i int) string { return "r" + strconv.Itoa(i%ingestRegions) }

// componentIndex returns i for the canonical name "ingest-<i>", else -1.
func componentIndex(name string) int {
	rest, ok := strings.CutPrefix(name, ingestPrefix)
	if !ok {
		return -1
	}
	i, err := strconv.Atoi(rest)
	if err != nil || i < 0 || strconv.Itoa(i) != rest {
		return -1
	}
	return i
}

// parseImpact returns the index of an impact name, or -1.
func parseImpact(s string) int { return slices.Index(impactNames, s) }

// chooseImpact picks the impact of the next report of a component whose
// highest impact so far is cur: with probability escalate a random higher
// one (escalated), otherwise a random one at or below cur, the common "still
// down" report the server answers without a change. An outage cannot
// escalate, so its reports are all repeats. A cur below maintenance (never
// reported) counts as maintenance.
func chooseImpact(rng *rand.Rand, cur int, escalate float64) (impact int, escalated bool) {
	cur = min(max(cur, 0), impactOutage)
	if cur < impactOutage && rng.Float64() < escalate {
		return cur + 1 + rng.IntN(impactOutage-cur), true
	}
	return rng.IntN(cur + 1), false
}

// tracker holds, per component, the highest impact reported so far: the
// highest sent with success, or the server's answer when that is higher.
type tracker struct {
	mu  sync.Mutex
	cur []int8 // -1: not reported yet
}

func newTracker(n int) *tracker {
	t := &tracker{cur: make([]int8, n)}
	for i := range t.cur {
		t.cur[i] = -1
	}
	return t
}

func (t *tracker) get(comp int) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return int(t.cur[comp])
}

func (t *tracker) observe(comp, impact int) {
	t.mu.Lock()
	if int8(impact) > t.cur[comp] {
		t.cur[comp] = int8(impact)
	}
	t.mu.Unlock()
}

// histogram counts the components at each impact; index 0 is "never
// reported", index i+1 impact i.
func (t *tracker) histogram() []int {
	t.mu.Lock()
	defer t.mu.Unlock()
	h := make([]int, len(impactNames)+1)
	for _, c := range t.cur {
		h[int(c)+1]++
	}
	return h
}

// ---- requests and responses ----

type componentCreate struct {
	DisplayName string            `json:"displayName"`
	Labels      map[string]string `json:"labels"`
}

type attribute struct {
	Name  string `json:"name"`
	Value string `json:"value"`
}

// componentReport is the POST /v1/component_status body.
type componentReport struct {
	Name       string      `json:"name"`
	Impact     string      `json:"impact"`
	Attributes []attribute `json:"attributes"`
}

func reportRequest(comp, impact int) request {
	return request{method: http.MethodPost, path: "/v1/component_status", body: mustJSON(componentReport{
		Name:       componentName(comp),
		Impact:     impactNames[impact],
		Attributes: []attribute{{Name: "region", Value: componentRegion(comp)}},
	})}
}

// reportResponse is the part of a report's answer loadgen needs.
type reportResponse struct {
	Created    bool `json:"created"`
	Components []struct {
		ID     string `json:"id"`
		Impact string `json:"impact"`
	} `json:"components"`
}

// impactOf is the impact the answer gives the component with id, or -1.
func (r *reportResponse) impactOf(id string) int {
	for _, c := range r.Components {
		if c.ID == id {
			return parseImpact(c.Impact)
		}
	}
	return -1
}

// readReport returns created and the impact of the component with id (-1
// when the answer does not list it) from a report's answer.
func readReport(body []byte, id string) (created bool, impact int, err error) {
	if created, impact, ok := scanReport(body, id); ok {
		return created, impact, nil
	}
	var resp reportResponse
	if err := json.Unmarshal(body, &resp); err != nil {
		return false, -1, err
	}
	return resp.Created, resp.impactOf(id), nil
}

// scanReport is readReport's fast path, with the walker of scan.go. The
// answer carries the incident's every component and its whole timeline,
// hundreds of kilobytes once a thousand components share an incident, and
// encoding/json would spend on it a good part of the CPU the server uses to
// produce it. Like scanNext it gives up (ok=false) on anything unusual, and
// readReport falls back to encoding/json.
func scanReport(b []byte, id string) (created bool, impact int, ok bool) {
	s := scanner{b: b}
	impact = -1
	ok = s.object(func(k []byte) bool {
		switch string(k) {
		case "created":
			switch s.peek() {
			case 't':
				created = true
				return s.lit("true")
			case 'f':
				created = false
				return s.lit("false")
			}
			return false
		case "components":
			impact = -1
			return s.array(func() bool {
				var cid, imp []byte
				if !s.object(func(k []byte) bool {
					var ok bool
					switch string(k) {
					case "id":
						cid, ok = s.str()
						return ok
					case "impact":
						imp, ok = s.str()
						return ok
					}
					return !foldOnly(k, "id") && !foldOnly(k, "impact") && s.skip(0)
				}) {
					return false
				}
				if string(cid) == id {
					impact = parseImpact(string(imp))
				}
				return true
			})
		}
		return !foldOnly(k, "created") && !foldOnly(k, "components") && s.skip(0)
	})
	s.ws()
	return created, impact, ok && s.i == len(b)
}

// componentPage is a page of GET /v1/components.
type componentPage struct {
	Data []struct {
		ID          string            `json:"id"`
		DisplayName string            `json:"displayName"`
		Labels      map[string]string `json:"labels"`
	} `json:"data"`
	Pagination struct {
		TotalCount int  `json:"totalCount"`
		HasMore    bool `json:"hasMore"`
	} `json:"pagination"`
}

// componentState is one component of GET /v1/component_status.
type componentState struct {
	ID          string            `json:"id"`
	DisplayName string            `json:"displayName"`
	Labels      map[string]string `json:"labels"`
	Status      string            `json:"status"`
	Incidents   []struct {
		ID     string `json:"id"`
		Title  string `json:"title"`
		Impact string `json:"impact"`
	} `json:"incidents"`
}

type statusPage struct {
	Data       []componentState `json:"data"`
	Pagination struct {
		TotalCount int  `json:"totalCount"`
		HasMore    bool `json:"hasMore"`
	} `json:"pagination"`
}

// ---- the run ----

// ingestSummary is what follows the rows; with -json it is printed as is.
type ingestSummary struct {
	Mode string `json:"mode"` // always "ingest"

	Components        int     `json:"components"`        // -components
	ComponentsFound   int     `json:"componentsFound"`   // existing before the run
	ComponentsCreated int     `json:"componentsCreated"` // created by it
	SetupSeconds      float64 `json:"setupSeconds"`      // finding and creating them
	Escalate          float64 `json:"escalate"`          // -escalate

	// Reports answered with created=true (a new incident), by kind.
	CreatedWarmUp   int `json:"createdWarmUp"`
	WarmUpReports   int `json:"warmUpReports"`
	CreatedRepeat   int `json:"createdRepeat"`
	RepeatReports   int `json:"repeatReports"`
	CreatedEscalate int `json:"createdEscalate"`
	EscalateReports int `json:"escalateReports"`

	// The check after the run, over every component of the tenant.
	CheckedComponents     int `json:"checkedComponents"`
	MultiIncident         int `json:"componentsInSeveralOpenIncidents"` // must be 0
	DistinctOpenIncidents int `json:"distinctOpenIncidents"`
}

// ingestRun holds one -ingest session.
type ingestRun struct {
	lg      *loadgen
	n       int
	ids     []string // component id by index
	track   *tracker
	created [numKinds]int // answers with created=true, by kind

	mu      sync.Mutex
	pending map[int]sent // reports sent and not yet judged, by job
}

// sent is what a report said, kept until its answer is judged.
type sent struct{ comp, impact, kind int }

// runIngest is the whole -ingest session.
func (lg *loadgen) runIngest(ctx context.Context) error {
	cfg := lg.cfg
	if _, err := lg.c.preflight(ctx); err != nil {
		return err
	}
	lg.out.width = ingestWidth
	in := &ingestRun{lg: lg, n: cfg.components, track: newTracker(cfg.components), pending: map[int]sent{}}
	sum := ingestSummary{Mode: "ingest", Components: cfg.components, Escalate: cfg.escalate}

	// 1. The components.
	start := time.Now()
	found, err := in.ensureComponents(ctx)
	if err != nil {
		return err
	}
	sum.SetupSeconds = time.Since(start).Seconds()
	sum.ComponentsFound, sum.ComponentsCreated = found, cfg.components-found
	lg.logf("ingest: %d components ready in %.3fs (%d found, %d created)",
		cfg.components, sum.SetupSeconds, sum.ComponentsFound, sum.ComponentsCreated)

	// 2. Warm-up: one minor report each, so that incidents exist.
	lg.logf("ingest: warm-up: one minor report for each of %d components", cfg.components)
	warm, warmElapsed := in.reports(ctx, kindRows[kindWarmUp], cfg.components, 0, func(_ *rand.Rand, job int) sent {
		return sent{job, impactMinor, kindWarmUp}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}
	lg.out.print(summarize(kindRows[kindWarmUp], cfg.conns, warm[kindWarmUp], warmElapsed))
	sum.CreatedWarmUp, sum.WarmUpReports = in.created[kindWarmUp], warm[kindWarmUp].requests
	h := in.track.histogram()
	lg.logf("ingest: after the warm-up: %s", describeHistogram(h))
	if h[0] > 0 {
		lg.logf("ingest: %d components have no successful report; their reports may open incidents", h[0])
	}

	// 3. The measured reports.
	lg.logf("ingest: reporting %s with %d connections, %g of the reports escalating",
		cfg.describe(), cfg.conns, cfg.escalate)
	st, elapsed := in.reports(ctx, "report", cfg.requests, cfg.duration, func(rng *rand.Rand, _ int) sent {
		comp := rng.IntN(in.n)
		impact, escalated := chooseImpact(rng, in.track.get(comp), cfg.escalate)
		if escalated {
			return sent{comp, impact, kindEscalate}
		}
		return sent{comp, impact, kindRepeat}
	})
	if ctx.Err() != nil {
		return ctx.Err()
	}

	// 4. Their rows; the created counts follow the check.
	var all stats
	all.merge(st[kindRepeat])
	all.merge(st[kindEscalate])
	lg.out.print(summarize(kindRows[kindRepeat], cfg.conns, st[kindRepeat], elapsed))
	lg.out.print(summarize(kindRows[kindEscalate], cfg.conns, st[kindEscalate], elapsed))
	lg.out.print(summarize(rowAll, cfg.conns, all, elapsed))
	sum.CreatedRepeat, sum.RepeatReports = in.created[kindRepeat], st[kindRepeat].requests
	sum.CreatedEscalate, sum.EscalateReports = in.created[kindEscalate], st[kindEscalate].requests
	lg.logf("ingest: after the run: %s", describeHistogram(in.track.histogram()))

	// 5. No component may be in two open incidents.
	oc, err := in.verify(ctx)
	if err != nil {
		return fmt.Errorf("checking open incidents: %w", err)
	}
	sum.CheckedComponents, sum.MultiIncident, sum.DistinctOpenIncidents = oc.components, oc.multi, len(oc.incidents)
	for _, o := range oc.offenders {
		lg.logf("ingest: in several open incidents: %s", o)
	}
	lg.printIngest(sum)
	if sum.MultiIncident > 0 {
		return fmt.Errorf("%d components are in more than one open incident", sum.MultiIncident)
	}
	return nil
}

// describeHistogram renders a tracker histogram for the log.
func describeHistogram(h []int) string {
	parts := make([]string, 0, len(h))
	if h[0] > 0 {
		parts = append(parts, fmt.Sprintf("%d never reported", h[0]))
	}
	for i, name := range impactNames {
		parts = append(parts, fmt.Sprintf("%d %s", h[i+1], name))
	}
	return "components at " + strings.Join(parts, ", ")
}

// ensureComponents makes sure ingest-0..ingest-n-1 exist, creating the
// missing ones -conns at a time, and returns how many existed already.
func (in *ingestRun) ensureComponents(ctx context.Context) (int, error) {
	lg := in.lg
	ids, dups, err := in.findComponents(ctx)
	if err != nil {
		return 0, fmt.Errorf("finding components: %w", err)
	}
	if dups > 0 {
		lg.logf("ingest: %d components exist more than once with the same name and region: "+
			"reports on them fail as ambiguous; delete the extra ones", dups)
	}
	var missing []int
	for i, id := range ids {
		if id == "" {
			missing = append(missing, i)
		}
	}
	found := in.n - len(missing)
	if len(missing) == 0 {
		in.ids = ids
		return found, nil
	}
	lg.logf("ingest: %d of %d components exist; creating %d", found, in.n, len(missing))
	rows, elapsed := lg.attack(ctx, phase{name: rowCreate, jobs: len(missing), keep: errBodyPreview,
		gen: func(_ *rand.Rand, job int) request {
			i := missing[job]
			return request{method: http.MethodPost, path: "/v1/components", body: mustJSON(componentCreate{
				DisplayName: componentName(i), Labels: map[string]string{"region": componentRegion(i)},
			})}
		}})
	if ctx.Err() != nil {
		return 0, ctx.Err()
	}
	st := rows[0]
	lg.out.print(summarize(rowCreate, lg.cfg.conns, st, elapsed))

	// Read them back: the walk gives every id, ours and those a concurrent
	// run may have created.
	if ids, _, err = in.findComponents(ctx); err != nil {
		return 0, fmt.Errorf("finding components: %w", err)
	}
	if n := countEmpty(ids); n > 0 {
		return 0, fmt.Errorf("%d of %d components still missing after creating them (%d creations failed, diagnostics above)",
			n, in.n, st.errors)
	}
	in.ids = ids
	return found, nil
}

func countEmpty(ids []string) int {
	n := 0
	for _, id := range ids {
		if id == "" {
			n++
		}
	}
	return n
}

// findComponents lists the components named ingest-* of every region, the
// regions in parallel, and returns the id of each ingest-<i> with i < n
// ("" when missing) and how many were found more than once.
func (in *ingestRun) findComponents(ctx context.Context) ([]string, int, error) {
	ids := make([]string, in.n)
	var mu sync.Mutex
	var wg sync.WaitGroup
	var firstErr error
	dups := 0
	for region := range min(in.n, ingestRegions) {
		wg.Go(func() {
			label := "region:" + componentRegion(region)
			for offset := 0; ; {
				q := url.Values{"name": {ingestPrefix}, "label": {label},
					"limit": {strconv.Itoa(walkLimit)}, "offset": {strconv.Itoa(offset)}}
				var page componentPage
				err := in.lg.c.getJSON(ctx, "/v1/components", q, &page)
				mu.Lock()
				if err != nil {
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
				for _, c := range page.Data {
					i := componentIndex(c.DisplayName)
					if i < 0 || i >= in.n || c.Labels["region"] != componentRegion(i) || c.ID == "" {
						continue
					}
					if ids[i] != "" {
						dups++
						continue
					}
					ids[i] = c.ID
				}
				mu.Unlock()
				offset += len(page.Data)
				if len(page.Data) == 0 || !page.Pagination.HasMore {
					return
				}
			}
		})
	}
	wg.Wait()
	return ids, dups, firstErr
}

// reports runs a phase of reports, jobs of them or for duration, each
// chosen by choose when it is sent; it returns the stats by kind.
func (in *ingestRun) reports(ctx context.Context, name string, jobs int, duration time.Duration,
	choose func(rng *rand.Rand, job int) sent) ([]stats, time.Duration) {
	return in.lg.attack(ctx, phase{name: name, jobs: jobs, duration: duration, keep: -1, rows: numKinds,
		gen: func(rng *rand.Rand, job int) request {
			r := choose(rng, job)
			in.mu.Lock()
			in.pending[job] = r
			in.mu.Unlock()
			return reportRequest(r.comp, r.impact)
		},
		judge: in.judge})
}

// judge reads a report's answer: its kind's row, created=true and the
// component's impact, which the next reports of it build on.
func (in *ingestRun) judge(job int, res *vegeta.Result) (int, string, string) {
	in.mu.Lock()
	r := in.pending[job]
	delete(in.pending, job)
	in.mu.Unlock()
	_, kind, detail := judgeStatus(job, res)
	if kind != "" {
		return r.kind, kind, detail
	}
	created, known, err := readReport(res.Body, in.ids[r.comp])
	if err != nil {
		return r.kind, "transport", "undecodable answer: " + preview(res.Body)
	}
	if created {
		in.created[r.kind]++
	}
	in.track.observe(r.comp, max(r.impact, known))
	return r.kind, "", ""
}

// openCheck accumulates the component_status walk.
type openCheck struct {
	components int
	multi      int                 // components in more than one open incident
	incidents  map[string]struct{} // distinct open incidents
	offenders  []string            // the first few multi components, described
}

func (oc *openCheck) add(states []componentState) {
	for _, c := range states {
		oc.components++
		var ids []string
		for _, inc := range c.Incidents {
			oc.incidents[inc.ID] = struct{}{}
			if !slices.Contains(ids, inc.ID) {
				ids = append(ids, inc.ID)
			}
		}
		if len(ids) > 1 {
			oc.multi++
			if len(oc.offenders) < maxOffenders {
				oc.offenders = append(oc.offenders, fmt.Sprintf("%s %s (region %s): %s",
					c.ID, c.DisplayName, c.Labels["region"], strings.Join(ids, ", ")))
			}
		}
	}
}

// verify walks GET /v1/component_status over every component of the tenant.
func (in *ingestRun) verify(ctx context.Context) (openCheck, error) {
	oc := openCheck{incidents: map[string]struct{}{}}
	for offset := 0; ; {
		q := url.Values{"limit": {strconv.Itoa(walkLimit)}, "offset": {strconv.Itoa(offset)}}
		var page statusPage
		if err := in.lg.c.getJSON(ctx, "/v1/component_status", q, &page); err != nil {
			return oc, err
		}
		oc.add(page.Data)
		offset += len(page.Data)
		if len(page.Data) == 0 || !page.Pagination.HasMore {
			return oc, nil
		}
	}
}

// printIngest writes the lines after the table, or one JSON object.
func (lg *loadgen) printIngest(s ingestSummary) {
	w := lg.out.w
	if lg.out.json {
		fmt.Fprintf(w, "%s\n", mustJSON(s))
		return
	}
	fmt.Fprintf(w, "components:   %d ready: %d found, %d created; setup %.3fs (%d at a time)\n",
		s.Components, s.ComponentsFound, s.ComponentsCreated, s.SetupSeconds, lg.cfg.conns)
	fmt.Fprintf(w, "created=true: warm-up %d of %d, repeat %d of %d, escalate %d of %d\n",
		s.CreatedWarmUp, s.WarmUpReports, s.CreatedRepeat, s.RepeatReports, s.CreatedEscalate, s.EscalateReports)
	fmt.Fprintf(w, "verify:       %d components in more than one open incident (must be 0); %d distinct open incidents over %d components\n",
		s.MultiIncident, s.DistinctOpenIncidents, s.CheckedComponents)
}
