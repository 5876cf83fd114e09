package main

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

func TestAPIKeyCreate(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "k.db")
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
	dir := t.TempDir()
	db := "sqlite://" + filepath.Join(dir, "s.db")
	var key bytes.Buffer
	if err := run(t.Context(), []string{"apikey", "create", "--database-url", db, "--tenant", "t", "--name", "n", "--scopes", "write"}, &key, io.Discard); err != nil {
		t.Fatal(err)
	}
	addr := freeAddr(t)
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan error, 1)
	var logs syncBuffer
	go func() {
		done <- run(ctx, []string{"serve", "--addr", addr, "--database-url", db, "--log-format", "json"}, io.Discard, &logs)
	}()
	base := "http://" + addr
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, err := http.Get(base + "/healthz")
		if err == nil {
			res.Body.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("server did not come up: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	// A slow request: a body that arrives in two parts, with the shutdown in between.
	pr, pw := io.Pipe()
	req, _ := http.NewRequest("POST", base+"/v1/incidents", pr)
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
	time.Sleep(100 * time.Millisecond) // let the server start reading the body
	cancel()
	time.Sleep(100 * time.Millisecond) // shutdown is now waiting for the request
	fmt.Fprint(pw, `"occurredAt":"2024-01-15T14:30:00Z"}`)
	pw.Close()
	if got := <-result; got != http.StatusCreated {
		t.Errorf("request in flight during shutdown: %d", got)
	}
	if err := <-done; err != nil {
		t.Errorf("serve: %v", err)
	}
	if !strings.Contains(logs.String(), `"route":"/v1/incidents/"`) && !strings.Contains(logs.String(), `"route":"/v1/incidents`) {
		t.Errorf("no request log line: %s", logs.String())
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

func TestMigrateAndBadConfig(t *testing.T) {
	db := "sqlite://" + filepath.Join(t.TempDir(), "m.db")
	for range 2 { // idempotent
		if err := run(t.Context(), []string{"migrate", "--database-url", db}, io.Discard, io.Discard); err != nil {
			t.Fatal(err)
		}
	}
	for _, args := range [][]string{
		{"migrate", "--database-url", "mysql://x"},
		{"serve", "--database-url", db, "--rate-limit", "lots"},
		{"serve", "--database-url", db, "--log-level", "loud"},
		{"frobnicate"},
	} {
		if err := run(t.Context(), args, io.Discard, io.Discard); err == nil {
			t.Errorf("%v accepted", args)
		}
	}
}
