package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// liveRow is what the oracle of these tests needs of an incident.
type liveRow struct {
	title       string
	description *string
	status      model.Status
	severity    model.Severity
	service     *string
	occurredAt  time.Time
}

// liveRows reads the tenant's live incidents straight from the table.
func liveRows(t *testing.T, s *Store, tenant string) []liveRow {
	t.Helper()
	r, err := s.query(context.Background(), `SELECT title, description, status, severity, service, occurred_at FROM incidents
		WHERE tenant_id = $1 AND NOT is_deleted`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []liveRow
	for r.Next() {
		var l liveRow
		var at dbTime
		if err := r.Scan(&l.title, &l.description, &l.status, &l.severity, &l.service, &at); err != nil {
			t.Fatal(err)
		}
		l.occurredAt = at.Time
		out = append(out, l)
	}
	return out
}

// expected counts rows matching f, written here apart from the store's
// SQL and from model.Matches, so that it can catch both.
func expected(rows []liveRow, f model.IncidentFilter) int {
	n := 0
	for _, r := range rows {
		if len(f.Statuses) > 0 && !slices.Contains(f.Statuses, r.status) {
			continue
		}
		if len(f.Severities) > 0 && !slices.Contains(f.Severities, r.severity) {
			continue
		}
		if f.Service != nil && (r.service == nil || *r.service != *f.Service) {
			continue
		}
		if kw := strings.ToLower(f.Keyword); kw != "" && !strings.Contains(strings.ToLower(r.title), kw) &&
			(r.description == nil || !strings.Contains(strings.ToLower(*r.description), kw)) {
			continue
		}
		if f.From != nil && r.occurredAt.Before(*f.From) {
			continue
		}
		if f.To != nil && r.occurredAt.After(*f.To) {
			continue
		}
		n++
	}
	return n
}

var (
	countBase   = time.Date(2026, 3, 1, 0, 0, 0, 0, time.UTC)
	countTitles = []string{"Gateway timeout", "ÉCLAIR outage", "50% packet loss", "disk_full on db", "éclair au café", "DNS flaps", "gateway 502"}
	countDescs  = []string{"", "upstream GATEWAY slow", "Éclair service", "100% done", "nothing"}
)

// countFilters are a dozen filters over every member, alone and together.
func countFilters() []model.IncidentFilter {
	from, to := countBase.Add(3*24*time.Hour), countBase.Add(6*24*time.Hour)
	return []model.IncidentFilter{
		{},
		{Statuses: []model.Status{model.StatusOpen}},
		{Severities: []model.Severity{model.SeverityCritical}},
		{Statuses: []model.Status{model.StatusOpen, model.StatusInvestigating}, Severities: []model.Severity{model.SeverityHigh, model.SeverityLow}},
		{Service: ptr("svc-a")},
		{Keyword: "gateway"},
		{Keyword: "ÉCLAIR"}, // an upper-case keyword: counts fold it as the search does
		{Keyword: "0% "},
		{Keyword: "_"},
		{From: &from},
		{To: &to},
		{From: &from, To: &to, Severities: []model.Severity{model.SeverityMedium}},
		{Keyword: "GATEWAY", Service: ptr("svc-b"), Statuses: []model.Status{model.StatusOpen, model.StatusResolved}},
	}
}

func randomCreate(rng *rand.Rand) model.IncidentCreate {
	in := model.IncidentCreate{Title: countTitles[rng.IntN(len(countTitles))], Severity: model.Severities[rng.IntN(len(model.Severities))],
		OccurredAt: countBase.Add(time.Duration(rng.IntN(10*24)) * time.Hour)}
	if d := countDescs[rng.IntN(len(countDescs))]; d != "" {
		in.Description = &d
	}
	if n := rng.IntN(3); n < 2 {
		in.Service = ptr([]string{"svc-a", "svc-b"}[n])
	}
	return in
}

func randomPatch(rng *rand.Rand) model.IncidentPatch {
	var p model.IncidentPatch
	switch rng.IntN(5) {
	case 0:
		p.Title = model.Some(countTitles[rng.IntN(len(countTitles))])
	case 1:
		p.Status = model.Some(model.Statuses[rng.IntN(len(model.Statuses))])
	case 2:
		p.Severity = model.Some(model.Severities[rng.IntN(len(model.Severities))])
	case 3:
		p.Service = model.Some([]string{"svc-a", "svc-b"}[rng.IntN(2)])
	default:
		p.OccurredAt = model.Some(countBase.Add(time.Duration(rng.IntN(10*24)) * time.Hour))
		p.Description = model.Some(countDescs[1+rng.IntN(len(countDescs)-1)])
	}
	return p
}

// checkCounts compares every filter's totalCount with the oracle.
func checkCounts(t *testing.T, s *Store, ctx context.Context, ten, when string) {
	t.Helper()
	rows := liveRows(t, s, ten)
	for _, f := range countFilters() {
		page, err := s.Incidents().List(ctx, model.IncidentQuery{Filter: f, Sort: model.DefaultSort, Limit: 1})
		if err != nil {
			t.Fatal(err)
		}
		if want := expected(rows, f); page.TotalCount != want {
			t.Errorf("%s: filter %s: totalCount %d, %d rows match", when, f.Key(), page.TotalCount, want)
		}
	}
}

// TestCountsExactUnderConcurrentWrites: totalCount equals a count of the
// table for a dozen filters, right after the caller's own writes and after
// a concurrent burst of creates, patches and deletes, with the counts
// cached before the burst rolled forward by its events (not counted again).
func TestCountsExactUnderConcurrentWrites(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten := tenant("counts")
		ctx := as(ten)
		rng := rand.New(rand.NewPCG(1, 2))
		var ids []string
		for range 40 {
			inc, _, err := s.Incidents().Create(ctx, randomCreate(rng))
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, inc.ID)
		}
		stop := watch(t, s, ten).stop
		checkCounts(t, s, ctx, ten, "after the first creates") // also fills the cache

		// Read your writes: each write, then every count at once. The
		// watcher is stopped, so the cache cannot have seen these writes:
		// a count must notice and not answer from it.
		stop()
		for i := range 6 {
			var err error
			switch i % 3 {
			case 0:
				_, _, err = s.Incidents().Create(ctx, randomCreate(rng))
			case 1:
				_, _, err = s.Incidents().Update(ctx, ids[i], randomPatch(rng))
			default:
				err = s.Incidents().Delete(ctx, ids[i])
			}
			if err != nil {
				t.Fatal(err)
			}
			checkCounts(t, s, ctx, ten, fmt.Sprintf("right after write %d", i))
		}
		ids = ids[6:]

		// A new watcher starts afresh (the cache it finds is dropped), and the
		// counts are cached again.
		watch(t, s, ten)
		checkCounts(t, s, ctx, ten, "with a new watcher")

		// A concurrent burst.
		var failed errs
		var wg sync.WaitGroup
		for w := range 8 {
			mine := slices.Clone(ids[w*4 : w*4+4])
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 3))
				for i := range 15 {
					var err error
					switch {
					case i%5 == 4 && len(mine) > 0:
						err = s.Incidents().Delete(ctx, mine[0])
						mine = mine[1:]
					case i%2 == 0 || len(mine) == 0:
						var inc *model.Incident
						if inc, _, err = s.Incidents().Create(ctx, randomCreate(rng)); err == nil {
							mine = append(mine, inc.ID)
						}
					default:
						_, _, err = s.Incidents().Update(ctx, mine[rng.IntN(len(mine))], randomPatch(rng))
					}
					failed.add(err)
				}
			})
		}
		wg.Wait()
		failed.report(t)

		// Once the watcher has applied the burst, every count comes from the
		// cache, rolled forward: none is taken afresh.
		target := currentTarget(t, s)
		if !s.waitFrontFor(context.Background(), target, 30*time.Second) {
			t.Fatal("the watcher did not catch up")
		}
		before := s.counts.fresh.Load()
		checkCounts(t, s, ctx, ten, "after the burst")
		if n := s.counts.fresh.Load() - before; n != 0 {
			t.Errorf("%d of %d counts were taken afresh instead of rolled forward", n, len(countFilters()))
		}
	})
}

