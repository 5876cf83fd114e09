// Package store implements model's services with bun, on PostgreSQL (pgx) and
// on embedded SQLite. Every query is scoped by the caller's tenant; every
// write runs in one transaction with its bookkeeping.
package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/uptrace/bun"
	"github.com/uptrace/bun/dialect/pgdialect"
	"github.com/uptrace/bun/dialect/sqlitedialect"
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
}

// Store is the bun-backed implementation of the model services.
type Store struct {
	db     *bun.DB
	pg     bool
	url    string
	clock  model.Clock
	counts *countCache
	// poke wakes the SQLite event watcher after a local commit.
	poke chan struct{}
	// keyPoke carries changed API key prefixes to the SQLite watcher;
	// keyOverflow asks it to forget every cached key.
	keyPoke     chan string
	keyOverflow atomic.Bool
	// stmts counts statements sent, so tests can bound a request's cost.
	stmts atomic.Int64
	// instance names this process's store in the database's activity view.
	instance string
}

// Statements returns how many SQL statements this store has sent.
func (s *Store) Statements() int64 { return s.stmts.Load() }

type countHook struct{ n *atomic.Int64 }

func (h countHook) BeforeQuery(ctx context.Context, _ *bun.QueryEvent) context.Context { return ctx }
func (h countHook) AfterQuery(context.Context, *bun.QueryEvent)                        { h.n.Add(1) }

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
	s := &Store{clock: opt.Clock, counts: newCountCache(opt.CountCacheSize), url: url, poke: make(chan struct{}, 1), keyPoke: make(chan string, 256),
		instance: model.RandomString(8, "abcdefghijklmnopqrstuvwxyz0123456789")}
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		cfg, err := pgx.ParseConfig(url)
		if err != nil {
			return nil, fmt.Errorf("store: open postgres: %w", err)
		}
		// Batched writes (txBatched) carry values formatted into the SQL
		// text, quoted the standard way; with standard_conforming_strings
		// off a backslash would end a literal. Every connection sets it, at
		// the highest precedence, whatever the server, role or URL say.
		sqldb := stdlib.OpenDB(*cfg, stdlib.OptionAfterConnect(func(ctx context.Context, c *pgx.Conn) error {
			_, err := c.Exec(ctx, "SET standard_conforming_strings = on")
			return err
		}))
		sqldb.SetMaxOpenConns(opt.MaxOpenConns)
		sqldb.SetMaxIdleConns(opt.MaxOpenConns)
		sqldb.SetConnMaxIdleTime(5 * time.Minute)
		s.db, s.pg = bun.NewDB(sqldb, pgdialect.New()), true
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
		sqldb, err := sql.Open("sqlite", dsn)
		if err != nil {
			return nil, fmt.Errorf("store: open sqlite: %w", err)
		}
		sqldb.SetMaxOpenConns(8)
		s.db = bun.NewDB(sqldb, sqlitedialect.New())
	default:
		return nil, fmt.Errorf("store: unsupported database URL %q: want postgres:// or sqlite://<path>", redactURL(url))
	}
	s.db = s.db.WithQueryHook(countHook{&s.stmts})
	if err := s.db.PingContext(ctx); err != nil {
		s.db.Close()
		return nil, fmt.Errorf("store: connect: %w", err)
	}
	return s, nil
}

// Migrate applies the embedded migrations.
func (s *Store) Migrate(ctx context.Context) error {
	dialect := "sqlite"
	if s.pg {
		dialect = "pg"
	}
	return migrations.Apply(ctx, s.db.DB, dialect)
}

// Ping checks that the database answers.
func (s *Store) Ping(ctx context.Context) error { return s.db.PingContext(ctx) }

// Close releases the connections.
func (s *Store) Close() error { return s.db.Close() }

// DB exposes the bun handle to tests and tools in this module.
func (s *Store) DB() *bun.DB { return s.db }

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

// tx runs fn in one transaction.
func (s *Store) tx(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	// One bookkeeping shard per transaction, however many incidents it writes.
	ctx = context.WithValue(ctx, shardKey{}, pickShard())
	ctx = context.WithValue(ctx, txStateKey{}, &txState{})
	return s.db.RunInTx(ctx, nil, fn)
}

type shardKey struct{}

// txState is what one transaction has done that later statements of it may
// skip, and the writes it has queued.
type txState struct {
	// eventsLocked: the tenant's events lock is held until commit.
	eventsLocked bool
	// batching: bound writes are queued and sent in one round trip before
	// the next read and before commit (PostgreSQL; see txBatched).
	batching bool
	queued   []string
}

// txBatched is tx for transactions whose statements all go through bound:
// on PostgreSQL their writes are queued and sent together, so a transaction
// that reads, then writes ten rows, costs a few round trips instead of a
// dozen (under load each round trip waits for a busy CPU, and some of these
// transactions hold a tenant-wide lock).
func (s *Store) txBatched(ctx context.Context, fn func(ctx context.Context, tx bun.Tx) error) error {
	if !s.pg {
		return s.tx(ctx, fn)
	}
	return s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		txStateOf(ctx).batching = true
		if err := fn(ctx, tx); err != nil {
			return err
		}
		return s.bound(tx).flush(ctx)
	})
}

type txStateKey struct{}

func txStateOf(ctx context.Context) *txState {
	st, _ := ctx.Value(txStateKey{}).(*txState)
	return st
}

// shardOf is the transaction's bookkeeping shard.
func shardOf(ctx context.Context) int {
	if n, ok := ctx.Value(shardKey{}).(int); ok {
		return n
	}
	return pickShard()
}

// writeShards spreads each tenant's bookkeeping rows (counters, generation)
// so that concurrent writers rarely wait for one another's row locks.
const writeShards = 16

// pickShard chooses the bookkeeping shard of one write transaction.
func pickShard() int { return rand.IntN(writeShards) }

// bumpGeneration marks a write of tenant. Writers take it before their
// counter rows (see shardOf), one shard per transaction.
func (s *Store) bumpGeneration(ctx context.Context, db bun.IDB, tenant string, shard int) error {
	_, err := s.bound(db).ExecContext(ctx, `INSERT INTO tenant_state (tenant_id, shard, generation) VALUES (?, ?, 1)
		ON CONFLICT (tenant_id, shard) DO UPDATE SET generation = tenant_state.generation + 1`, tenant, shard)
	if err != nil {
		return fmt.Errorf("bump generation: %w", err)
	}
	return nil
}

// generation reads tenant's write generation (0 before its first write).
func (s *Store) generation(ctx context.Context, tenant string) (int64, error) {
	g, err := s.scalar(ctx, `SELECT COALESCE(SUM(generation), 0) FROM tenant_state WHERE tenant_id = ?`, tenant)
	if err != nil {
		return 0, fmt.Errorf("read generation: %w", err)
	}
	return g, nil
}

func isNoRows(err error) bool { return errors.Is(err, sql.ErrNoRows) }
