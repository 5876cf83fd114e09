package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/uptrace/bun"
)

// where builds a parameterised WHERE clause. bun interpolates arguments into
// the SQL text, which makes every query with a new id or cursor a new
// statement for PostgreSQL; the hot read paths use real bind parameters
// instead, so that pgx's statement cache serves them with one round trip.
type where struct {
	conds []string
	args  []any
}

// and adds a condition written with ? placeholders.
func (w *where) and(cond string, args ...any) {
	w.conds = append(w.conds, cond)
	w.args = append(w.args, args...)
}

// in adds "col IN (?, ?, ...)" for values.
func in[T ~string](w *where, col string, values []T) {
	marks := strings.TrimSuffix(strings.Repeat("?, ", len(values)), ", ")
	args := make([]any, len(values))
	for i, v := range values {
		args[i] = string(v)
	}
	w.and(col+" IN ("+marks+")", args...)
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }

// rebind turns ? placeholders into PostgreSQL's $1, $2, ... The SQL built
// here never holds a literal question mark.
func (s *Store) rebind(q string) string {
	if !s.pg {
		return q
	}
	var b strings.Builder
	n := 0
	for _, r := range q {
		if r == '?' {
			n++
			b.WriteByte('$')
			b.WriteString(strconv.Itoa(n))
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

// queryIncidents runs a parameterised SELECT of incidentColumns. Rows are
// scanned by hand: bun's reflective mapping was a third of a list's CPU.
func (s *Store) queryIncidents(ctx context.Context, q string, args ...any) ([]incidentRow, error) {
	return s.queryIncidentsOn(ctx, s.db, q, args...)
}

// queryIncidentsOn is queryIncidents on db (the pool or a transaction).
func (s *Store) queryIncidentsOn(ctx context.Context, db bun.IDB, q string, args ...any) ([]incidentRow, error) {
	rows, err := s.bound(db).QueryContext(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []incidentRow
	for rows.Next() {
		var r incidentRow
		if err := rows.Scan(r.columns()...); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, rows.Err()
}

// scalar runs a parameterised query that returns one integer.
func (s *Store) scalar(ctx context.Context, q string, args ...any) (int64, error) {
	s.stmts.Add(1)
	var n int64
	err := s.db.DB.QueryRowContext(ctx, s.rebind(q), args...).Scan(&n)
	return n, err
}

// runner is what bound needs of *sql.DB and *sql.Tx.
type runner interface {
	ExecContext(ctx context.Context, query string, args ...any) (sql.Result, error)
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
	QueryRowContext(ctx context.Context, query string, args ...any) *sql.Row
}

// bound runs hand-written SQL (? placeholders) with real bind parameters on
// the pool or in a transaction. bun's own methods interpolate arguments, so
// on PostgreSQL every call would be a new statement to parse and plan (and
// a new entry in pgx's statement cache); bound statements are prepared once
// per connection and reused. In a batching transaction (txBatched), writes
// are queued and sent together; a read sends the queue first.
type bound struct {
	r  runner
	tx bool
	s  *Store
}

// bound returns db's bind-parameter runner (db is the store's *bun.DB or a bun.Tx).
func (s *Store) bound(db bun.IDB) bound {
	switch d := db.(type) {
	case bun.Tx:
		return bound{d.Tx, true, s}
	case *bun.Tx:
		return bound{d.Tx, true, s}
	case *bun.DB:
		return bound{d.DB, false, s}
	}
	panic(fmt.Sprintf("store: no bind-parameter runner for %T", db))
}

func (b bound) batch(ctx context.Context) *txState {
	if st := txStateOf(ctx); b.tx && st != nil && st.batching {
		return st
	}
	return nil
}

// flush sends a batching transaction's queued writes.
func (b bound) flush(ctx context.Context) error {
	st := b.batch(ctx)
	if st == nil || len(st.queued) == 0 {
		return nil
	}
	q := strings.Join(st.queued, ";\n")
	st.queued = nil
	b.s.stmts.Add(1)
	// No arguments: pgx sends it with the simple protocol, every statement in
	// one round trip; the values were formatted by bun, as in all its queries.
	if _, err := b.r.ExecContext(ctx, q); err != nil {
		return fmt.Errorf("batched writes: %w", err)
	}
	return nil
}

// queuedResult is the result of a write that has been queued, not run.
type queuedResult struct{}

func (queuedResult) LastInsertId() (int64, error) { return 0, errQueued }
func (queuedResult) RowsAffected() (int64, error) { return 0, errQueued }

var errQueued = fmt.Errorf("store: write queued in a batch: no result yet")

// cleanArgs makes string arguments valid UTF-8 without NUL (PostgreSQL
// refuses both with an error): stored text never holds them, so a key that
// does (a path segment, a GraphQL id) simply matches nothing, as it did
// when bun formatted the values.
func cleanArgs(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok && (!utf8.ValidString(s) || strings.IndexByte(s, 0) >= 0) {
			args[i] = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
		}
	}
	return args
}

func (b bound) ExecContext(ctx context.Context, q string, args ...any) (sql.Result, error) {
	args = cleanArgs(args)
	if st := b.batch(ctx); st != nil {
		st.queued = append(st.queued, b.s.db.QueryGen().FormatQuery(q, args...))
		return queuedResult{}, nil
	}
	b.s.stmts.Add(1)
	return b.r.ExecContext(ctx, b.s.rebind(q), args...)
}

func (b bound) QueryContext(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	if err := b.flush(ctx); err != nil {
		return nil, err
	}
	b.s.stmts.Add(1)
	return b.r.QueryContext(ctx, b.s.rebind(q), cleanArgs(args)...)
}

// row is a one-row answer, or the error of the batch sent before it.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

func (b bound) QueryRowContext(ctx context.Context, q string, args ...any) row {
	if err := b.flush(ctx); err != nil {
		return row{err: err}
	}
	b.s.stmts.Add(1)
	return row{r: b.r.QueryRowContext(ctx, b.s.rebind(q), cleanArgs(args)...)}
}
