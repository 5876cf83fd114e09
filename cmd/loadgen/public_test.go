package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

func TestChangeNumber(t *testing.T) {
	marker := []byte("loadgen public 0000abcd change ")
	for data, want := range map[string]int64{
		`{"title":"loadgen public 0000abcd change 0"}`:        0,
		`{"title":"loadgen public 0000abcd change 17","x":1}`: 17,
		`{"title":"loadgen public 0000abcd change "}`:         -1,
		`{"title":"loadgen public 0000ffff change 3"}`:        -1, // another run
		`{"openIncidents":[]}`:                                -1,
		`x loadgen public 0000abcd change 1234567890123 tail`: 123456789, // bounded to 9 digits
	} {
		if got := changeNumber([]byte(data), marker); got != want {
			t.Errorf("changeNumber(%s) = %d, want %d", data, got, want)
		}
	}
}

func TestIsWS(t *testing.T) {
	for _, tt := range []struct {
		n     int
		share float64
		want  string
	}{
		{4, 0.5, "sWsW"},
		{5, 0, "sssss"},
		{3, 1, "WWW"},
		{8, 0.25, "sssWsssW"},
	} {
		var b strings.Builder
		for i := range tt.n {
			if isWS(i, tt.share) {
				b.WriteByte('W')
			} else {
				b.WriteByte('s')
			}
		}
		if b.String() != tt.want {
			t.Errorf("%d viewers at %g: %s, want %s", tt.n, tt.share, b.String(), tt.want)
		}
	}
}

func TestSourceAddr(t *testing.T) {
	for i, want := range map[int]string{0: "127.0.0.2", 249: "127.0.0.251", 250: "127.0.1.2", 449: "127.0.1.201"} {
		if got := sourceAddr(i).String(); got != want {
			t.Errorf("sourceAddr(%d) = %s, want %s", i, got, want)
		}
	}
	for host, want := range map[string]bool{"127.0.0.1": true, "localhost": true, "127.9.9.9": true,
		"::1": false, "10.0.0.1": false, "example.com": false} {
		if got := spreadable(host); got != want {
			t.Errorf("spreadable(%q) = %v", host, got)
		}
	}
}

func TestNextSSE(t *testing.T) {
	long := strings.Repeat("x", 3*sseBuffer)
	stream := "retry: 3000\n\n" +
		": keep-alive\n\n" +
		"id: v1\nevent: status\ndata: {\"a\":1}\n\n" +
		"id: v2\r\nevent: status\r\ndata: {\"long\":\"" + long + "\"}\r\n\r\n" +
		"event: status\ndata: one\ndata: two\n\n" +
		"event: other\ndata: ?\n\n" +
		"event: end\ndata: {\"reason\":\"unpublished\"}\n\n"
	v := &viewer{sse: bufio.NewReaderSize(strings.NewReader(stream), sseBuffer)}
	for _, want := range []string{`{"a":1}`, `{"long":"` + long + `"}`, "one\ntwo"} {
		got, err := v.nextSSE()
		if err != nil || string(got) != want {
			t.Fatalf("nextSSE = %.40q, %v; want %.40q", got, err, want)
		}
	}
	if _, err := v.nextSSE(); err == nil || !strings.Contains(err.Error(), "unpublished") {
		t.Errorf("end event: %v", err)
	}
	if v.bad != 1 {
		t.Errorf("%d bad events, want the one of another kind", v.bad)
	}
}

func TestPublicFlags(t *testing.T) {
	base := []string{"-url", "http://127.0.0.1:1", "-key", "k"}
	for _, bad := range [][]string{
		{"-public"},
		{"-public", "-tenant", "t", "-viewers", "0"},
		{"-public", "-tenant", "t", "-ws-share", "1.5"},
		{"-public", "-tenant", "t", "-per-address", "-1"},
		{"-public", "-tenant", "t", "-mutation-rate", "0"},
		{"-public", "-tenant", "t", "-fanout"},
	} {
		if code := run(append(base, bad...), &bytes.Buffer{}, &bytes.Buffer{}); code != 2 {
			t.Errorf("%v: exit %d, want 2", bad, code)
		}
	}
}

// startPublic serves a real incidentd on SQLite whose public viewers are
// capped at maxPerIP per client address, and returns it with a tenant and
// a key able to publish it and change its incidents.
func startPublic(t *testing.T, maxPerIP int) (*apitest.Server, string, string) {
	shortFanout(t)
	srv := apitest.Start(t, apitest.Backends(t)[0], apitest.Config{Public: live.PublicOptions{MaxPerIP: maxPerIP}})
	tenant := apitest.Tenant("public")
	key := srv.Key(tenant, model.ScopeIncidentsRead, model.ScopeIncidentsWrite, model.ScopeComponentsWrite)
	return srv, tenant, key
}

func runPublicJSON(t *testing.T, args ...string) (int, publicResult, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := run(args, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	var r publicResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output is not one JSON object: %v", err)
	}
	return code, r, stderr.String()
}

