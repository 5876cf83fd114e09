package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/testdb"
)

// waitFor polls cond until it holds (or fails the test after 10 s).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: never happened", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// databases are the stores a command test runs on: a fresh SQLite file,
// and PostgreSQL when TEST_DATABASE_URL is set.
func databases(t *testing.T) map[string]string {
	dbs := map[string]string{"sqlite": "sqlite://" + filepath.Join(t.TempDir(), "k.db")}
	if u := testdb.For(t); u != "" {
		dbs["postgres"] = u
	} else {
		t.Log("TEST_DATABASE_URL is not set: PostgreSQL variant skipped (SQLite runs)")
	}
	return dbs
}

func TestAPIKeyCreate(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) { testAPIKeyCreate(t, db) })
	}
}

func testAPIKeyCreate(t *testing.T, db string) {
	var out bytes.Buffer
	err := run(t.Context(), []string{"apikey", "create", "--database-url", db, "--tenant", "acme", "--name", "ci",
		"--scopes", "incidents:read,incidents:write"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^ik_[a-z0-9]{12}_[A-Za-z0-9]{32}\n$`).MatchString(out.String()) {
		t.Errorf("stdout %q: want only the key", out.String())
	}
	out.Reset()
	err = run(t.Context(), []string{"apikey", "create", "--database-url", db, "--tenant", "acme", "--name", "ci",
		"--scopes", "read", "--json"}, &out, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	var got struct{ ID, Prefix, Tenant, Key string }
	if err := json.Unmarshal(out.Bytes(), &got); err != nil || !strings.HasPrefix(got.Key, got.Prefix+"_") ||
		got.Tenant != "acme" || !strings.HasPrefix(got.ID, "key_") {
		t.Errorf("json %s: %v", out.String(), err)
	}
	for _, args := range [][]string{
		{"--tenant", "acme", "--name", "ci", "--scopes", "admin:everything"},
		{"--tenant", "", "--name", "ci", "--scopes", "read"},
		{"--tenant", "a b", "--name", "ci", "--scopes", "read"},
		{"--tenant", "acme", "--name", "ci"},
	} {
		if err := run(t.Context(), append([]string{"apikey", "create", "--database-url", db}, args...), io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestServeGracefulShutdown starts the real server, begins a request, stops
// the server meanwhile, and expects the request to finish.
func TestServeGracefulShutdown(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) { testServeGracefulShutdown(t, db) })
	}
}

func testServeGracefulShutdown(t *testing.T, db string) {
	var key bytes.Buffer
	if err := run(t.Context(), []string{"apikey", "create", "--database-url", db, "--tenant", "t", "--name", "n", "--scopes", "write"}, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() { // port 0: the address is read back from the log, so no other process can take it meanwhile
		done <- run(ctx, []string{"serve", "--addr", "127.0.0.1:0", "--database-url", db, "--log-format", "json", "--log-level", "debug"}, io.Discard, &logs)
	}()
	addr := listenAddr(t, &logs)
	base := "http://" + addr
	// A slow request: a body that arrives in two parts, with the shutdown in between.
	pr, pw := io.Pipe()
	wrote := make(chan struct{})
	req, err := http.NewRequestWithContext(httptrace.WithClientTrace(t.Context(), &httptrace.ClientTrace{
		WroteHeaders: func() { close(wrote) }}), "POST", base+"/v1/incidents", pr)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("X-API-Key", strings.TrimSpace(key.String()))
	req.Header.Set("Content-Type", "application/json")
	result := make(chan int, 1)
	go func() {
		res, err := http.DefaultClient.Do(req)
		if err != nil {
			result <- -1
			return
		}
		res.Body.Close()
		result <- res.StatusCode
	}()
	fmt.Fprint(pw, `{"title":"in flight","severity":"low",`)
	<-wrote
	waitFor(t, "the server to take the request", func() bool {
		for _, l := range logs.lines() {
			if l["msg"] == "request started" && l["method"] == "POST" && l["path"] == "/v1/incidents" {
				return true
			}
		}
		return false
	})
	cancel()
	// Shutdown has begun (it says so, and the port no longer accepts) while
	// the request still waits for the rest of its body.
	waitFor(t, "the shutdown to begin", func() bool {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err != nil && strings.Contains(logs.String(), "shutting down")
	})
	fmt.Fprint(pw, `"occurredAt":"2024-01-15T14:30:00Z"}`)
	pw.Close()
	if got := <-result; got != http.StatusCreated {
		t.Errorf("request in flight during shutdown: %d", got)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	logged := false
	for _, l := range logs.lines() {
		if l["msg"] == "request" && l["method"] == "POST" && l["route"] == "/v1/incidents" && l["status"] == float64(201) && strings.HasPrefix(fmt.Sprint(l["request_id"]), "req_") {
			logged = true
		}
	}
	if !logged {
		t.Errorf("no request log line for the POST: %s", logs.String())
	}
	if strings.Contains(logs.String(), strings.TrimSpace(key.String())) {
		t.Error("the API key appears in the logs")
	}
}

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

// lines decodes the JSON log lines written so far.
// listenAddr waits for the server's "listening" log line and returns the
// address it names (the server listens on port 0).
func listenAddr(t *testing.T, logs *syncBuffer) string {
	t.Helper()
	var addr string
	waitFor(t, "the server to listen", func() bool {
		for _, l := range logs.lines() {
			if l["msg"] == "incidentd listening" {
				addr, _ = l["addr"].(string)
			}
		}
		return addr != ""
	})
	return addr
}

func (s *syncBuffer) lines() []map[string]any {
	var out []map[string]any
	for _, line := range strings.Split(s.String(), "\n") {
		var m map[string]any
		if json.Unmarshal([]byte(line), &m) == nil {
			out = append(out, m)
		}
	}
	return out
}

func TestMigrateAndBadConfig(t *testing.T) {
	for name, db := range databases(t) {
		t.Run(name, func(t *testing.T) { testMigrateAndBadConfig(t, db) })
	}
}

func testMigrateAndBadConfig(t *testing.T, db string) {
	for range 2 { // idempotent
		if err := run(t.Context(), []string{"migrate", "--database-url", db}, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"migrate", "--database-url", "mysql://x"},
		{"serve", "--database-url", db, "--rate-limit", "lots"},
		{"serve", "--database-url", db, "--log-level", "loud"},
		{"serve", "--database-url", db, "--webhook-secret-key", "c2hvcnQ="},
		{"serve", "--database-url", db, "--webhook-retry-schedule", "5s,soon"},
		{"frobnicate"},
	} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}

// TestHelpShowsNoSecret: settings that hold secrets (the database URL's
// password, the monitoring and webhook keys) are never printed as flag
// defaults, in help or in a flag error, whatever the environment set.
func TestHelpShowsNoSecret(t *testing.T) {
	t.Setenv("DATABASE_URL", "postgres://u:db-SEKRIT@127.0.0.1:1/x")
	t.Setenv("MONITORING_SECRET_KEY", "mon-SEKRIT")
	t.Setenv("INCIDENTD_WEBHOOK_SECRET_KEY", "hook-SEKRIT")
	for _, args := range [][]string{{"serve", "-h"}, {"serve", "--no-such-flag"}, {"migrate", "-h"}, {"apikey", "create", "-h"}} {
		var out bytes.Buffer
		_ = run(t.Context(), args, &out, &out)
		if strings.Contains(out.String(), "SEKRIT") {
			t.Errorf("%v prints a secret:\n%s", args, out.String())
		}
		if !strings.Contains(out.String(), "database-url") {
			t.Errorf("%v: no help printed:\n%s", args, out.String())
		}
	}
}
