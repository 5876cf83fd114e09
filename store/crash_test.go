package store

import (
	"context"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/testsvc"
	"github.com/incidentd/incidentd/model"
)

// TestCrashReusesTransactionIDs: after a crash PostgreSQL hands out again
// the transaction ids it had handed out but not written to its log. A
// watcher whose front was a gate read before the crash must still deliver
// the events written under those ids, and cached counts must not claim to
// hold them. The cluster's WAL writer is slowed so that the ids burnt
// before the crash (transactions that wrote nothing but their commit) are
// surely lost with it.
func TestCrashReusesTransactionIDs(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	pg := testsvc.StartPostgres(t, "wal_writer_delay=10000", "wal_writer_flush_after=0")
	s := openStore(t, pg.URL(), Options{})
	ten := tenant("crash")
	ctx := as(ten)
	seen := watch(t, s, ten)
	create := func(title string) {
		t.Helper()
		// The pool finds its connections dead after the crash: retry as a
		// client would.
		var err error
		for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if _, _, err = s.Incidents().Create(ctx, model.IncidentCreate{Title: title, Severity: model.SeverityHigh, OccurredAt: time.Now()}); err == nil {
				return
			}
		}
		t.Fatalf("create %s: %v", title, err)
	}
	for i := range 5 { // more than a page of one, so that counts are cached
		create(fmt.Sprint("before ", i))
	}
	if got := seen.waitFor(5, 30*time.Second); len(got) != 5 {
		t.Fatalf("delivered %d events before the crash", len(got))
	}
	var burnt int64
	for range 50 {
		if err := s.queryRow(context.Background(), `SELECT pg_current_xact_id()::text::bigint`).Scan(&burnt); err != nil {
			t.Fatal(err)
		}
	}
	// The watcher looks again: its gate is now past the burnt ids.
	for len(seen.passes) > 0 {
		<-seen.passes
	}
	for passes := 0; passes < 2; {
		s.wake()
		select {
		case <-seen.passes:
			passes++
		case <-time.After(30 * time.Second):
			t.Fatal("the watcher made no pass")
		}
	}
	// Counts cached now are taken past the burnt ids.
	checkCounts(t, s, ctx, ten, "before the crash")
	pg.Stop("immediate")
	pg.Start()
	for i := range 3 {
		create(fmt.Sprint("after ", i))
	}
	var reused int64
	if err := s.queryRow(context.Background(), `SELECT min(tx) FROM events WHERE tenant_id = $1 AND tx > (SELECT min(tx) FROM events WHERE tenant_id = $1)`, ten).Scan(&reused); err != nil {
		t.Fatal(err)
	}
	if reused > burnt {
		t.Fatalf("the crash lost no transaction ids (first after it %d, burnt up to %d): this test proves nothing here", reused, burnt)
	}
	want := committedEvents(t, s, ten)
	if got := positions(seen.waitFor(8, 30*time.Second)); !slices.Equal(got, want) {
		t.Errorf("delivered %v, committed %v", got, want)
	}
	checkCounts(t, s, ctx, ten, "after the crash")
}
