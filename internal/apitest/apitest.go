// Package apitest starts real incidentd servers for tests: a real store
// (SQLite in a temp dir, and PostgreSQL when TEST_DATABASE_URL is set), real
// HTTP through httptest, and a client that checks every response it receives
// against the OpenAPI document.
package apitest

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/graph"
	"github.com/incidentd/incidentd/internal/server"
	"github.com/incidentd/incidentd/internal/testdb"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/rest"
	"github.com/incidentd/incidentd/store"
	"github.com/incidentd/incidentd/webhook"
)

// Backend names a store to run a test against.
type Backend struct {
	Name string
	URL  func(t testing.TB) string
}

// Backends returns SQLite always and PostgreSQL when TEST_DATABASE_URL is set.
func Backends(t testing.TB) []Backend {
	bs := []Backend{{Name: "sqlite", URL: func(t testing.TB) string {
		return "sqlite://" + filepath.Join(t.TempDir(), "test.db")
	}}}
	if os.Getenv(testdb.Env) != "" {
		// This process's own database: other packages' servers, running
		// at the same time, fan out and deliver across tenants.
		bs = append(bs, Backend{Name: "postgres", URL: testdb.For})
	}
	return bs
}

// Postgres returns the PostgreSQL backend, or skips the test when there is none.
func Postgres(t testing.TB) Backend {
	for _, b := range Backends(t) {
		if b.Name == "postgres" {
			return b
		}
	}
	t.Skip(SkipPostgres)
	return Backend{}
}

// SkipPostgres is the message of PostgreSQL variants that cannot run.
const SkipPostgres = "TEST_DATABASE_URL is not set: PostgreSQL variant skipped (SQLite ran)"

// Each runs fn once per backend as a subtest; without TEST_DATABASE_URL the
// postgres subtest is reported as skipped, with the reason.
func Each(t *testing.T, fn func(t *testing.T, b Backend)) {
	for _, b := range Backends(t) {
		t.Run(b.Name, func(t *testing.T) { fn(t, b) })
	}
	if os.Getenv("TEST_DATABASE_URL") == "" {
		t.Run("postgres", func(t *testing.T) { t.Skip(SkipPostgres) })
	}
}

// OpenStore opens and migrates the backend's store.
func OpenStore(t testing.TB, b Backend, opt store.Options) *store.Store {
	t.Helper()
	ctx := context.Background()
	st, err := store.Open(ctx, b.URL(t), opt)
	if err != nil {
		t.Fatalf("open %s: %v", b.Name, err)
	}
	if err := st.Migrate(ctx); err != nil {
		t.Fatalf("migrate %s: %v", b.Name, err)
	}
	t.Cleanup(func() {
		st.Close()
		keyTenantsMu.Lock()
		delete(keyTenantsOf, st)
		keyTenantsMu.Unlock()
	})
	return st
}

// Server is a running incidentd.
type Server struct {
	*httptest.Server
	Store *store.Store
	App   *server.Server
	t     testing.TB
	// shutdown stops the server as incidentd serve does (once).
	shutdown func()
}

// Shutdown stops the server the way incidentd serve does: subscribers are
// told, then the base context ends, which closes hijacked WebSockets.
func (s *Server) Shutdown() { s.shutdown() }

// Config tunes a test server.
type Config struct {
	RateLimit string // default "100000-M", so tests do not trip it by accident
	Clock     model.Clock
	GraphQL   graph.Config
	Live      live.Options
	Public    live.PublicOptions
	Webhooks  webhook.Options
	// Store, if set, is served instead of a fresh one (two servers on one database).
	Store *store.Store
	// OIDC, if set, verifies bearer JWTs.
	OIDC *auth.OIDC
	// RateStore, if set, keeps rate counters (a shared Redis).
	RateStore auth.Store
	// KeyCacheTTL overrides the API key cache lifetime (default 1s).
	KeyCacheTTL time.Duration
	// CORSOrigins are passed through.
	CORSOrigins []string
	// Monitoring enables the monitoring contract's token.
	Monitoring *auth.MonitoringConfig
}

