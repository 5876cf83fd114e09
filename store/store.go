// Package store implements model's services on PostgreSQL (pgx) and on
// embedded SQLite. Every query is scoped by the caller's tenant; every
// write runs in one transaction with its audit row and its event.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/multitracer"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/jackc/pgx/v5/stdlib"
	_ "modernc.org/sqlite" // registers the pure-Go "sqlite" driver

	"github.com/incidentd/incidentd/migrations"
	"github.com/incidentd/incidentd/model"
)

// DefaultURL is the embedded store used when nothing is configured.
const DefaultURL = "sqlite://data/incidentd.db"

// Options tune a Store.
type Options struct {
	Clock model.Clock
	// MaxOpenConns bounds the PostgreSQL pool (default 32).
	MaxOpenConns int
	// CountCacheSize bounds the cached filtered counts (default 10,000).
	CountCacheSize int
	// Trace, when set, sees the text of every statement sent to the
	// database (on PostgreSQL, as pgx sends it: queries, batches and
	// prepares), so that tests can check that no value is in the text.
	Trace func(sql string)
	// Tracer, when set, also sees every statement on PostgreSQL, with its
	// context (database spans of request traces); it composes with Trace.
	Tracer pgx.QueryTracer
	// WebhookSecretKey, when set (WebhookSecretKeyLen bytes), seals webhook
	// signing secrets at rest (ParseWebhookSecretKey reads the setting).
	WebhookSecretKey []byte
}

// Store implements the model services over one database.
type Store struct {
	pg   bool
	pool *pgxpool.Pool // PostgreSQL
	lite *sql.DB       // SQLite
	// sqldb is database/sql over the same connections (migrations, tests).
	sqldb *sql.DB
	url   string
	clock model.Clock
	trace func(string)

	counts *countCache
	// box seals webhook signing secrets at rest (secrets.go).
	box *secretBox
	// poke wakes the local event watcher; notify asks the notifier to wake
	// the other instances' (PostgreSQL).
	poke   chan struct{}
	notify chan struct{}
	// onKeyChange is told of this instance's own key changes.
	onKeyChange atomic.Pointer[func(note string)]
	// onIngest is told what each monitoring report decided (see OnIngestDecision).
	onIngest atomic.Pointer[func(decision string)]
	// onPublication is told of this instance's own publication changes.
	onPublication atomic.Pointer[func(tenant string)]
	// stmts counts statements sent, so tests can bound a request's cost.
	stmts atomic.Int64
	// instance names this process's store in the database's activity view.
	instance string

	sealMu sync.Mutex
	seal   *sealer

	// afterDecisionRead, set by tests, runs between a report's decision
	// read and its writes.
	afterDecisionRead func()
}

// Statements returns how many SQL statements this store has sent.
func (s *Store) Statements() int64 { return s.stmts.Load() }

// Open connects to url: "postgres://..." / "postgresql://..." or
// "sqlite://<path>" (everything after the scheme is the file path).
func Open(ctx context.Context, url string, opt Options) (*Store, error) {
	if opt.Clock == nil {
		opt.Clock = model.SystemClock{}
	}
	if opt.MaxOpenConns <= 0 {
		opt.MaxOpenConns = 32
	}
	if opt.CountCacheSize <= 0 {
		opt.CountCacheSize = 10_000
	}
	box, err := newSecretBox(opt.WebhookSecretKey)
	if err != nil {
		return nil, fmt.Errorf("store: %w", err)
	}
	s := &Store{clock: opt.Clock, url: url, trace: opt.Trace, poke: make(chan struct{}, 1), notify: make(chan struct{}, 1),
		instance: model.RandomString(8, "abcdefghijklmnopqrstuvwxyz0123456789"), box: box}
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		cfg, err := pgxpool.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", redactErr(err, url))
		}
		cfg.MaxConns = int32(opt.MaxOpenConns)
		cfg.MaxConnIdleTime = 5 * time.Minute
		if _, ok := cfg.ConnConfig.RuntimeParams["application_name"]; !ok {
			cfg.ConnConfig.RuntimeParams["application_name"] = "incidentd-" + s.instance
		}
		var tracers []pgx.QueryTracer
		if opt.Trace != nil {
			tracers = append(tracers, tracer{opt.Trace})
		}
		if opt.Tracer != nil {
			tracers = append(tracers, opt.Tracer)
		}
		if len(tracers) > 0 {
			cfg.ConnConfig.Tracer = multitracer.New(tracers...)
		}
		pool, err := pgxpool.NewWithConfig(ctx, cfg)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", redactErr(err, url))
		}
		s.pool, s.pg = pool, true
		s.sqldb = stdlib.OpenDBFromPool(pool)
	case strings.HasPrefix(url, "sqlite://"):
		path := strings.TrimPrefix(url, "sqlite://")
		if path == "" {
			return nil, fmt.Errorf("store: sqlite:// needs a file path")
		}
		if dir := filepath.Dir(path); dir != "." {
			if err := os.MkdirAll(dir, 0o750); err != nil {
				return nil, fmt.Errorf("store: create %s: %w", dir, err)
			}
		}
		// WAL lets readers run beside the single writer; IMMEDIATE transactions
		// take the write lock up front so that concurrent writers queue on
		// busy_timeout instead of failing on a lock upgrade.
		dsn := "file:" + path + "?_pragma=journal_mode(WAL)&_pragma=busy_timeout(10000)" +
			"&_pragma=foreign_keys(1)&_pragma=synchronous(NORMAL)&_txlock=immediate"
		db, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		db.SetMaxOpenConns(8)
		s.lite, s.sqldb = db, db
	default:
		return nil, fmt.Errorf("store: unsupported database URL %q: want postgres:// or sqlite://<path>", redactURL(url))
	}
	s.counts = newCountCache(opt.CountCacheSize)
	if err := s.Ping(ctx); err != nil {
		s.Close()
		return nil, fmt.Errorf("store: connect: %w", redactErr(err, url))
	}
	return s, nil
}

