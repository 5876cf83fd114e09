package store

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// stepClock is a clock the test moves.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time  { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *stepClock) set(t time.Time) { c.mu.Lock(); defer c.mu.Unlock(); c.now = t }

// TestMaintenanceOverTime: windows that have ended leave the list, the
// summary and the public page; windows to come are in all three, soonest
// first; a report is held by the window that covers it at that moment, and
// opens an incident once none does.
func TestMaintenanceOverTime(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		t0 := time.Date(2026, 5, 1, 12, 0, 0, 0, time.UTC)
		clock := &stepClock{now: t0}
		s := openStore(t, url, Options{Clock: clock})
		ten := tenant("mw")
		ctx := as(ten)
		comp, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("DB")})
		if err != nil {
			t.Fatal(err)
		}
		window := func(desc string, from, to time.Duration) string {
			t.Helper()
			m, err := s.Maintenance().Create(ctx, model.MaintenanceInput{Description: desc, StartsAt: t0.Add(from), EndsAt: t0.Add(to), ComponentIDs: []string{comp.ID}})
			if err != nil {
				t.Fatal(err)
			}
			return m.ID
		}
		soon := window("soon", 2*time.Hour, 3*time.Hour)
		window("ended", -2*time.Hour, -time.Hour)
		now := window("now", -time.Minute, time.Hour)
		next := window("next", 30*time.Minute, 2*time.Hour)
		if err := s.Status().SetPublication(ctx, model.Publication{Public: true}); err != nil {
			t.Fatal(err)
		}
		ids := func(ms []*model.Maintenance) []string {
			var out []string
			for _, m := range ms {
				out = append(out, m.ID)
			}
			return out
		}
		// check compares the windows listed, summarised and published.
		check := func(when string, want ...string) {
			t.Helper()
			list, err := s.Maintenance().List(ctx)
			if err != nil {
				t.Fatal(err)
			}
			sum, err := s.Status().Summary(ctx)
			if err != nil {
				t.Fatal(err)
			}
			pub, err := s.Status().PublicSummary(ctx, ten)
			if err != nil {
				t.Fatal(err)
			}
			for what, got := range map[string][]string{"list": ids(list), "summary": ids(sum.Maintenance), "public page": ids(pub.Maintenance)} {
				if !slices.Equal(got, want) {
					t.Errorf("%s, %s: %v, want %v", when, what, got, want)
				}
			}
		}
		reportHeldBy := func(when, want string) {
			t.Helper()
			res, err := s.Ingest().Report(ctx, model.ComponentReport{Name: "DB", Impact: model.ImpactMajor})
			if err != nil {
				t.Fatal(err)
			}
			switch {
			case want == "" && (res.Maintenance != nil || res.Incident == nil):
				t.Errorf("%s: a report with no window over it was held: %+v", when, res.Maintenance)
			case want != "" && (res.Maintenance == nil || res.Maintenance.ID != want || res.Incident != nil):
				t.Errorf("%s: report held by %+v, want %s", when, res.Maintenance, want)
			}
		}

		check("at the start", now, next, soon)
		reportHeldBy("at the start", now)
		clock.set(t0.Add(90 * time.Minute)) // "now" has ended, "next" runs
		check("after the first window", next, soon)
		reportHeldBy("after the first window", next)
		clock.set(t0.Add(2*time.Hour + 30*time.Minute)) // "next" has ended, "soon" runs
		check("in the last window", soon)
		reportHeldBy("in the last window", soon)
		clock.set(t0.Add(4 * time.Hour))
		check("after every window")
		reportHeldBy("after every window", "")
		// A window's end is exclusive: at its very end it is over.
		clock.set(t0)
		last := window("edge", 5*time.Hour, 6*time.Hour)
		clock.set(t0.Add(6 * time.Hour))
		check("at the end of a window")
		clock.set(t0.Add(6*time.Hour - time.Second))
		check("a second before the end", last)
	})
}

// Rule: a window reads back by id with the version it was created with;
// its deletion applies only under the version the caller expects (another
// version is refused, and nothing is deleted), and a tenant that requires
// preconditions refuses a deletion without one; other tenants see nothing.
func TestMaintenanceGetAndPreconditions(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten := tenant("mpre")
		ctx := as(ten)
		c, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some("web")})
		if err != nil {
			t.Fatal(err)
		}
		now := time.Now()
		m, err := s.Maintenance().Create(ctx, model.MaintenanceInput{Description: "upgrade", StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour),
			ComponentIDs: []string{c.ID}})
		if err != nil {
			t.Fatal(err)
		}
		got, err := s.Maintenance().Get(ctx, m.ID)
		if err != nil || got.Version() != m.Version() || got.Description != "upgrade" {
			t.Fatalf("get: %+v %v", got, err)
		}
		if _, err := s.Maintenance().Get(as(tenant("mpre")), m.ID); codeOf(err) != model.CodeNotFound {
			t.Fatalf("another tenant's get: %v", err)
		}
		if err := s.Maintenance().Delete(model.WithExpectedVersion(ctx, "stale"), m.ID); codeOf(err) != model.CodePreconditionFailed {
			t.Fatalf("stale delete: %v", err)
		}
		if _, err := s.Settings().SetRequirePreconditions(ctx, true); err != nil {
			t.Fatal(err)
		}
		if err := s.Maintenance().Delete(ctx, m.ID); codeOf(err) != model.CodePreconditionRequired {
			t.Fatalf("delete without a precondition: %v", err)
		}
		if _, err := s.Maintenance().Get(ctx, m.ID); err != nil {
			t.Fatalf("a refused delete deleted: %v", err)
		}
		if err := s.Maintenance().Delete(model.WithExpectedVersion(ctx, m.Version()), m.ID); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Maintenance().Get(ctx, m.ID); codeOf(err) != model.CodeNotFound {
			t.Fatalf("after delete: %v", err)
		}

		// A window whose components are all deleted is still read (with
		// none), listed, and can be cancelled.
		if _, err := s.Settings().SetRequirePreconditions(ctx, false); err != nil {
			t.Fatal(err)
		}
		bare, err := s.Maintenance().Create(ctx, model.MaintenanceInput{Description: "orphaned", StartsAt: now.Add(time.Hour), EndsAt: now.Add(2 * time.Hour),
			ComponentIDs: []string{c.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if err := s.Components().Delete(ctx, c.ID); err != nil {
			t.Fatal(err)
		}
		if got, err := s.Maintenance().Get(ctx, bare.ID); err != nil || len(got.ComponentIDs) != 0 || got.Description != "orphaned" {
			t.Fatalf("a window without components: %+v %v", got, err)
		}
		if list, err := s.Maintenance().List(ctx); err != nil || len(list) != 1 || list[0].ID != bare.ID {
			t.Errorf("list %+v %v", list, err)
		}
		if err := s.Maintenance().Delete(ctx, bare.ID); err != nil {
			t.Errorf("cancel a window without components: %v", err)
		}
	})
}
