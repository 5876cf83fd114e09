package store

import (
	"context"
	"os"
	"strings"
	"testing"

	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

// Batched writes (PostgreSQL): a read sees the writes queued before it, and
// a write that fails fails the transaction, whether the batch goes out
// before a read or at commit, and nothing of it stays.
func TestBatchedWrites(t *testing.T) {
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		t.Skip("TEST_DATABASE_URL is not set: the batching test needs PostgreSQL (SQLite does not batch)")
	}
	ctx := context.Background()
	s, err := Open(ctx, url, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if err := s.Migrate(ctx); err != nil {
		t.Fatal(err)
	}
	incident := "inc_" + model.RandomString(12, "abcdefghijklmnopqrstuvwxyz0123456789")
	insert := func(ctx context.Context, tx bun.Tx, ord int) {
		if _, err := s.bound(tx).ExecContext(ctx, `INSERT INTO incident_updates (tenant_id, incident_id, ord, display_name, description, created_at, created_by)
			VALUES (?, ?, ?, ?, ?, ?, ?)`, "batch-test", incident, ord, "it's", `a \ b`, newDBTime(s.clock.Now()), "t"); err != nil {
			t.Fatal(err)
		}
	}
	count := func() int {
		n, err := s.scalar(ctx, `SELECT count(*) FROM incident_updates WHERE incident_id = ? AND tenant_id = ?`, incident, "batch-test")
		if err != nil {
			t.Fatal(err)
		}
		return int(n)
	}
	// Read your writes.
	err = s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		insert(ctx, tx, 0)
		insert(ctx, tx, 1)
		if q := len(txStateOf(ctx).queued); q != 2 {
			t.Errorf("%d writes queued, want 2", q)
		}
		var n int
		var text string
		if err := s.bound(tx).QueryRowContext(ctx, `SELECT count(*), MIN(description) FROM incident_updates WHERE incident_id = ? AND tenant_id = ?`,
			incident, "batch-test").Scan(&n, &text); err != nil {
			return err
		}
		if n != 2 || text != `a \ b` {
			t.Errorf("the read saw %d rows, %q", n, text)
		}
		return nil
	})
	if err != nil || count() != 2 {
		t.Fatalf("commit: %v, %d rows", err, count())
	}
	// A failing write, sent before a read: the read reports it.
	err = s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		insert(ctx, tx, 2)
		insert(ctx, tx, 0) // duplicate key
		var one int
		return s.bound(tx).QueryRowContext(ctx, `SELECT 1`).Scan(&one)
	})
	if err == nil || !strings.Contains(err.Error(), "batched writes") {
		t.Errorf("failed batch before a read: %v", err)
	}
	// A failing write, sent at commit.
	err = s.txBatched(ctx, func(ctx context.Context, tx bun.Tx) error {
		insert(ctx, tx, 3)
		insert(ctx, tx, 1)
		return nil
	})
	if err == nil || !strings.Contains(err.Error(), "batched writes") {
		t.Errorf("failed batch at commit: %v", err)
	}
	if n := count(); n != 2 {
		t.Errorf("%d rows after the failed batches, want 2", n)
	}
	if _, err := s.bound(s.db).ExecContext(ctx, `DELETE FROM incident_updates WHERE incident_id = ? AND tenant_id = ?`, incident, "batch-test"); err != nil {
		t.Fatal(err)
	}
}
