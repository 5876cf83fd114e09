package telemetry_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/internal/server"
	"github.com/incidentd/incidentd/internal/telemetry"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// syncBuffer is a log sink the server's goroutines may share.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func attr(s sdktrace.ReadOnlySpan, key attribute.Key) string {
	for _, a := range s.Attributes() {
		if a.Key == key {
			return a.Value.String()
		}
	}
	return ""
}

// TestTraces serves one request with tracing to an in-memory exporter: the
// request yields a server span named by its route template (continuing the
// caller's trace), with database spans under it on PostgreSQL, and its log
// line carries the trace id. The span is ended before the response is
// complete (the tracing middleware is outermost), so reading the answer is
// all the waiting needed.
func TestTraces(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		exp := tracetest.NewInMemoryExporter()
		tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
		t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
		st := apitest.OpenStore(t, b, store.Options{Tracer: telemetry.PgxTracer(tp)})
		var logs syncBuffer
		app, err := server.New(st, server.Config{Tracer: tp, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
		if err != nil {
			t.Fatal(err)
		}
		srv := httptest.NewServer(app.Handler)
		t.Cleanup(func() {
			app.Close()
			srv.Close()
		})
		tenant := apitest.Tenant("traces")
		_, key, err := st.APIKeys().IssueAPIKey(context.Background(), model.APIKeyIssue{
			TenantID: tenant, Name: "t", Scopes: []model.Scope{model.ScopeIncidentsRead}, ActorID: "u"})
		if err != nil {
			t.Fatal(err)
		}
		exp.Reset()

		// The caller's trace is continued (W3C traceparent).
		const caller = "4bf92f3577b34da6a3ce929d0e0e4736"
		req, err := http.NewRequest("GET", srv.URL+"/v1/incidents/inc_000000000000", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("X-API-Key", key)
		req.Header.Set("traceparent", "00-"+caller+"-00f067aa0ba902b7-01")
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		if res.StatusCode != http.StatusNotFound {
			t.Fatalf("status %d, want 404", res.StatusCode)
		}

		spans := exp.GetSpans().Snapshots()
		var root sdktrace.ReadOnlySpan
		for _, s := range spans {
			if s.SpanKind() == trace.SpanKindServer {
				if root != nil {
					t.Fatalf("two server spans: %s and %s", root.Name(), s.Name())
				}
				root = s
			}
		}
		if root == nil {
			t.Fatalf("no server span among %d", len(spans))
		}
		if root.Name() != "GET /v1/incidents/{id}" || attr(root, "http.route") != "/v1/incidents/{id}" {
			t.Errorf("server span %q, http.route %q", root.Name(), attr(root, "http.route"))
		}
		if got := root.SpanContext().TraceID().String(); got != caller {
			t.Errorf("trace id %s, want the caller's %s", got, caller)
		}
		if strings.Contains(root.Name(), "inc_000000000000") {
			t.Errorf("raw path in the span name %q", root.Name())
		}

		// Database spans descend from the server span (PostgreSQL: pgx's tracer).
		byID := map[trace.SpanID]sdktrace.ReadOnlySpan{}
		for _, s := range spans {
			byID[s.SpanContext().SpanID()] = s
		}
		under := func(s sdktrace.ReadOnlySpan) bool {
			for p := s.Parent(); p.IsValid(); {
				if p.SpanID() == root.SpanContext().SpanID() {
					return true
				}
				parent, ok := byID[p.SpanID()]
				if !ok {
					return false
				}
				p = parent.Parent()
			}
			return false
		}
		db := 0
		for _, s := range spans {
			if attr(s, "db.system.name") == "postgresql" {
				if !under(s) {
					t.Errorf("database span %q is not under the request's", s.Name())
				}
				if s.SpanKind() != trace.SpanKindClient || attr(s, "db.query.text") == "" {
					t.Errorf("database span %q: kind %v, query text %q", s.Name(), s.SpanKind(), attr(s, "db.query.text"))
				}
				db++
			}
		}
		switch {
		case b.Name == "postgres" && db == 0:
			t.Errorf("no database span among %d spans", len(spans))
		case b.Name == "sqlite" && db != 0:
			t.Errorf("%d PostgreSQL spans on SQLite", db)
		}

		// The request's log line names the trace.
		found := false
		for line := range strings.SplitSeq(logs.String(), "\n") {
			var m map[string]any
			if json.Unmarshal([]byte(line), &m) != nil || m["msg"] != "request" {
				continue
			}
			if m["route"] == "/v1/incidents/{id}" {
				found = true
				if m["trace_id"] != caller || m["span_id"] == "" {
					t.Errorf("log line trace_id %v span_id %v, want trace %s", m["trace_id"], m["span_id"], caller)
				}
			}
		}
		if !found {
			t.Errorf("no request log line: %s", logs.String())
		}
	})
}

// TestGraphQLSpans: an operation gets a span named by type and name under
// the request's, and its resolvers spans under that.
func TestGraphQLSpans(t *testing.T) {
	b := apitest.Backends(t)[0]
	exp := tracetest.NewInMemoryExporter()
	tp := sdktrace.NewTracerProvider(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { _ = tp.Shutdown(context.Background()) })
	st := apitest.OpenStore(t, b, store.Options{Tracer: telemetry.PgxTracer(tp)})
	app, err := server.New(st, server.Config{Tracer: tp, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(app.Handler)
	t.Cleanup(func() {
		app.Close()
		srv.Close()
	})
	_, key, err := st.APIKeys().IssueAPIKey(context.Background(), model.APIKeyIssue{
		TenantID: apitest.Tenant("gql"), Name: "t", Scopes: []model.Scope{model.ScopeIncidentsRead}, ActorID: "u"})
	if err != nil {
		t.Fatal(err)
	}
	req, err := http.NewRequest("POST", srv.URL+"/graphql",
		strings.NewReader(`{"query":"query IncidentList { incidents(first: 2) { totalCount } }"}`))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", key)
	req.Header.Set("Content-Type", "application/json")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusOK {
		t.Fatalf("status %d", res.StatusCode)
	}
	names := map[string]sdktrace.ReadOnlySpan{}
	for _, s := range exp.GetSpans().Snapshots() {
		names[s.Name()] = s
	}
	req0, op, field := names["POST /graphql"], names["query IncidentList"], names["Query.incidents"]
	if req0 == nil || op == nil || field == nil {
		t.Fatalf("spans %v: want POST /graphql, query IncidentList, Query.incidents", keys(names))
	}
	if op.Parent().SpanID() != req0.SpanContext().SpanID() || field.Parent().SpanID() != op.SpanContext().SpanID() {
		t.Error("want request > operation > resolver")
	}
	if attr(op, "graphql.operation.name") != "IncidentList" || attr(op, "graphql.operation.type") != "query" {
		t.Errorf("operation attributes %v", op.Attributes())
	}
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
