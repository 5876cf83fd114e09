package webhook

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/incidentd/incidentd/internal/testdb"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// The engine is tested end to end: a real store (SQLite always, PostgreSQL
// when TEST_DATABASE_URL is set), a real HTTP receiver that verifies the
// signatures with the Standard Webhooks library. Tests of this process
// share its PostgreSQL database (testdb), so each engine sends only its
// test's tenants' deliveries (Options.Tenants).

func each(t *testing.T, fn func(t *testing.T, url string)) {
	t.Run("sqlite", func(t *testing.T) { fn(t, "sqlite://"+filepath.Join(t.TempDir(), "w.db")) })
	if os.Getenv(testdb.Env) != "" {
		t.Run("postgres", func(t *testing.T) { fn(t, testdb.For(t)) })
	} else {
		t.Log("TEST_DATABASE_URL is not set: PostgreSQL variant skipped")
	}
}

func openStore(t *testing.T, url string) *store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url, store.Options{})
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

// admin acts in tenant with every scope.
func admin(tenant string) context.Context {
	return model.WithPrincipal(context.Background(), &model.Principal{TenantID: tenant, ActorID: "actor-" + tenant, CredentialID: "cred",
		Tier: "default", Scopes: []model.Scope{model.ScopeIncidentsWrite, model.ScopeComponentsWrite, model.ScopeWebhooksAdmin, model.ScopeAuditRead}})
}

// fast are options for tests: private targets (httptest listens on
// loopback), quick polls and retries, no jitter.
func fast() Options {
	return Options{AllowPrivateTargets: true, Poll: 20 * time.Millisecond, Jitter: -1, Timeout: 5 * time.Second,
		Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond, 10 * time.Millisecond}}
}

// running is an engine running until stop (or the test's end).
type running struct {
	*Engine
	stop func()
	// attempts is signalled after each recorded attempt.
	attempts chan struct{}
}

func start(t *testing.T, st *store.Store, opt Options, tenants ...string) *running {
	t.Helper()
	if len(tenants) > 0 {
		opt.Tenants = func() []string { return tenants }
	}
	e := New(st, opt)
	r := &running{Engine: e, attempts: make(chan struct{}, 1)}
	e.sent = func() {
		select {
		case r.attempts <- struct{}{}:
		default:
		}
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); e.Run(ctx) }()
	var once sync.Once
	r.stop = func() { once.Do(func() { cancel(); <-done }) }
	t.Cleanup(r.stop)
	return r
}

// received is one request a receiver got.
type received struct {
	ID, Timestamp, Signature string
	Body                     []byte
	// Verified is the library's verdict for each secret the receiver knows.
	Verified []error
}

func (r received) msg(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(r.Body, &m); err != nil {
		t.Fatalf("body %s: %v", r.Body, err)
	}
	return m
}

// receiver is a real HTTP endpoint; answer decides each answer's status
// (n counts requests from 1).
type receiver struct {
	srv     *httptest.Server
	mu      sync.Mutex
	got     []received
	secrets []string
	more    chan struct{}
	answer  func(n int, r *http.Request) int
}

func newReceiver(t *testing.T, answer func(n int, r *http.Request) int) *receiver {
	rc := &receiver{more: make(chan struct{}, 1), answer: answer}
	rc.srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		got := received{ID: r.Header.Get("webhook-id"), Timestamp: r.Header.Get("webhook-timestamp"), Signature: r.Header.Get("webhook-signature"), Body: body}
		for _, s := range rc.secrets {
			wh, err := standardwebhooks.NewWebhook(s)
			if err == nil {
				err = wh.Verify(body, r.Header)
			}
			got.Verified = append(got.Verified, err)
		}
		rc.got = append(rc.got, got)
		n := len(rc.got)
		rc.mu.Unlock()
		select {
		case rc.more <- struct{}{}:
		default:
		}
		status := http.StatusOK
		if rc.answer != nil {
			status = rc.answer(n, r)
		}
		w.WriteHeader(status)
		_, _ = w.Write([]byte("ok from the receiver"))
	}))
	t.Cleanup(rc.srv.Close)
	return rc
}

func (rc *receiver) trust(secret string) {
	rc.mu.Lock()
	rc.secrets = append(rc.secrets, secret)
	rc.mu.Unlock()
}

func (rc *receiver) snapshot() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.got...)
}

// waitFor waits until the receiver has got n requests, or fails.
func (rc *receiver) waitFor(t *testing.T, n int) []received {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		if got := rc.snapshot(); len(got) >= n {
			return got
		}
		select {
		case <-rc.more:
		case <-deadline:
			t.Fatalf("the receiver got %d requests, want %d", len(rc.snapshot()), n)
		}
	}
}

// eventually polls cond until it holds (a deadline, not a timing assertion).
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("never: %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// settled reports whether every delivery of the endpoint is delivered or failed.
func settled(t *testing.T, svc model.WebhookService, ctx context.Context, endpoint string) bool {
	t.Helper()
	page, err := svc.Deliveries(ctx, endpoint, model.WebhookDeliveryQuery{Limit: 100})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range page.Items {
		if d.State == model.WebhookPending {
			return false
		}
	}
	return len(page.Items) > 0
}

func createIncident(t *testing.T, st *store.Store, ctx context.Context, title string) *model.Incident {
	t.Helper()
	inc, _, err := st.Incidents().Create(ctx, model.IncidentCreate{Title: title, Severity: model.SeverityHigh, OccurredAt: time.Now()})
	if err != nil {
		t.Fatal(err)
	}
	return inc
}
