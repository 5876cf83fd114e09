// Package migrations holds the versioned SQL schema, one folder per dialect,
// and applies it.
package migrations

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"slices"
	"strings"
)

//go:embed postgres/*.sql sqlite/*.sql
var files embed.FS

// lockID serialises concurrent migrators on PostgreSQL (replicas starting together).
const lockID = 7_420_613_001

// Apply brings db up to the newest schema. dialect is "pg" or "sqlite".
// Each file runs in its own transaction with its version row, so a failed
// migration leaves nothing half-applied.
func Apply(ctx context.Context, db *sql.DB, dialect string) error {
	dir := map[string]string{"pg": "postgres", "sqlite": "sqlite"}[dialect]
	if dir == "" {
		return fmt.Errorf("migrations: unknown dialect %q", dialect)
	}
	names, err := fs.Glob(files, dir+"/*.sql")
	if err != nil {
		return fmt.Errorf("migrations: list: %w", err)
	}
	slices.Sort(names)
	if err := createVersionTable(ctx, db, dialect); err != nil {
		return fmt.Errorf("migrations: create table: %w", err)
	}
	for _, name := range names {
		version := strings.TrimSuffix(strings.TrimPrefix(name, dir+"/"), ".sql")
		if err := applyOne(ctx, db, dialect, name, version); err != nil {
			return err
		}
	}
	return nil
}

// createVersionTable creates schema_migrations, under the migrators' lock on
// PostgreSQL: two replicas creating it at once would otherwise collide
// (IF NOT EXISTS does not make concurrent creation safe).
func createVersionTable(ctx context.Context, db *sql.DB, dialect string) error {
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	if dialect == "pg" {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version TEXT PRIMARY KEY)`); err != nil {
		return err
	}
	return tx.Commit()
}

func applyOne(ctx context.Context, db *sql.DB, dialect, name, version string) error {
	body, err := files.ReadFile(name)
	if err != nil {
		return fmt.Errorf("migrations: read %s: %w", name, err)
	}
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return fmt.Errorf("migrations: begin %s: %w", version, err)
	}
	defer tx.Rollback() //nolint:errcheck // a no-op after commit
	if dialect == "pg" {
		if _, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock($1)`, lockID); err != nil {
			return fmt.Errorf("migrations: lock: %w", err)
		}
	}
	var n int
	q := `SELECT count(*) FROM schema_migrations WHERE version = ?`
	if dialect == "pg" {
		q = `SELECT count(*) FROM schema_migrations WHERE version = $1`
	}
	if err := tx.QueryRowContext(ctx, q, version).Scan(&n); err != nil {
		return fmt.Errorf("migrations: check %s: %w", version, err)
	}
	if n > 0 {
		return nil
	}
	if _, err := tx.ExecContext(ctx, string(body)); err != nil {
		return fmt.Errorf("migrations: apply %s: %w", version, err)
	}
	ins := `INSERT INTO schema_migrations (version) VALUES (?)`
	if dialect == "pg" {
		ins = `INSERT INTO schema_migrations (version) VALUES ($1)`
	}
	if _, err := tx.ExecContext(ctx, ins, version); err != nil {
		return fmt.Errorf("migrations: record %s: %w", version, err)
	}
	if err := tx.Commit(); err != nil {
		return fmt.Errorf("migrations: commit %s: %w", version, err)
	}
	return nil
}
