package store

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/testdb"
	"github.com/incidentd/incidentd/model"
)

// The store's services are tested here directly, on SQLite always and on
// PostgreSQL when TEST_DATABASE_URL is set (tests share that database and
// keep apart by tenant).

type backend struct {
	name string
	url  func(t *testing.T) string
}

func backends(t *testing.T) []backend {
	out := []backend{{"sqlite", func(t *testing.T) string { return "sqlite://" + filepath.Join(t.TempDir(), "s.db") }}}
	if os.Getenv(testdb.Env) != "" {
		out = append(out, backend{"postgres", func(t *testing.T) string { return testdb.For(t) }})
	}
	return out
}

// each runs fn once per backend, as subtests.
func each(t *testing.T, fn func(t *testing.T, url string)) {
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Log("TEST_DATABASE_URL is not set: PostgreSQL variant skipped (SQLite runs)")
	}
	for _, b := range backends(t) {
		t.Run(b.name, func(t *testing.T) { fn(t, b.url(t)) })
	}
}

func postgresURL(t *testing.T) string {
	u := testdb.For(t)
	if u == "" {
		t.Skip("TEST_DATABASE_URL is not set: this test needs PostgreSQL")
	}
	return u
}

func openStore(t *testing.T, url string, opt Options) *Store {
	t.Helper()
	s, err := Open(context.Background(), url, opt)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func tenant(name string) string {
	return name + "-" + model.RandomString(8, "abcdefghijklmnopqrstuvwxyz0123456789")
}

// as is a context acting in tenant with every scope.
func as(tenant string) context.Context {
	return model.WithPrincipal(context.Background(), &model.Principal{TenantID: tenant, ActorID: "actor-" + tenant, CredentialID: "cred-" + tenant,
		Tier: "default", Scopes: []model.Scope{model.ScopeIncidentsRead, model.ScopeIncidentsWrite, model.ScopeComponentsRead,
			model.ScopeComponentsWrite, model.ScopeAPIKeysAdmin, model.ScopeAuditRead}})
}

// watch runs a watcher of s until the test ends and collects the events of
// tenant it delivers, in order.
type collected struct {
	mu     sync.Mutex
	events []*model.Event
	more   chan struct{}
	// passes receives, after each watcher pass, whether committed events
	// were left waiting (dropped when full: drain it before relying on it).
	passes chan bool
	// stop ends the watcher (also done when the test ends).
	stop func()
}

// lookedWithPending waits until the watcher has made a whole pass that
// began after this call and found committed events waiting.
func (c *collected) lookedWithPending(t *testing.T, s *Store) {
	t.Helper()
	for len(c.passes) > 0 {
		<-c.passes
	}
	deadline := time.After(30 * time.Second)
	// A pass under way when the queue was drained may still report; the
	// wake makes sure another one starts after it.
	for seen := 0; ; {
		s.wake()
		select {
		case pending := <-c.passes:
			if seen++; seen >= 2 && pending {
				return
			}
		case <-deadline:
			t.Fatal("the watcher made no pass that saw the waiting events")
		}
	}
}

func watch(t *testing.T, s *Store, tenant string) *collected {
	t.Helper()
	c := &collected{more: make(chan struct{}, 1), passes: make(chan bool, 64)}
	w, err := s.NewWatcher(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	w.afterPass = func(pending bool) {
		select {
		case c.passes <- pending:
		default: // nobody is counting passes now
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		w.Run(ctx, func(evs []*model.Event) {
			c.mu.Lock()
			for _, e := range evs {
				if e.TenantID == tenant {
					c.events = append(c.events, e)
				}
			}
			c.mu.Unlock()
			select {
			case c.more <- struct{}{}:
			default:
			}
		}, func(string) {})
	}()
	var once sync.Once
	c.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(c.stop)
	return c
}

func (c *collected) snapshot() []*model.Event {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]*model.Event(nil), c.events...)
}

// waitFor waits until n events were collected (or the deadline: then the
// caller's comparison reports what is missing).
func (c *collected) waitFor(n int, within time.Duration) []*model.Event {
	deadline := time.After(within)
	for {
		if got := c.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-c.more:
		case <-deadline:
			return c.snapshot()
		}
	}
}

// errs collects errors from worker goroutines, for the test goroutine to
// report (t.Fatal must not be called from other goroutines).
type errs struct {
	mu   sync.Mutex
	list []error
}

func (e *errs) add(err error) {
	if err != nil {
		e.mu.Lock()
		e.list = append(e.list, err)
		e.mu.Unlock()
	}
}

func (e *errs) report(t *testing.T) {
	t.Helper()
	for i, err := range e.list {
		if i == 5 {
			t.Errorf("... and %d more", len(e.list)-5)
			break
		}
		t.Error(err)
	}
	if len(e.list) > 0 {
		t.FailNow()
	}
}

func ptr[T any](v T) *T { return &v }