// currentTarget is the front that holds every transaction begun so far.
func currentTarget(t *testing.T, s *Store) model.Position {
	t.Helper()
	q := `SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint, 0`
	if !s.pg {
		q = `SELECT 0, COALESCE((SELECT MAX(id) FROM events), 0) + 1`
	}
	var p model.Position
	if err := s.queryRow(context.Background(), q).Scan(&p.Tx, &p.Seq); err != nil {
		t.Fatal(err)
	}
	return p
}

// waitFrontFor waits, at most d, until the watcher's front reaches
// target, asking it to look at the stream meanwhile.
func (s *Store) waitFrontFor(ctx context.Context, target model.Position, d time.Duration) bool {
	deadline := time.NewTimer(d)
	defer deadline.Stop()
	for {
		ok, moved := s.counts.reached(target)
		if ok {
			return true
		}
		s.wake()
		retry := time.NewTimer(2 * time.Millisecond)
		select {
		case <-moved:
		case <-retry.C:
		case <-deadline.C:
			retry.Stop()
			return false
		case <-ctx.Done():
			retry.Stop()
			return false
		}
		retry.Stop()
	}
}

// TestCountsPastTheCatchUpLimit: with the watcher held up after the counts
// were cached, more writes than a reader rolls forward itself (maxCatchUp)
// make it count afresh, not apply the first ones and miss the rest.
func TestCountsPastTheCatchUpLimit(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten := tenant("catchup")
		ctx := as(ten)
		rng := rand.New(rand.NewPCG(3, 4))
		for range 10 { // more than a page of one, so that lists count
			if _, _, err := s.Incidents().Create(ctx, randomCreate(rng)); err != nil {
				t.Fatal(err)
			}
		}
		w, err := s.NewWatcher(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		var hold atomic.Bool
		release, delivered := make(chan struct{}), make(chan struct{}, 1)
		wctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() {
			defer close(done)
			w.Run(wctx, func([]*model.Event) {
				if hold.Load() {
					delivered <- struct{}{}
					<-release // the watcher is stuck here: the cache's front stays
				}
			}, func(string) {})
		}()
		t.Cleanup(func() { close(release); cancel(); <-done })
		checkCounts(t, s, ctx, ten, "before") // fills the cache
		hold.Store(true)
		if _, _, err := s.Incidents().Create(ctx, randomCreate(rng)); err != nil {
			t.Fatal(err)
		}
		<-delivered
		for range maxCatchUp + 3 {
			if _, _, err := s.Incidents().Create(ctx, randomCreate(rng)); err != nil {
				t.Fatal(err)
			}
		}
		checkCounts(t, s, ctx, ten, fmt.Sprintf("after %d writes the watcher has not applied", maxCatchUp+3))
	})
}