// tracer shows pgx's statements to Options.Trace.
type tracer struct{ f func(string) }

func (t tracer) TraceQueryStart(ctx context.Context, _ *pgx.Conn, d pgx.TraceQueryStartData) context.Context {
	t.f(d.SQL)
	return ctx
}
func (tracer) TraceQueryEnd(context.Context, *pgx.Conn, pgx.TraceQueryEndData) {}
func (tracer) TraceBatchStart(ctx context.Context, _ *pgx.Conn, _ pgx.TraceBatchStartData) context.Context {
	return ctx
}
func (t tracer) TraceBatchQuery(_ context.Context, _ *pgx.Conn, d pgx.TraceBatchQueryData) {
	t.f(d.SQL)
}
func (tracer) TraceBatchEnd(context.Context, *pgx.Conn, pgx.TraceBatchEndData) {}
func (t tracer) TracePrepareStart(ctx context.Context, _ *pgx.Conn, d pgx.TracePrepareStartData) context.Context {
	t.f(d.SQL)
	return ctx
}
func (tracer) TracePrepareEnd(context.Context, *pgx.Conn, pgx.TracePrepareEndData) {}

// Migrate applies the embedded migrations, then fills in what SQL cannot
// compute the way the code does (the folded search columns).
func (s *Store) Migrate(ctx context.Context) error {
	if err := migrations.Apply(ctx, s.sqldb, s.Dialect()); err != nil {
		return err
	}
	return s.backfillFolds(ctx)
}

// backfillFolds computes the folded title and description of incidents
// written before those columns existed, in batches.
func (s *Store) backfillFolds(ctx context.Context) error {
	for {
		r, err := s.query(ctx, `SELECT id, tenant_id, title, description FROM incidents WHERE title_fold IS NULL LIMIT 500`)
		if err != nil {
			return fmt.Errorf("store: backfill search columns: %w", err)
		}
		type item struct {
			id, tenant, title string
			desc              *string
		}
		var items []item
		for r.Next() {
			var it item
			if err := r.Scan(&it.id, &it.tenant, &it.title, &it.desc); err != nil {
				r.Close()
				return fmt.Errorf("store: backfill search columns: %w", err)
			}
			items = append(items, it)
		}
		r.Close()
		if err := r.Err(); err != nil {
			return fmt.Errorf("store: backfill search columns: %w", err)
		}
		if len(items) == 0 {
			return nil
		}
		err = s.write(ctx, func(ctx context.Context, t *txn) error {
			for _, it := range items {
				if err := t.exec(ctx, "backfill search columns", `UPDATE incidents SET title_fold = $1, description_fold = $2 WHERE id = $3 AND tenant_id = $4`,
					model.Fold(it.title), foldPtr(it.desc), it.id, it.tenant); err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return fmt.Errorf("store: backfill search columns: %w", err)
		}
	}
}

func foldPtr(s *string) *string {
	if s == nil {
		return nil
	}
	f := model.Fold(*s)
	return &f
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error {
	if s.pg {
		return s.pool.Ping(ctx)
	}
	return s.lite.PingContext(ctx)
}

// Close releases the connections.
func (s *Store) Close() error {
	if s.pg {
		s.sqldb.Close()
		s.pool.Close()
		return nil
	}
	return s.lite.Close()
}

// DB exposes database/sql over the store's connections to tests and tools
// in this module (SQL written with $1, $2, ... placeholders).
func (s *Store) DB() *sql.DB { return s.sqldb }

// Dialect names the database kind: "pg" or "sqlite".
func (s *Store) Dialect() string {
	if s.pg {
		return "pg"
	}
	return "sqlite"
}

// redactURL hides a password in a URL before it reaches an error or a log.
func redactURL(u string) string {
	scheme, rest, ok := strings.Cut(u, "://")
	if !ok {
		return u
	}
	at := strings.LastIndex(rest, "@")
	if at < 0 {
		return u
	}
	userinfo := rest[:at]
	if user, _, hasPass := strings.Cut(userinfo, ":"); hasPass {
		return scheme + "://" + user + ":***@" + rest[at+1:]
	}
	return u
}

// redactErr keeps a password in url out of err's text.
func redactErr(err error, url string) error {
	if err == nil {
		return nil
	}
	if msg, red := err.Error(), redactURL(url); red != url && strings.Contains(msg, url) {
		return errors.New(strings.ReplaceAll(msg, url, red))
	}
	return err
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }

// domainOrInternal passes domain errors through and wraps everything else.
func domainOrInternal(err error, context string) error {
	if err == nil {
		return nil
	}
	var e *model.Error
	if errors.As(err, &e) {
		return e
	}
	return model.Internal(err, context)
}
