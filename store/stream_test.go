package store

import (
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// committedEvents reads the tenant's events straight from the table, in
// position order: what every watcher must deliver, once each, in this order.
func committedEvents(t *testing.T, s *Store, tenant string) []model.Position {
	t.Helper()
	r, err := s.query(context.Background(), `SELECT tx, id FROM events WHERE tenant_id = $1 ORDER BY tx, id`, tenant)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var out []model.Position
	for r.Next() {
		var p model.Position
		if err := r.Scan(&p.Tx, &p.Seq); err != nil {
			t.Fatal(err)
		}
		out = append(out, p)
	}
	return out
}

func positions(evs []*model.Event) []model.Position {
	out := make([]model.Position, len(evs))
	for i, e := range evs {
		out[i] = e.Pos
	}
	return out
}

// replayAll pages through the tenant's retained events after a position.
func replayAll(t *testing.T, s *Store, ctx context.Context, after model.Position) []model.Position {
	t.Helper()
	var out []model.Position
	for {
		evs, err := s.Events().IncidentEvents(ctx, after, 37) // an odd page size: pages end mid-transaction
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, positions(evs)...)
		if len(evs) < 37 {
			return out
		}
		after = evs[len(evs)-1].Pos
	}
}

// TestConcurrentWritersOneOrder: many writers of one tenant at once, two
// instances watching. Every committed change is delivered once, both
// instances deliver the same order (the table's position order), and a
// resume from a position taken in the middle of the burst is exact.
func TestConcurrentWritersOneOrder(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		a := openStore(t, url, Options{})
		b := a
		writers, perWriter := 8, 12
		if a.pg {
			b = openStore(t, url, Options{}) // a second instance on the same database
			writers = 50
		}
		ten := tenant("burst")
		ctx := as(ten)
		onA, onB := watch(t, a, ten), watch(t, b, ten)

		var failed errs
		var mid struct {
			sync.Mutex
			taken  []model.Position
			replay [][]model.Position
		}
		var wg sync.WaitGroup
		for w := range writers {
			wg.Go(func() {
				st := a
				if w%2 == 1 {
					st = b
				}
				rng := rand.New(rand.NewPCG(uint64(w), 7))
				var mine []string
				for i := range perWriter {
					switch {
					case len(mine) == 0 || rng.IntN(3) == 0:
						inc, _, err := st.Incidents().Create(ctx, model.IncidentCreate{Title: fmt.Sprintf("w%d-%d", w, i), Severity: model.SeverityLow,
							OccurredAt: time.Now()})
						failed.add(err)
						if err == nil {
							mine = append(mine, inc.ID)
						}
					case rng.IntN(4) == 0:
						failed.add(st.Incidents().Delete(ctx, mine[0]))
						mine = mine[1:]
					default:
						_, _, err := st.Incidents().Update(ctx, mine[rng.IntN(len(mine))], model.IncidentPatch{Title: model.Some(fmt.Sprintf("w%d-%d'", w, i))})
						failed.add(err)
					}
				}
			})
		}
		// Mid-burst: resume from the latest delivered position, as a client
		// that reconnects now would, again and again while the writers run.
		writing := make(chan struct{})
		resumed := make(chan struct{})
		go func() {
			defer close(resumed)
			for {
				select {
				case <-writing:
					return
				case <-onA.more:
				}
				got := onA.snapshot()
				if len(got) == 0 {
					continue
				}
				from := got[len(got)-1].Pos
				evs, err := a.Events().IncidentEvents(ctx, from, model.MaxReplay)
				failed.add(err)
				mid.Lock()
				mid.taken, mid.replay = append(mid.taken, from), append(mid.replay, positions(evs))
				mid.Unlock()
			}
		}()
		wg.Wait()
		close(writing)
		<-resumed
		failed.report(t)

		want := committedEvents(t, a, ten)
		gotA := positions(onA.waitFor(len(want), 30*time.Second))
		gotB := positions(onB.waitFor(len(want), 30*time.Second))
		if !slices.Equal(gotA, want) {
			t.Fatalf("instance A delivered %d events, %d committed; first difference at %d", len(gotA), len(want), firstDiff(gotA, want))
		}
		if !slices.Equal(gotB, want) {
			t.Fatalf("instance B delivered %d events, %d committed; first difference at %d", len(gotB), len(want), firstDiff(gotB, want))
		}
		if len(mid.taken) == 0 {
			t.Fatal("no resume was taken during the burst")
		}
		for i, from := range mid.taken {
			k := slices.Index(want, from)
			if k < 0 {
				t.Fatalf("a delivered position %v is not in the table", from)
			}
			// Taken mid-burst, the replay holds what was final then: a prefix
			// of what follows the position.
			if rest := want[k+1:]; len(mid.replay[i]) > len(rest) || !slices.Equal(mid.replay[i], rest[:len(mid.replay[i])]) {
				t.Errorf("resume %d from position %d of %d: replay is not a prefix of what followed", i, k, len(want))
			}
			// Taken now, it is exactly what followed.
			if got := replayAll(t, a, ctx, from); !slices.Equal(got, want[k+1:]) {
				t.Errorf("resume from position %d: %d events, want %d", k, len(got), len(want)-k-1)
			}
		}
		// Every event is delivered with its tenant-bound cursor.
		for _, e := range onA.snapshot() {
			p, err := a.Events().ParsePosition(ctx, e.Cursor)
			if err != nil || p != e.Pos {
				t.Fatalf("cursor %q reads %v, %v; want %v", e.Cursor, p, err, e.Pos)
			}
		}
	})
}