// TestCountCacheCatchUp: a count taken while the watcher moves on is
// rolled forward by exactly the events its snapshot lacked: those at or
// after its position that it did not hold already, whether the watcher
// applied them before the count was installed (history) or after.
func TestCountCacheCatchUp(t *testing.T) {
	c := newCountCache(10)
	pos := func(tx int64) model.Position { return model.Position{Tx: tx, Seq: tx} }
	ev := func(tx int64, before, after model.Status) *model.Event {
		e := &model.Event{Pos: pos(tx), TenantID: "t", Incident: &model.Incident{Status: after, Severity: model.SeverityLow}}
		if before != "" {
			e.Before = &model.Incident{Status: before, Severity: model.SeverityLow}
		}
		return e
	}
	c.restart(pos(10), "")
	// Applied before the count exists: 11 (held by the snapshot), 12 (not held).
	c.advance([]*model.Event{ev(11, "", model.StatusOpen), ev(12, "", model.StatusOpen)}, pos(13))
	// The count: taken at position 11, its snapshot holding 11 and 14.
	e := &countEntry{tally: map[cell]int{{model.StatusOpen, model.SeverityLow}: 2}, since: pos(11),
		skip: map[model.Position]bool{pos(11): true, pos(14): true}}
	c.install(countKey{tenant: "t"}, e)
	// Applied after: 13 (not held), 14 (held), 15 (not held, a status change).
	c.advance([]*model.Event{ev(13, "", model.StatusOpen), ev(14, "", model.StatusOpen), ev(15, model.StatusOpen, model.StatusClosed)}, pos(16))
	open := model.IncidentFilter{Statuses: []model.Status{model.StatusOpen}}
	// 2 held + 12 + 13 - 15 = 3 open; 15 closed.
	if n, _, _, _, ok := c.lookup(countKey{tenant: "t"}, &open); !ok || n != 3 {
		t.Errorf("open: %d (cached %v), want 3", n, ok)
	}
	closed := model.IncidentFilter{Statuses: []model.Status{model.StatusClosed}}
	if n, _, _, _, ok := c.lookup(countKey{tenant: "t"}, &closed); !ok || n != 1 {
		t.Errorf("closed: %d (cached %v), want 1", n, ok)
	}
	// A count older than the history cannot be rolled forward: not kept.
	c.install(countKey{tenant: "t", filter: "old"}, &countEntry{since: pos(5), skip: map[model.Position]bool{}})
	if _, _, _, _, ok := c.lookup(countKey{tenant: "t", filter: "old"}, &open); ok {
		t.Error("a count from before the history was installed")
	}
	// A count from another epoch of the database (taken before or after a
	// restart the watcher has not seen yet) says nothing about this one's
	// positions: not kept either.
	c.install(countKey{tenant: "t", filter: "restart"}, &countEntry{since: pos(16), epoch: "later", skip: map[model.Position]bool{}})
	if _, _, _, _, ok := c.lookup(countKey{tenant: "t", filter: "restart"}, &open); ok {
		t.Error("a count from another epoch was installed")
	}
}

