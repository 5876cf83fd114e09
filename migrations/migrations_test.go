package migrations

import (
	"context"
	"database/sql"
	"fmt"
	"io/fs"
	"os"
	"path"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
)

// TestDialectsMatch: every migration exists for both dialects, so that a
// schema change cannot reach one store only.
func TestDialectsMatch(t *testing.T) {
	names := func(dir string) []string {
		files, err := fs.Glob(files, dir+"/*.sql")
		if err != nil {
			t.Fatal(err)
		}
		for i, f := range files {
			files[i] = path.Base(f)
		}
		return files
	}
	pg, lite := names("postgres"), names("sqlite")
	if len(pg) == 0 || !slices.Equal(pg, lite) {
		t.Errorf("postgres %v, sqlite %v", pg, lite)
	}
}

// TestConcurrentMigrators: replicas that start together migrate one at a
// time (an advisory lock): on a fresh PostgreSQL database, eight migrators
// at once all succeed and each version is applied once.
func TestConcurrentMigrators(t *testing.T) {
	url := os.Getenv("TEST_DATABASE_URL")
	if url == "" {
		t.Skip("TEST_DATABASE_URL is not set: this test needs PostgreSQL")
	}
	ctx := context.Background()
	admin, err := sql.Open("pgx", url)
	if err != nil {
		t.Fatal(err)
	}
	defer admin.Close()
	name := fmt.Sprintf("incidentd_mig_%d", time.Now().UnixNano())
	if _, err := admin.ExecContext(ctx, "CREATE DATABASE "+name); err != nil {
		t.Fatal(err)
	}
	defer admin.ExecContext(ctx, "DROP DATABASE IF EXISTS "+name+" WITH (FORCE)") //nolint:errcheck // best effort
	cfg, err := pgx.ParseConfig(url)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Database = name
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			db := stdlib.OpenDB(*cfg)
			defer db.Close()
			errs <- Apply(ctx, db, "pg")
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Error(err)
		}
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	var applied, distinct int
	if err := db.QueryRowContext(ctx, `SELECT count(*), count(DISTINCT version) FROM schema_migrations`).Scan(&applied, &distinct); err != nil {
		t.Fatal(err)
	}
	files, _ := fs.Glob(files, "postgres/*.sql")
	if applied != len(files) || distinct != len(files) {
		t.Errorf("%d versions recorded (%d distinct), %d files", applied, distinct, len(files))
	}
}
