package store

import (
	"context"
	"crypto/rand"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
)

// The store's one way to run SQL. Statements are written once, with
// PostgreSQL's $1, $2, ... placeholders, which SQLite reads the same way
// (as numbered parameters), and every value travels as a bind parameter:
// no statement text carries a value. On PostgreSQL the statements go
// through pgx directly (prepared once per connection, scanned natively); a
// write transaction queues its writes and sends them with its next read or
// at commit in one pipelined round trip (pgx.Batch), each with its own
// result and error. On SQLite they run through database/sql at once.

// rows is a result set of either driver.
type rows interface {
	Next() bool
	Scan(dest ...any) error
	Err() error
	Close()
}

// row is a one-row result: Scan returns sql.ErrNoRows when there is none.
type row interface{ Scan(dest ...any) error }

// querier runs reads: the store's pool, or a transaction.
type querier interface {
	query(ctx context.Context, q string, args ...any) (rows, error)
	queryRow(ctx context.Context, q string, args ...any) row
}

// planEach marks a read whose plan depends on its values (list pages:
// keyword selectivity, page size): PostgreSQL plans it with them each
// time instead of reusing a generic plan. Pass it as the first argument.
type planEach struct{}

// cleanArgs replaces string arguments that are not valid UTF-8 or hold NUL
// (PostgreSQL refuses both with an error; SQLite would compare them byte
// by byte) with unmatchable: stored text never holds such strings (JSON and
// GraphQL decode to valid UTF-8, validation refuses NUL), so a key that
// does (a path segment, a GraphQL id, a filter) must match nothing. Mapping
// them to U+FFFD instead made "a%00b" and "a%FFb" name the stored "a\uFFFDb".
func cleanArgs(args []any) []any {
	for i, a := range args {
		if s, ok := a.(string); ok && !storable(s) {
			args[i] = unmatchable
		}
	}
	return args
}

func storable(s string) bool { return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0 }

// unmatchable stands for a string no row holds: a random value drawn at
// start, which no client can know and so cannot have stored.
var unmatchable = "\uFFFD" + rand.Text()

// pgArgs prepares arguments for pgx: a leading planEach becomes pgx's
// per-execution planning mode.
func pgArgs(args []any) []any {
	if len(args) > 0 {
		if _, ok := args[0].(planEach); ok {
			args[0] = pgx.QueryExecModeExec
			cleanArgs(args[1:])
			return args
		}
	}
	return cleanArgs(args)
}

// liteArgs drops the planning marker, which means nothing to SQLite.
func liteArgs(args []any) []any {
	if len(args) > 0 {
		if _, ok := args[0].(planEach); ok {
			args = args[1:]
		}
	}
	return cleanArgs(args)
}

// liteRows adapts *sql.Rows.
type liteRows struct{ *sql.Rows }

func (r liteRows) Close() { _ = r.Rows.Close() }

// pgRow adapts pgx's row so that "no rows" is sql.ErrNoRows for callers.
type pgRow struct{ r pgx.Row }

func (r pgRow) Scan(dest ...any) error {
	err := r.r.Scan(dest...)
	if errors.Is(err, pgx.ErrNoRows) {
		return sql.ErrNoRows
	}
	return err
}

// errRow is a row whose read failed before it was sent.
type errRow struct{ err error }

func (r errRow) Scan(...any) error { return r.err }

func (s *Store) query(ctx context.Context, q string, args ...any) (rows, error) {
	s.sent(q)
	if s.pg {
		return s.pool.Query(ctx, q, pgArgs(args)...)
	}
	r, err := s.lite.QueryContext(ctx, q, liteArgs(args)...)
	if err != nil {
		return nil, err
	}
	return liteRows{r}, nil
}

func (s *Store) queryRow(ctx context.Context, q string, args ...any) row {
	s.sent(q)
	if s.pg {
		return pgRow{s.pool.QueryRow(ctx, q, pgArgs(args)...)}
	}
	return s.lite.QueryRowContext(ctx, q, liteArgs(args)...)
}

