package apitest

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// SSE is an open server-sent event stream.
type SSE struct {
	Response *http.Response
	r        *bufio.Reader
	cancel   func()
}

// SSEEvent is one event of a stream.
type SSEEvent struct {
	ID, Type string
	Data     json.RawMessage
}

// OpenSSE opens a stream at path (key may be "" for public streams; hdr are
// header name, value pairs) and fails the test unless it is one. The
// stream closes when the test ends.
func (s *Server) OpenSSE(t testing.TB, path, key string, hdr ...string) *SSE {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, s.URL+path, nil)
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	if key != "" {
		req.Header.Set("X-API-Key", key)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusOK || res.Header.Get("Content-Type") != "text/event-stream" {
		cancel()
		t.Fatalf("open %s: %v %v", path, err, res)
	}
	st := &SSE{Response: res, r: bufio.NewReader(res.Body), cancel: func() { cancel(); res.Body.Close() }}
	t.Cleanup(st.Close)
	return st
}

// Close ends the stream.
func (st *SSE) Close() { st.cancel() }

// Next reads the next event (comments and retry lines skipped), failing the
// test when none comes within timeout or the stream ends first.
func (st *SSE) Next(t testing.TB, timeout time.Duration) SSEEvent {
	t.Helper()
	e, err := st.TryNext(timeout)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

// TryNext is Next returning the error (the stream ended, or nothing came).
// After a timeout the stream is closed: a read is still pending on it.
func (st *SSE) TryNext(timeout time.Duration) (SSEEvent, error) {
	type result struct {
		e   SSEEvent
		err error
	}
	done := make(chan result, 1)
	go func() {
		var e SSEEvent
		for {
			line, err := st.r.ReadString('\n')
			if err != nil {
				done <- result{err: fmt.Errorf("the stream ended before an event: %w", err)}
				return
			}
			line = strings.TrimRight(line, "\n")
			switch {
			case strings.HasPrefix(line, "id: "):
				e.ID = line[4:]
			case strings.HasPrefix(line, "event: "):
				e.Type = line[7:]
			case strings.HasPrefix(line, "data: "):
				e.Data = json.RawMessage(line[6:])
				if !json.Valid(e.Data) {
					done <- result{err: fmt.Errorf("event data is not JSON: %q", line[6:])}
					return
				}
			case line == "" && e.Type != "":
				done <- result{e: e}
				return
			}
		}
	}()
	select {
	case r := <-done:
		return r.e, r.err
	case <-time.After(timeout):
		st.Close()
		<-done
		return SSEEvent{}, fmt.Errorf("no event within %v", timeout)
	}
}