func TestPublicEndToEnd(t *testing.T) {
	srv, tenant, key := startPublic(t, 3)
	args := []string{"-url", srv.URL, "-key", key, "-public", "-tenant", tenant, "-viewers", "8", "-ws-share", "0.5",
		"-per-address", "3", "-sub-batch", "4", "-mutation-rate", "20", "-requests", "5", "-json"}
	if _, err := os.Stat("/proc/self/status"); err == nil {
		args = append(args, "-server-pid", strconv.Itoa(os.Getpid())) // the server runs in this process
	}
	code, r, _ := runPublicJSON(t, args...)
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	// 8 viewers, 3 per address: 3 addresses, each under the server's cap of 3.
	if r.Mode != "public" || r.Tenant != tenant || r.Viewers != 8 || r.SSEViewers != 4 || r.WSViewers != 4 ||
		r.Addresses != 3 || r.PerAddress != 3 || r.Open != 8 || r.Failed != 0 {
		t.Errorf("viewers: %+v", r)
	}
	if r.Changes != 5 || r.ChangeErrors != 0 || r.WriteP50 <= 0 || r.WriteP50 > r.WriteP99 {
		t.Errorf("changes: %d (errors %d), write p50 %v p99 %v", r.Changes, r.ChangeErrors, r.WriteP50, r.WriteP99)
	}
	// Every viewer reaches the latest state; each change is either
	// delivered or superseded, never repeated or out of order.
	if r.LatestExpected != 8 || r.LatestReached != 8 || r.States+r.Skipped != int64(r.Changes)*8 || r.States < 8 {
		t.Errorf("deliveries: latest %d of %d, %d delivered + %d skipped, %d changes",
			r.LatestReached, r.LatestExpected, r.States, r.Skipped, r.Changes)
	}
	if r.Repeated != 0 || r.OutOfOrder != 0 || r.Unmatched != 0 || r.Unmarked != 0 || r.BadMessages != 0 || r.Dropped != 0 {
		t.Errorf("anomalies: %+v", r)
	}
	if r.LatencyP50 > r.LatencyP99 || r.LatencyP99 > r.LatencyMax || r.LatencyMax <= 0 ||
		r.SSELatencyP99 <= 0 || r.WSLatencyP99 <= 0 || r.AnswerP50 > r.AnswerP99 {
		t.Errorf("latencies: %+v", r)
	}
	if r.SSEStateBytes <= 0 || r.WSStateBytes <= 0 {
		t.Errorf("state sizes: SSE %d, WebSocket %d", r.SSEStateBytes, r.WSStateBytes)
	}
	if slicesContain(args, "-server-pid") && (r.ServerRSSBeforeKiB == nil || r.ServerRSSViewersKiB == nil ||
		r.ServerRSSAfterKiB == nil || r.RSSPerViewerBytes == nil) {
		t.Errorf("RSS not reported: %+v", r)
	}

	// The tenant stays published; the run's incident carries the last
	// change and is resolved; every viewer was let go.
	srv.Do("GET", "/v1/public/"+tenant+"/status", "", nil).Expect(t, 200)
	var list struct {
		Data []struct {
			Title  string `json:"title"`
			Status string `json:"status"`
		} `json:"data"`
	}
	srv.Do("GET", "/v1/incidents", key, nil).Expect(t, 200).JSON(t, &list)
	if len(list.Data) != 1 || !strings.HasSuffix(list.Data[0].Title, " change 5") || list.Data[0].Status != "resolved" {
		t.Errorf("incidents after the run: %+v", list.Data)
	}
	for deadline := time.Now().Add(5 * time.Second); srv.App.Public.Count() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d public viewers still open on the server", srv.App.Public.Count())
		}
	}
}

// From one address the server's cap per address holds: the viewers beyond
// it fail, and the run goes on with the others.
func TestPublicOneAddress(t *testing.T) {
	srv, tenant, key := startPublic(t, 3)
	code, r, _ := runPublicJSON(t, "-url", srv.URL, "-key", key, "-public", "-tenant", tenant, "-viewers", "5",
		"-per-address", "0", "-sub-batch", "5", "-mutation-rate", "50", "-requests", "2", "-json")
	if code != 0 || r.Addresses != 0 || r.Open != 3 || r.Failed != 2 || r.LatestReached != 3 || r.Changes != 2 {
		t.Errorf("exit %d: %+v", code, r)
	}
	if len(r.Failures) == 0 || !strings.Contains(strings.Join(r.Failures, "\n"), "too many open public streams") {
		t.Errorf("failures %q, want the server's cap", r.Failures)
	}
}

// A key of another tenant cannot make -tenant's status show its incident.
func TestPublicWrongTenant(t *testing.T) {
	srv, tenant, key := startPublic(t, 3)
	other := apitest.Tenant("other")
	srv.Do("PUT", "/v1/status/publication", srv.Key(other, model.ScopeComponentsWrite), map[string]any{"public": true}).Expect(t, 204)
	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", key, "-public", "-tenant", other, "-viewers", "1", "-requests", "1"}, &stdout, &stderr)
	if code != 1 || !strings.Contains(stderr.String(), "does not show incident") {
		t.Errorf("exit %d, stderr:\n%s", code, stderr.String())
	}
	_ = tenant
}