// exec runs one statement outside a transaction and returns the rows it affected.
func (s *Store) exec(ctx context.Context, q string, args ...any) (int64, error) {
	s.sent(q)
	if s.pg {
		tag, err := s.pool.Exec(ctx, q, pgArgs(args)...)
		return tag.RowsAffected(), err
	}
	res, err := s.lite.ExecContext(ctx, q, liteArgs(args)...)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// stmt is one statement of a pipeline.
type stmt struct {
	sql  string
	args []any
}

// pipeline runs reads in one round trip (PostgreSQL; SQLite runs them in
// turn) and hands each result to read, in order. planEach cannot be used
// here: pgx plans a batch's statements one way.
func (s *Store) pipeline(ctx context.Context, read func(i int, r rows) error, stmts ...stmt) error {
	if !s.pg {
		for i, st := range stmts {
			r, err := s.query(ctx, st.sql, st.args...)
			if err != nil {
				return err
			}
			err = read(i, r)
			r.Close()
			if err == nil {
				err = r.Err()
			}
			if err != nil {
				return err
			}
		}
		return nil
	}
	b := &pgx.Batch{}
	for _, st := range stmts {
		s.sent(st.sql)
		b.Queue(st.sql, cleanArgs(st.args)...)
	}
	br := s.pool.SendBatch(ctx, b)
	for i := range stmts {
		r, err := br.Query()
		if err != nil {
			br.Close()
			return err
		}
		err = read(i, r)
		r.Close()
		if err == nil {
			err = r.Err()
		}
		if err != nil {
			br.Close()
			return err
		}
	}
	return br.Close()
}

// scalar runs a read that returns one integer.
func (s *Store) scalar(ctx context.Context, q string, args ...any) (int64, error) {
	var n int64
	err := s.queryRow(ctx, q, args...).Scan(&n)
	return n, err
}

// sent counts a statement (tests bound a request's statements) and shows
// it to the SQLite trace; PostgreSQL's trace sees what pgx sends.
func (s *Store) sent(q string) {
	s.stmts.Add(1)
	if !s.pg && s.trace != nil {
		s.trace(q)
	}
}

// txn is one write transaction. Its state lives here, not in the context.
type txn struct {
	s *Store
	// PostgreSQL: the connection, whether BEGIN has been sent, and the
	// writes not sent yet.
	conn  *pgxpool.Conn
	begun bool
	queue []queued
	// SQLite: the transaction.
	lite *sql.Tx
	// committed runs after a successful commit.
	committed []func()
}

type queued struct {
	what string
	sql  string
	args []any
}

// write runs fn in one transaction: committed if fn returns nil, rolled
// back otherwise. On PostgreSQL, a transaction that never reads before it
// commits is sent as one batch, which PostgreSQL runs as one implicit
// transaction: one round trip for the whole write.
func (s *Store) write(ctx context.Context, fn func(ctx context.Context, t *txn) error) error {
	t := &txn{s: s}
	if !s.pg {
		tx, err := s.lite.BeginTx(ctx, nil)
		if err != nil {
			return fmt.Errorf("begin: %w", err)
		}
		t.lite = tx
		if err := fn(ctx, t); err != nil {
			_ = tx.Rollback()
			return err
		}
		if err := tx.Commit(); err != nil {
			return fmt.Errorf("commit: %w", err)
		}
		t.afterCommit()
		return nil
	}
	conn, err := s.pool.Acquire(ctx)
	if err != nil {
		return fmt.Errorf("acquire connection: %w", err)
	}
	t.conn = conn
	defer conn.Release() // the pool drops a connection left inside a transaction
	if err := fn(ctx, t); err != nil {
		t.rollback()
		return err
	}
	if err := t.commit(ctx); err != nil {
		t.rollback()
		return err
	}
	t.afterCommit()
	return nil
}

func (t *txn) afterCommit() {
	for _, f := range t.committed {
		f()
	}
}

// onCommit runs f after the transaction commits.
func (t *txn) onCommit(f func()) { t.committed = append(t.committed, f) }

func (t *txn) rollback() {
	if t.begun && !t.conn.Conn().IsClosed() {
		// A fresh context: the caller's may be what ended the transaction.
		_, _ = t.conn.Exec(context.Background(), "ROLLBACK")
	}
}

// commit sends the queued writes with COMMIT (or, when nothing was read,
// as one implicit transaction).
func (t *txn) commit(ctx context.Context) error {
	if !t.begun && len(t.queue) == 0 {
		return nil
	}
	b := &pgx.Batch{}
	for _, q := range t.queue {
		b.Queue(q.sql, q.args...)
	}
	if t.begun {
		b.Queue("COMMIT")
	}
	t.s.stmts.Add(int64(b.Len()))
	br := t.conn.SendBatch(ctx, b)
	err := t.results(br, len(t.queue))
	if err == nil && t.begun {
		if _, cerr := br.Exec(); cerr != nil {
			err = fmt.Errorf("commit: %w", cerr)
		}
	}
	if cerr := br.Close(); err == nil && cerr != nil {
		err = fmt.Errorf("commit: %w", cerr)
	}
	t.queue = nil
	if err == nil {
		t.begun = false
	}
	return err
}

// results reads the results of the first n queued writes of a batch in
// order; the first failure is returned, labelled with its statement.
func (t *txn) results(br pgx.BatchResults, n int) error {
	for i := 0; i < n; i++ {
		if _, err := br.Exec(); err != nil {
			return fmt.Errorf("%s: %w", t.queue[i].what, err)
		}
	}
	return nil
}

// exec queues a write (PostgreSQL; it is sent with the next read or at
// commit, and its error, labelled what, comes back from that call) or runs
// it at once (SQLite).
func (t *txn) exec(ctx context.Context, what, q string, args ...any) error {
	if t.lite != nil {
		t.s.sent(q)
		if _, err := t.lite.ExecContext(ctx, q, liteArgs(args)...); err != nil {
			return fmt.Errorf("%s: %w", what, err)
		}
		return nil
	}
	t.queue = append(t.queue, queued{what: what, sql: q, args: pgArgs(args)})
	return nil
}

// execNow runs a write at once (after the queued ones) and returns the rows it affected.
func (t *txn) execNow(ctx context.Context, what, q string, args ...any) (int64, error) {
	if t.lite != nil {
		t.s.sent(q)
		res, err := t.lite.ExecContext(ctx, q, liteArgs(args)...)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", what, err)
		}
		return res.RowsAffected()
	}
	br, err := t.send(ctx, q, args)
	if err != nil {
		return 0, err
	}
	defer br.Close()
	tag, err := br.Exec()
	if err != nil {
		return 0, fmt.Errorf("%s: %w", what, err)
	}
	return tag.RowsAffected(), nil
}

