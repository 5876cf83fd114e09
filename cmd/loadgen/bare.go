package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"time"
)

// The "bare" scenario measures the machine's ceiling in the same run: a
// net/http server that answers every request with a fixed incident-sized
// JSON body and does nothing else, in a process of its own (as the real
// server is), driven by the same client, connections and workers. Figures
// of the other scenarios are best read as a share of it: these machines
// are noisy, and only numbers from one run compare.

// bareBody is about the size of one incident's JSON.
var bareBody = []byte(`{"id":"inc_000000000000","title":"database timeout on the gateway","description":"` +
	strings.Repeat("x", 300) + `","severity":"high","status":"open","service":"api-gateway","tags":["production"],` +
	`"occurredAt":"2026-01-01T00:00:00Z","resolvedAt":null,"createdAt":"2026-01-01T00:00:00Z","updatedAt":"2026-01-01T00:00:00Z",` +
	`"createdBy":"key_000000000000","updatedBy":"key_000000000000","affects":[]}`)

// serveBare runs the bare server on addr and prints "listening <url>" once
// it accepts connections; it returns when stdin closes (the parent ended).
func serveBare(addr string, stdout io.Writer, stdin io.Reader) error {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(bareBody)
	}), ReadHeaderTimeout: 5 * time.Second}
	go func() { _ = srv.Serve(ln) }()
	fmt.Fprintf(stdout, "listening http://%s\n", ln.Addr())
	_, _ = io.Copy(io.Discard, stdin)
	return srv.Close()
}

// startBare starts this program as a bare server and returns its URL and
// a function that stops it.
func startBare(ctx context.Context) (string, func(), error) {
	self, err := os.Executable()
	if err != nil {
		return "", nil, fmt.Errorf("bare server: %w", err)
	}
	cmd := exec.CommandContext(ctx, self, "-serve-bare", "127.0.0.1:0")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return "", nil, fmt.Errorf("bare server: %w", err)
	}
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, fmt.Errorf("bare server: %w", err)
	}
	if err := cmd.Start(); err != nil {
		return "", nil, fmt.Errorf("bare server: %w", err)
	}
	stop := func() {
		stdin.Close()
		_ = cmd.Wait()
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	u, ok := strings.CutPrefix(strings.TrimSpace(line), "listening ")
	if err != nil || !ok {
		stop()
		return "", nil, fmt.Errorf("bare server did not start: %q %v", line, err)
	}
	return u, stop, nil
}
