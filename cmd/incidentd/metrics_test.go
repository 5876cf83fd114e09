package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	coltracepb "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	"google.golang.org/protobuf/proto"
)

// serveForTest runs serve with args on a fresh port and returns its base
// URL, the logs, and a stop that waits for serve to return.
func serveForTest(t *testing.T, db string, args ...string) (base string, logs *syncBuffer, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	logs = &syncBuffer{}
	go func() {
		done <- run(ctx, append([]string{"serve", "--addr", "127.0.0.1:0", "--database-url", db, "--log-format", "json"}, args...), io.Discard, logs)
	}()
	addr := listenAddr(t, logs)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("serve: %v", err)
			}
		})
	}
	t.Cleanup(stop)
	return "http://" + addr, logs, stop
}

func get(t *testing.T, url, bearer string) int {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = io.Copy(io.Discard, res.Body)
	res.Body.Close()
	return res.StatusCode
}

// TestServeMetricsFlags: --metrics-addr moves /metrics to its own listener
// (the main one answers 404), and --metrics-token guards it there.
func TestServeMetricsFlags(t *testing.T) {
	db := databases(t)["sqlite"]
	base, logs, _ := serveForTest(t, db, "--metrics-addr", "127.0.0.1:0", "--metrics-token", "tok")
	var maddr string
	waitFor(t, "the metrics listener", func() bool {
		for _, l := range logs.lines() {
			if l["msg"] == "metrics listening" {
				maddr, _ = l["addr"].(string)
			}
		}
		return maddr != ""
	})
	if st := get(t, base+"/metrics", "tok"); st != http.StatusNotFound {
		t.Errorf("main listener /metrics: %d, want 404", st)
	}
	if st := get(t, "http://"+maddr+"/metrics", ""); st != http.StatusUnauthorized {
		t.Errorf("metrics listener without the token: %d, want 401", st)
	}
	if st := get(t, "http://"+maddr+"/metrics", "tok"); st != http.StatusOK {
		t.Errorf("metrics listener with the token: %d, want 200", st)
	}
}

// TestServeMetricsDefault: without flags, /metrics is on the main listener.
func TestServeMetricsDefault(t *testing.T) {
	base, _, _ := serveForTest(t, databases(t)["sqlite"])
	if st := get(t, base+"/metrics", ""); st != http.StatusOK {
		t.Errorf("/metrics: %d, want 200", st)
	}
}

// TestServeTracesOTLP: with OTEL_EXPORTER_OTLP_ENDPOINT set, serve sends
// its spans over OTLP/HTTP, flushed at shutdown; without it, none (the
// other serve tests run with it unset).
func TestServeTracesOTLP(t *testing.T) {
	var mu sync.Mutex
	var names []string
	collector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, err := io.ReadAll(r.Body)
		if err != nil || r.URL.Path != "/v1/traces" {
			http.Error(w, "bad export", http.StatusBadRequest)
			return
		}
		var req coltracepb.ExportTraceServiceRequest
		if err := proto.Unmarshal(body, &req); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		mu.Lock()
		for _, rs := range req.GetResourceSpans() {
			for _, ss := range rs.GetScopeSpans() {
				for _, s := range ss.GetSpans() {
					names = append(names, s.GetName())
				}
			}
		}
		mu.Unlock()
		w.Header().Set("Content-Type", "application/x-protobuf")
		_, _ = w.Write(nil)
	}))
	defer collector.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", collector.URL)
	t.Setenv("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf")

	base, logs, stop := serveForTest(t, databases(t)["sqlite"], "--log-level", "info")
	if st := get(t, base+"/healthz", ""); st != http.StatusOK {
		t.Fatalf("healthz: %d", st)
	}
	stop() // the tracer provider is flushed on the way out
	mu.Lock()
	defer mu.Unlock()
	if !strings.Contains(strings.Join(names, "\n"), "GET /healthz") {
		t.Errorf("spans exported: %q, want GET /healthz", names)
	}
	if !bytes.Contains([]byte(logs.String()), []byte(`"trace_id"`)) {
		t.Errorf("no trace id in the logs: %s", logs.String())
	}
}