// send opens the transaction if needed and sends the queued writes with
// statement q in one round trip. The caller reads q's result from the
// batch and closes it.
func (t *txn) send(ctx context.Context, q string, args []any) (pgx.BatchResults, error) {
	b := &pgx.Batch{}
	begin := !t.begun
	if begin {
		b.Queue("BEGIN")
	}
	for _, w := range t.queue {
		b.Queue(w.sql, w.args...)
	}
	b.Queue(q, pgArgs(args)...)
	t.s.stmts.Add(int64(b.Len()))
	br := t.conn.SendBatch(ctx, b)
	t.begun = true
	if begin {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return nil, fmt.Errorf("begin: %w", err)
		}
	}
	err := t.results(br, len(t.queue))
	t.queue = nil
	if err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

// batchRows closes the batch with the rows.
type batchRows struct {
	pgx.Rows
	br pgx.BatchResults
}

func (r batchRows) Close() {
	r.Rows.Close()
	_ = r.br.Close()
}

func (t *txn) query(ctx context.Context, q string, args ...any) (rows, error) {
	if t.lite != nil {
		t.s.sent(q)
		r, err := t.lite.QueryContext(ctx, q, liteArgs(args)...)
		if err != nil {
			return nil, err
		}
		return liteRows{r}, nil
	}
	if t.begun && len(t.queue) == 0 {
		t.s.stmts.Add(1)
		return t.conn.Query(ctx, q, pgArgs(args)...)
	}
	br, err := t.send(ctx, q, args)
	if err != nil {
		return nil, err
	}
	r, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return batchRows{r, br}, nil
}

func (t *txn) queryRow(ctx context.Context, q string, args ...any) row {
	if t.lite != nil {
		t.s.sent(q)
		return t.lite.QueryRowContext(ctx, q, liteArgs(args)...)
	}
	r, err := t.query(ctx, q, args...)
	if err != nil {
		return errRow{err}
	}
	return &firstRow{r: r}
}

// firstRow reads the first row of a result and closes it.
type firstRow struct{ r rows }

func (f *firstRow) Scan(dest ...any) error {
	defer f.r.Close()
	if !f.r.Next() {
		if err := f.r.Err(); err != nil {
			return err
		}
		return sql.ErrNoRows
	}
	if err := f.r.Scan(dest...); err != nil {
		return err
	}
	f.r.Close()
	return f.r.Err()
}

// queryUnderLocks takes transaction-scoped advisory locks on keys, in the
// order given, then runs the read: all in one round trip (PostgreSQL; on
// SQLite the single writer already holds the database).
func (t *txn) queryUnderLocks(ctx context.Context, keys []string, q string, args ...any) (rows, error) {
	if t.lite == nil {
		for _, k := range keys {
			t.queue = append(t.queue, queued{what: "lock " + k, sql: `SELECT pg_advisory_xact_lock(hashtextextended($1, 0))`, args: pgArgs([]any{k})})
		}
	}
	return t.query(ctx, q, args...)
}

// lock takes a transaction-scoped advisory lock on key now, where the code
// reads as taking it (PostgreSQL; SQLite's single writer holds the database).
func (t *txn) lock(ctx context.Context, key string) error {
	if t.lite != nil {
		return nil
	}
	var ok bool
	if err := t.queryRow(ctx, `SELECT pg_advisory_xact_lock(hashtextextended($1, 0)) IS NULL`, key).Scan(&ok); err != nil {
		return fmt.Errorf("lock %s: %w", key, err)
	}
	return nil
}

// where builds a WHERE clause with numbered placeholders: arg appends a
// value and returns its placeholder, so the SQL text never holds values
// and no placeholder is ever rewritten.
type where struct {
	conds []string
	args  []any
}

// arg adds a value and returns its placeholder.
func (w *where) arg(v any) string {
	w.args = append(w.args, v)
	return "$" + strconv.Itoa(len(w.args))
}

// and adds a condition (built with arg).
func (w *where) and(cond string) { w.conds = append(w.conds, cond) }

// in adds "col IN ($i, ...)" for values.
func in[T ~string](w *where, col string, values []T) {
	if len(values) == 0 {
		w.and("1 = 0") // IN () is no SQL; nothing is in an empty list
		return
	}
	marks := make([]string, len(values))
	for i, v := range values {
		marks[i] = w.arg(string(v))
	}
	w.and(col + " IN (" + strings.Join(marks, ", ") + ")")
}

func (w *where) String() string { return strings.Join(w.conds, " AND ") }