// TestReaderCatchUpSkipsWhatTheCountHolds: a count cached ahead of the
// watcher (taken after events it has not applied yet) already holds some
// of the events a reader finds missing; the reader applies only the rest.
func TestReaderCatchUpSkipsWhatTheCountHolds(t *testing.T) {
	c := newCountCache(10)
	pos := func(tx int64) model.Position { return model.Position{Tx: tx, Seq: tx} }
	open := func() *model.Incident { return &model.Incident{Status: model.StatusOpen, Severity: model.SeverityLow} }
	c.restart(pos(10), "")
	// Counted at 20, holding 20 and 25 beyond it; the watcher is still at 10.
	c.install(countKey{tenant: "t"}, &countEntry{tally: map[cell]int{{model.StatusOpen, model.SeverityLow}: 5}, since: pos(20),
		skip: map[model.Position]bool{pos(20): true, pos(25): true}})
	n, front, _, entry, ok := c.lookup(countKey{tenant: "t"}, &model.IncidentFilter{})
	if !ok || front != pos(10) {
		t.Fatalf("lookup: %v %v", front, ok)
	}
	// The reader finds 12 and 15 (before the count), 20 and 25 (held), 30 (new).
	check := &countCheck{n: n, front: front, entry: entry, cached: true, checked: true}
	for _, tx := range []int64{12, 15, 20, 25, 30} {
		check.missing = append(check.missing, missedEvent{pos: pos(tx), after: open()})
	}
	if got := check.value(&model.IncidentFilter{}); got != 6 {
		t.Errorf("count %d, want 6 (5 counted + the one at 30)", got)
	}
}
