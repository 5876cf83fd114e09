package main

import (
	"bytes"
	"context"
	"encoding/json"
	"hash/fnv"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

func TestParseMessage(t *testing.T) {
	recv := time.Date(2026, 3, 1, 10, 0, 0, 2_500_000, time.UTC) // 2.5 ms past the second
	next := `{"id":"1","type":"next","payload":{"data":{"incidentChanged":{"id":"42","type":"CREATED",` +
		`"at":"2026-03-01T10:00:00.001000Z","incident":{"id":"inc_abc"}}}}}`
	typ, ev, err := parseMessage([]byte(next), recv)
	if err != nil || typ != "next" || ev.incident != idHash("inc_abc") || ev.latency != 1500*time.Microsecond {
		t.Errorf("parseMessage = %q, %+v, %v; want next of inc_abc after 1.5ms", typ, ev, err)
	}
	// Other offsets denote the same instant; field order does not matter.
	other := `{"payload":{"data":{"incidentChanged":{"incident":{"id":"inc_abc"},"at":"2026-03-01T11:00:00.001+01:00"}}},"type":"next","id":"1"}`
	if _, ev, err := parseMessage([]byte(other), recv); err != nil || ev.latency != 1500*time.Microsecond {
		t.Errorf("offset: %+v, %v", ev, err)
	}

	for msg, want := range map[string]string{
		`{"type":"ping"}`:                                       "ping",
		`{"type":"ping","payload":{"at":1}}`:                    "ping",
		`{"type":"connection_ack","payload":{}}`:                "connection_ack",
		`{"id":"1","type":"complete"}`:                          "complete",
		`{"id":"1","type":"error","payload":[{"message":"x"}]}`: "error",
	} {
		if typ, _, err := parseMessage([]byte(msg), recv); err != nil || typ != want {
			t.Errorf("parseMessage(%s) = %q, %v; want %q", msg, typ, err, want)
		}
	}

	for name, bad := range map[string]string{
		"errors":      `{"type":"next","payload":{"data":null,"errors":[{"message":"nope"}]}}`,
		"no data":     `{"type":"next","payload":{}}`,
		"no event":    `{"type":"next","payload":{"data":{}}}`,
		"no incident": `{"type":"next","payload":{"data":{"incidentChanged":{"at":"2026-03-01T10:00:00Z","incident":{}}}}}`,
		"bad at":      `{"type":"next","payload":{"data":{"incidentChanged":{"at":"yesterday","incident":{"id":"inc_a"}}}}}`,
		"mistyped":    `{"type":"next","payload":{"data":{"incidentChanged":[]}}}`,
		"not JSON":    `{"type":"next","payload":`,
		"no type":     `[1]`,
	} {
		if _, _, err := parseMessage([]byte(bad), recv); err == nil {
			t.Errorf("%s: parseMessage accepted %s", name, bad)
		}
	}
}

func TestGraphQLError(t *testing.T) {
	tests := []struct {
		body string
		want string // "" for a success, else a substring of the reason
	}{
		{`{"data":{"incident":{"id":"inc_1"}}}`, ""},
		{`{"data":{"incident":null}}`, ""},
		{`{"data":{"incident":{"id":"x"}},"errors":[]}`, ""},
		{`{"data":{"incident":{"id":"x"}},"errors":null}`, ""},
		{`{"data":{"incidents":{"nodes":[{"title":"errors \"errors\" errors"}]}}}`, ""},
		{`{"errors":[{"message":"boom"}],"data":null}`, `"boom"`},
		{`{"errors":[{"message":"a"},{"message":"b"}]}`, `"a" (and 1 more)`},
		{`{"data":{"incident":{"tags":["errors"]}},"errors":[{"message":"partial"}]}`, `"partial"`},
		{``, "neither data nor errors"},
		{`<html>`, "neither data nor errors"},
		{`{"errors": oops`, "undecodable"},
	}
	for _, tt := range tests {
		got := graphQLError([]byte(tt.body))
		if (tt.want == "") != (got == "") || !strings.Contains(got, tt.want) {
			t.Errorf("graphQLError(%s) = %q, want %q", tt.body, got, tt.want)
		}
	}
}

func TestCostRatios(t *testing.T) {
	res := map[string]result{
		"get": {Throughput: 1000}, "gql-get": {Throughput: 800},
		"list": {Throughput: 500}, "gql-list": {Throughput: 0},
		"keyword": {Throughput: 10},
	}
	if got, want := formatRatios(costRatios(res)), "graphql/rest cost ratio: get 1.25x, list n/a"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	delete(res, "get")
	res["gql-list"] = result{Throughput: 1000}
	if got, want := formatRatios(costRatios(res)), "graphql/rest cost ratio: list 0.50x"; got != want {
		t.Errorf("got %q, want %q", got, want)
	}
	if got := formatRatios(costRatios(map[string]result{"get": {Throughput: 1}})); got != "" {
		t.Errorf("no twins: got %q", got)
	}

	var buf bytes.Buffer
	(&printer{w: &buf, json: true}).printRatios([]ratio{{"get", 1.25, true}, {"list", 0, false}})
	if got, want := strings.TrimSpace(buf.String()), `{"graphqlRestCostRatio":{"get":1.25,"list":null}}`; got != want {
		t.Errorf("JSON ratios %s, want %s", got, want)
	}
}

func TestParseVmRSS(t *testing.T) {
	status := "Name:\tincidentd\nVmPeak:\t  999 kB\nVmRSS:\t   52340 kB\nRssAnon:\t 1 kB\n"
	if kib, err := parseVmRSS(strings.NewReader(status)); err != nil || kib != 52340 {
		t.Errorf("parseVmRSS = %d, %v; want 52340", kib, err)
	}
	if _, err := parseVmRSS(strings.NewReader("Name:\tkthreadd\n")); err == nil {
		t.Error("status without VmRSS accepted")
	}
	if _, err := parseVmRSS(strings.NewReader("VmRSS:\t 12 MB\n")); err == nil {
		t.Error("unexpected unit accepted")
	}
}

func TestWSURLFor(t *testing.T) {
	for in, want := range map[string]string{
		"http://127.0.0.1:8080":    "ws://127.0.0.1:8080/graphql",
		"https://api.example/base": "wss://api.example/base/graphql",
	} {
		if got, err := wsURLFor(in); err != nil || got != want {
			t.Errorf("wsURLFor(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestIDHash(t *testing.T) {
	for _, s := range []string{"", "a", "inc_0123456789ab"} {
		h := fnv.New64a()
		h.Write([]byte(s))
		if got, want := idHash(s), h.Sum64(); got != want {
			t.Errorf("idHash(%q) = %x, want FNV-1a %x", s, got, want)
		}
	}
}

func TestTally(t *testing.T) {
	ids := []string{"inc_a", "inc_b", "inc_c"}
	sub := func(lat []float32, got ...string) *subscriber {
		s := &subscriber{lat: lat}
		for _, id := range got {
			s.hashes = append(s.hashes, idHash(id))
		}
		return s
	}
	full := sub([]float32{3, 1, 2}, "inc_c", "inc_a", "inc_b")
	short := sub([]float32{5, 9}, "inc_a", "inc_other") // misses b and c, one foreign event
	dup := sub([]float32{4, 4, 6, 7}, "inc_a", "inc_a", "inc_b", "inc_c")
	dropped := sub(nil)
	dropped.fail(os.ErrDeadlineExceeded)
	dropped.pings = 2

	d := tally([]*subscriber{full, short, dup, dropped}, ids)
	if d.expected != 12 || d.delivered != 7 || d.duplicates != 1 || d.other != 1 ||
		d.short != 2 || d.dropped != 1 || d.pings != 2 || len(d.drops) != 1 {
		t.Errorf("tally = %+v", d)
	}
	want := []float32{1, 2, 3, 4, 4, 5, 6, 7}
	if !slicesEqual(d.latencies, want) {
		t.Errorf("latencies %v, want %v", d.latencies, want)
	}
	if full.lat != nil || full.hashes != nil {
		t.Error("tally kept the per-subscriber samples")
	}
}

func slicesEqual[T comparable](a, b []T) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

// shortFanout shortens the fixed pauses of the fanout mode for a test.
func shortFanout(t *testing.T) {
	settle, drain := fanoutSettle, fanoutDrain
	// The drain only waits its full length for a subscriber that hears
	// nothing (the deaf one); the others end it as soon as they have all.
	fanoutSettle, fanoutDrain = 50*time.Millisecond, 3*time.Second
	t.Cleanup(func() { fanoutSettle, fanoutDrain = settle, drain })
}

func TestFanoutEndToEnd(t *testing.T) {
	shortFanout(t)
	fs := &fakeServer{}
	fs.ws.rejectFirst = 2 // two subscribers fail their connection_init
	fs.ws.deaf = 1        // one subscriber hears nothing
	srv := startFake(t, fs)

	args := []string{"-url", srv.URL, "-key", "secret", "-fanout", "-subscribers", "12", "-sub-batch", "5",
		"-mutation-rate", "200", "-requests", "15", "-json"}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		args = append(args, "-server-pid", strconv.Itoa(os.Getpid())) // the fake runs in this process
	}
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var r fanoutResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output is not one JSON object: %v", err)
	}
	m := int64(r.Mutations)
	// Each group is checked on its own, so that every failing one shows.
	if r.Mode != "fanout" || r.Subscribers != 12 || r.Subscribed != 10 || r.Failed != 2 || r.SubBatch != 5 {
		t.Errorf("subscribers: %+v", r)
	}
	if len(r.Failures) == 0 || !strings.Contains(r.Failures[0], "4403") {
		t.Errorf("failures %q, want the 4403 close", r.Failures)
	}
	if m != 15 || r.MutationErrors != 0 || len(fs.ids) != r.Mutations {
		t.Errorf("mutations %d (errors %d), server holds %d; want 15", m, r.MutationErrors, len(fs.ids))
	}
	if r.Expected != 10*m || r.Delivered != 9*m || r.Missing != m || r.SubscribersShort != 1 {
		t.Errorf("deliveries: expected %d delivered %d missing %d short %d, with %d mutations",
			r.Expected, r.Delivered, r.Missing, r.SubscribersShort, m)
	}
	if r.Duplicates != 0 || r.OtherEvents != 0 || r.BadMessages != 0 || r.Dropped != 0 {
		t.Errorf("anomalies: %+v", r)
	}
	if r.PingsAnswered != 20 {
		t.Errorf("pings answered %d, want 2 per subscriber", r.PingsAnswered)
	}
	if r.LatencyP50 <= 0 || r.LatencyP50 > r.LatencyP99 || r.LatencyP99 > r.LatencyMax {
		t.Errorf("latencies p50 %v p99 %v max %v", r.LatencyP50, r.LatencyP99, r.LatencyMax)
	}
	if r.PostP50 <= 0 || r.PostP50 > r.PostP99 {
		t.Errorf("POST latencies p50 %v p99 %v", r.PostP50, r.PostP99)
	}
	if slicesContain(args, "-server-pid") && (r.ServerRSSBeforeKiB == nil || r.ServerRSSAfterKiB == nil || r.RSSPerSubscriberKiB == nil) {
		t.Errorf("RSS not reported: %+v", r)
	}

	// Every live subscription was completed and closed with 1000, and the
	// server saw a pong for each of its pings.
	srv.Close()
	fs.ws.handled.Wait()
	fs.ws.mu.Lock()
	defer fs.ws.mu.Unlock()
	if fs.ws.closes["complete"] != 10 || fs.ws.closes["StatusNormalClosure"] != 10 || fs.ws.pongs != 20 {
		t.Errorf("server saw closes %v, pongs %d", fs.ws.closes, fs.ws.pongs)
	}
}

func slicesContain(s []string, v string) bool {
	for _, x := range s {
		if x == v {
			return true
		}
	}
	return false
}

func TestFanoutTable(t *testing.T) {
	shortFanout(t)
	srv := startFake(t, &fakeServer{})
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-fanout", "-subscribers", "3",
		"-mutation-rate", "100", "-requests", "8"}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	out := stdout.String()
	if code != 0 || !strings.Contains(out, "3 of 3 subscribed, 0 failed") || !strings.Contains(out, " 0 missing (0 subscribers short)") ||
		!strings.Contains(out, "latency (ms): p50 ") || strings.Contains(out, "server RSS") {
		t.Errorf("exit %d, unexpected table", code)
	}
}

func TestFanoutFailures(t *testing.T) {
	shortFanout(t)
	fs := &fakeServer{}
	fs.ws.rejectFirst = 100
	srv := startFake(t, fs)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", "secret", "-fanout", "-subscribers", "4",
		"-requests", "5"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "none of the 4 subscriptions succeeded") ||
		!strings.Contains(stdout.String(), "0 of 4 subscribed, 4 failed") || len(fs.ids) != 0 {
		t.Errorf("all rejected: exit %d, %d created\nstdout:\n%s\nstderr:\n%s", code, len(fs.ids), stdout.String(), stderr.String())
	}

	for _, bad := range [][]string{{"-subscribers", "0"}, {"-mutation-rate", "0"}, {"-sub-batch", "0"}, {"-server-pid", "-1"}} {
		args := append([]string{"-url", srv.URL, "-key", "secret", "-fanout"}, bad...)
		if code := run(args, &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
	// Fanout-only flags are not checked without -fanout.
	if err := (&config{baseURL: srv.URL, key: "k", conns: 1, duration: 1, timeout: 1}).validate(); err != nil {
		t.Errorf("plain config: %v", err)
	}
}

// Cancelling while connections wait for their turn must fail them all,
// close what was opened and return.
func TestFanoutRampUpCancelled(t *testing.T) {
	fs := &fakeServer{}
	fs.ws.silent = true
	srv := startFake(t, fs)
	cfg := config{baseURL: srv.URL, key: "secret", conns: 1, duration: time.Second, timeout: time.Minute,
		fanout: true, subscribers: 6, mutationRate: 1, subBatch: 2}
	lg := newLoadgen(cfg, &bytes.Buffer{}, &bytes.Buffer{})
	f, err := newFanout(lg)
	if err != nil {
		t.Fatal(err)
	}
	// The fake never acknowledges: ramp-up can only end through the
	// cancellation.
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.rampUp(ctx)
	}()
	cancel()
	select {
	case <-done:
	case <-time.After(time.Minute):
		t.Fatal("ramp-up did not return after cancellation")
	}
	f.closeAll()
	for i, s := range f.subs {
		if s.failure() == nil || s.conn != nil {
			t.Errorf("subscriber %d: err %v, conn %v", i, s.failure(), s.conn)
		}
	}
}