// Start serves the backend's store over real HTTP.
func Start(t testing.TB, b Backend, cfg Config) *Server {
	t.Helper()
	if cfg.RateLimit == "" {
		cfg.RateLimit = "100000-M"
	}
	if cfg.Clock == nil {
		cfg.Clock = model.SystemClock{}
	}
	if cfg.KeyCacheTTL == 0 {
		cfg.KeyCacheTTL = time.Second
	}
	st := cfg.Store
	if st == nil {
		st = OpenStore(t, b, store.Options{Clock: cfg.Clock})
	}
	if cfg.Webhooks.Tenants == nil {
		// The tests of this process share its PostgreSQL database, and an
		// earlier test's deliveries may still be pending there: this
		// server's engine sends only those of the tenants its store
		// issued keys for here.
		cfg.Webhooks.Tenants = keyTenants(st).list
	}
	app, err := server.New(st, server.Config{
		RateLimit: cfg.RateLimit, KeyCacheTTL: cfg.KeyCacheTTL, Clock: cfg.Clock, OIDC: cfg.OIDC, RateStore: cfg.RateStore, Monitoring: cfg.Monitoring,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), GraphQL: cfg.GraphQL, Live: cfg.Live, Public: cfg.Public, Webhooks: cfg.Webhooks, Explorer: true, CORSOrigins: cfg.CORSOrigins,
	})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewUnstartedServer(app.Handler)
	ctx, cancel := context.WithCancel(context.Background())
	srv.Config.BaseContext = func(net.Listener) context.Context { return ctx }
	srv.Start()
	var once sync.Once
	shutdown := func() {
		once.Do(func() {
			app.Close()
			cancel()
		})
	}
	t.Cleanup(func() {
		// Let subscriptions whose clients already left end on their own first:
		// a hub shutdown racing a client's close makes gqlgen read a
		// subscription's error while it is being written (its
		// AddSubscriptionError is not synchronised with cancellation).
		for deadline := time.Now().Add(2 * time.Second); app.Hub.Count() > 0 && time.Now().Before(deadline); {
			time.Sleep(10 * time.Millisecond)
		}
		if n := app.Hub.Count(); n > 0 && !t.Failed() {
			// A client left open ends here, with the server: say so, since
			// what the test meant to end did not.
			t.Errorf("%d subscriptions outlived the test (close their clients)", n)
		}
		shutdown()
		srv.Close()
	})
	return &Server{Server: srv, Store: st, App: app, t: t, shutdown: shutdown}
}

// tenantSet is the tenants keys were issued for on one store.
type tenantSet struct {
	mu  sync.Mutex
	ids map[string]bool
}

func (s *tenantSet) add(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.ids[id] = true
}

func (s *tenantSet) list() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.ids))
	for id := range s.ids {
		out = append(out, id)
	}
	return out
}

var (
	keyTenantsMu sync.Mutex
	keyTenantsOf = map[*store.Store]*tenantSet{}
)

// keyTenants is the tenant set of st (shared by the servers on it).
func keyTenants(st *store.Store) *tenantSet {
	keyTenantsMu.Lock()
	defer keyTenantsMu.Unlock()
	s, ok := keyTenantsOf[st]
	if !ok {
		s = &tenantSet{ids: map[string]bool{}}
		keyTenantsOf[st] = s
	}
	return s
}

// Tenant returns a tenant id unique to this test run, so that tests sharing
// one PostgreSQL database never see each other's rows.
func Tenant(name string) string {
	return name + "-" + model.RandomString(8, "abcdefghijklmnopqrstuvwxyz0123456789")
}

// With returns the server bound to t: a subtest must fail itself, not
// the test that started the server.
func (s *Server) With(t testing.TB) *Server {
	c := *s
	c.t = t
	return &c
}