func firstDiff(a, b []model.Position) int {
	for i := range min(len(a), len(b)) {
		if a[i] != b[i] {
			return i
		}
	}
	return min(len(a), len(b))
}

// TestLongTransactionDelaysDelivery: a transaction that began writing
// before others holds back what they commit (it may still come first),
// and once it commits everything arrives, in position order.
func TestLongTransactionDelaysDelivery(t *testing.T) {
	url := postgresURL(t)
	s := openStore(t, url, Options{})
	ten := tenant("long")
	ctx := as(ten)
	seen := watch(t, s, ten)
	w, err := s.NewWatcher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	defer w.listener.Close(context.Background()) // this watcher only polls; it never runs
	p := model.PrincipalFrom(ctx)

	started, release := make(chan int64), make(chan struct{})
	longDone := make(chan error, 1)
	go func() {
		longDone <- s.write(ctx, func(ctx context.Context, tx *txn) error {
			var xid int64
			if err := tx.queryRow(ctx, `SELECT pg_current_xact_id()::text::bigint`).Scan(&xid); err != nil {
				return err
			}
			inc, _, err := incidents{s}.insertTx(ctx, tx, p, model.IncidentCreate{Title: "long", Severity: model.SeverityHigh, OccurredAt: time.Now()})
			if err != nil {
				return err
			}
			if err := s.appendEvent(ctx, tx, model.EventIncidentCreated, nil, inc, nil); err != nil {
				return err
			}
			started <- xid
			<-release
			return nil
		})
	}()
	longXID := <-started
	for i := range 10 {
		if _, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: fmt.Sprint("quick ", i), Severity: model.SeverityLow, OccurredAt: time.Now()}); err != nil {
			close(release)
			t.Fatal(err)
		}
	}
	// The ten are committed, after the long one began: a poll now must not
	// return them (they could gain a predecessor), and says they wait.
	seal, err := s.sealer(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	evs, polled, err := w.poll(context.Background(), seal)
	pending := polled.pending
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range evs {
		if e.TenantID == ten {
			t.Errorf("event %v delivered while transaction %d, older, is still open", e.Pos, longXID)
		}
	}
	if !pending {
		t.Error("the poll does not report committed events waiting")
	}
	// The running watcher too has looked since and saw them waiting, yet
	// delivered none.
	seen.lookedWithPending(t, s)
	if got := seen.snapshot(); len(got) > 0 {
		t.Errorf("the watcher delivered %d events while an older transaction was open", len(got))
	}
	close(release)
	if err := <-longDone; err != nil {
		t.Fatal(err)
	}
	want := committedEvents(t, s, ten)
	got := positions(seen.waitFor(11, 30*time.Second))
	if !slices.Equal(got, want) || len(got) != 11 {
		t.Fatalf("delivered %v, committed %v", got, want)
	}
	if got[0].Tx != longXID {
		t.Errorf("the long transaction's event is not first: %v (its transaction %d)", got[0], longXID)
	}
}