// WaitSubscriptions waits until the hub holds n subscriptions, so that a
// test writes only once its subscribers are registered (no sleeping).
func (s *Server) WaitSubscriptions(n int) {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for s.App.Hub.Count() != n {
		if time.Now().After(deadline) {
			s.t.Fatalf("%d subscriptions registered, want %d", s.App.Hub.Count(), n)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// Key issues an API key in tenant with scopes, for the actor user_<tenant>
// (every key of a tenant made here acts for that one actor).
func (s *Server) Key(tenant string, scopes ...model.Scope) string {
	s.t.Helper()
	return s.KeyFor(tenant, "user_"+tenant, scopes...)
}

// KeyFor issues an API key in tenant for actor with scopes.
func (s *Server) KeyFor(tenant, actor string, scopes ...model.Scope) string {
	s.t.Helper()
	_, secret, err := s.Store.APIKeys().IssueAPIKey(context.Background(), model.APIKeyIssue{
		TenantID: tenant, Name: "test", Scopes: scopes, ActorID: actor,
	})
	if err != nil {
		s.t.Fatalf("issue key: %v", err)
	}
	keyTenants(s.Store).add(tenant)
	return secret
}

// Response is a received, contract-checked response.
type Response struct {
	Status int
	Header http.Header
	Body   []byte
}

// Expect fails t unless the status is want, and returns r: a zero-valued
// decode of an error body must never pass for "nothing there".
func (r *Response) Expect(t testing.TB, want int) *Response {
	t.Helper()
	if r.Status != want {
		t.Fatalf("status %d, want %d: %.300s", r.Status, want, r.Body)
	}
	return r
}

// JSON decodes a successful response's body into v. It fails on a 4xx or
// 5xx so that a refused request can never decode into the zero value a
// "nothing there" assertion then accepts; read a refusal with Refusal.
func (r *Response) JSON(t testing.TB, v any) {
	t.Helper()
	if r.Status >= 400 {
		t.Fatalf("status %d where a success was expected: %.300s", r.Status, r.Body)
	}
	r.Decode(t, v)
}

// Refusal decodes a 4xx or 5xx response's body into v, failing on a success.
func (r *Response) Refusal(t testing.TB, v any) {
	t.Helper()
	if r.Status < 400 {
		t.Fatalf("status %d where a refusal was expected: %.300s", r.Status, r.Body)
	}
	r.Decode(t, v)
}

// Decode decodes the body whatever the status: for GraphQL responses, whose
// errors travel in the body, with the status checked beside it.
func (r *Response) Decode(t testing.TB, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes the body, success or refusal, as a JSON object.
func (r *Response) Map(t testing.TB) map[string]any {
	t.Helper()
	var m map[string]any
	r.Decode(t, &m)
	return m
}

// Do sends a request with key (X-API-Key; empty for none) and a body (a
// string is sent as is, anything else as JSON), then checks the response
// against the OpenAPI document.
func (s *Server) Do(method, path, key string, body any, header ...string) *Response {
	s.t.Helper()
	res, err := s.Try(method, path, key, body, header...)
	switch {
	case res == nil:
		s.t.Fatal(err)
	case err != nil:
		s.t.Error(err) // a contract violation: report it, carry on with the response
	}
	return res
}

// Try is Do without failing the test: for goroutines other than the test's
// (which must not call t.Fatal), it returns transport errors and contract
// violations as errors.
func (s *Server) Try(method, path, key string, body any, header ...string) (*Response, error) {
	var rd io.Reader
	switch b := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(b)
	case []byte:
		rd = bytes.NewReader(b)
	default:
		raw, err := json.Marshal(b)
		if err != nil {
			return nil, err
		}
		rd = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(header); i += 2 {
		if header[i+1] == "" {
			req.Header.Del(header[i])
		} else {
			req.Header.Set(header[i], header[i+1])
		}
	}
	res, err := client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	defer res.Body.Close()
	raw, err := io.ReadAll(res.Body)
	if err != nil {
		return nil, fmt.Errorf("%s %s: read: %w", method, path, err)
	}
	out := &Response{Status: res.StatusCode, Header: res.Header, Body: raw}
	if err := CheckContract(req, out); err != nil {
		return out, fmt.Errorf("%s %s -> %d breaks the OpenAPI contract: %v\nbody: %.300s", method, path, out.Status, err, raw)
	}
	return out, nil
}

// client gives every request a deadline: a server that never answers fails
// the test instead of holding it until the suite's timeout.
var client = &http.Client{Timeout: time.Minute}

var (
	docOnce   sync.Once
	docRouter routers.Router
	docErr    error
)

func router() (routers.Router, error) {
	docOnce.Do(func() {
		loader := openapi3.NewLoader()
		doc, err := loader.LoadFromData(rest.OpenAPIYAML)
		if err != nil {
			docErr = fmt.Errorf("load openapi.yaml: %w", err)
			return
		}
		if err := doc.Validate(context.Background()); err != nil {
			docErr = fmt.Errorf("openapi.yaml is invalid: %w", err)
			return
		}
		// Feeds and badges are XML documents the contract describes as strings.
		for _, ct := range []string{"application/atom+xml", "application/rss+xml", "image/svg+xml"} {
			openapi3filter.RegisterBodyDecoder(ct, openapi3filter.FileBodyDecoder)
		}
		// Match paths alone: the test servers listen on random hosts and ports.
		doc.Servers = nil
		docRouter, docErr = legacy.NewRouter(doc)
	})
	return docRouter, docErr
}

// CheckContract validates a response against the OpenAPI document. Routes
// under /api/v1 are checked as their /v1 twins; paths the document does not
// describe (docs assets) are skipped.
func CheckContract(req *http.Request, res *Response) error {
	r, err := router()
	if err != nil {
		return err
	}
	if req.Method == http.MethodOptions {
		return nil // CORS preflights are the browser's protocol, not the API's
	}
	probe := req.Clone(context.Background())
	probe.URL.Path = strings.TrimPrefix(probe.URL.Path, "/api")
	if !strings.HasPrefix(probe.URL.Path, "/v1/") && probe.URL.Path != "/healthz" && probe.URL.Path != "/readyz" {
		return nil
	}
	route, params, err := r.FindRoute(probe)
	if err != nil {
		if res.Status == http.StatusNotFound || res.Status == http.StatusMethodNotAllowed || res.Status == http.StatusUnauthorized {
			// An undocumented route answering 404/405 is the contract too, and
			// so is 401: every /v1 request is authenticated before it is routed.
			return nil
		}
		return fmt.Errorf("no documented route: %w", err)
	}
	in := &openapi3filter.RequestValidationInput{
		Request: probe, PathParams: params, Route: route,
		Options: &openapi3filter.Options{AuthenticationFunc: openapi3filter.NoopAuthenticationFunc, IncludeResponseStatus: true},
	}
	out := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 res.Status,
		Header:                 res.Header,
		Body:                   io.NopCloser(bytes.NewReader(res.Body)),
		Options:                &openapi3filter.Options{IncludeResponseStatus: true},
	}
	return openapi3filter.ValidateResponse(context.Background(), out)
}
