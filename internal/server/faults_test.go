package server_test

import (
	"encoding/json"
	"fmt"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/internal/testsvc"
	"github.com/incidentd/incidentd/model"
)

const faultSub = `subscription { incidentChanged { id type incident { id } } }`

// TestDatabaseRestart restarts the server's PostgreSQL (a cluster of the
// test's own) under a write load: every write the server acknowledged is
// there afterwards and reaches a subscription opened before the outage,
// once; requests during the outage fail fast with 503 problem+json (never
// a 500, never a hang), /readyz says so, and the server recovers without
// being restarted. It logs the recovery times.
func TestDatabaseRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a PostgreSQL cluster")
	}
	for _, mode := range []string{"fast", "immediate"} {
		t.Run(mode, func(t *testing.T) { databaseRestart(t, mode) })
	}
}

func databaseRestart(t *testing.T, mode string) {
	pg := testsvc.StartPostgres(t)
	s := apitest.Start(t, apitest.Backend{Name: "own-postgres", URL: func(testing.TB) string { return pg.URL() }}, apitest.Config{})
	ten := apitest.Tenant("restart")
	key := s.Key(ten, model.ScopeIncidentsWrite)

	c, _, err := s.DialWS(apitest.TransportWS, map[string]any{"X-API-Key": key})
	if err != nil {
		t.Fatal(err)
	}
	c.Use(t)
	c.Subscribe("all", faultSub, nil)
	s.WaitSubscriptions(1)

	// The load: writers creating incidents until told to stop (apitest's
	// requests have a deadline, so one that waits forever fails the test).
	post := func(title string) (int, string, error) {
		res, err := s.Try(http.MethodPost, "/v1/incidents", key, map[string]any{"title": title, "severity": "high", "occurredAt": "2026-01-01T00:00:00Z"})
		if err != nil {
			return 0, "", err
		}
		switch res.Status {
		case http.StatusCreated:
			var inc struct{ ID string }
			if err := json.Unmarshal(res.Body, &inc); err != nil || inc.ID == "" {
				return 0, "", fmt.Errorf("created: %s %v", res.Body, err)
			}
			return res.Status, inc.ID, nil
		case http.StatusServiceUnavailable:
			var p struct {
				Error string
			}
			if err := json.Unmarshal(res.Body, &p); err != nil || p.Error != "ServiceUnavailable" || res.Header.Get("Retry-After") == "" ||
				res.Header.Get("Content-Type") != "application/problem+json" {
				return 0, "", fmt.Errorf("503 without its problem: %v %s", res.Header, res.Body)
			}
			return res.Status, "", nil
		}
		return 0, "", fmt.Errorf("POST answered %d: %s", res.Status, res.Body)
	}

	var (
		mu        sync.Mutex
		acked     []string
		refused   int
		failures  []error
		firstBack time.Time
		restarted time.Time
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				status, id, err := post(fmt.Sprintf("w%d-%d", w, i))
				mu.Lock()
				switch {
				case err != nil:
					failures = append(failures, err)
				case status == http.StatusCreated:
					acked = append(acked, id)
					if !restarted.IsZero() && firstBack.IsZero() {
						firstBack = time.Now()
					}
				default:
					refused++
				}
				mu.Unlock()
				if err != nil || status != http.StatusCreated {
					time.Sleep(20 * time.Millisecond) // as a client backing off would
				}
			}
		})
	}
	count := func() (int, int) { mu.Lock(); defer mu.Unlock(); return len(acked), refused }
	waitFor := func(what string, ok func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !ok(); time.Sleep(10 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("waited a minute for %s", what)
			}
		}
	}
	ready := func() int {
		res, err := s.Try(http.MethodGet, "/readyz", "", nil)
		if err != nil {
			if res == nil {
				t.Fatal(err)
			}
			t.Error(err)
		}
		return res.Status
	}

	waitFor("50 writes before the outage", func() bool { n, _ := count(); return n >= 50 })
	pg.Stop(mode)
	stopped := time.Now()
	if st := ready(); st != http.StatusServiceUnavailable {
		t.Errorf("/readyz with the database down: %d", st)
	}
	_, before := count()
	waitFor("writes refused during the outage", func() bool { _, r := count(); return r >= before+5 })
	outage := time.Since(stopped)

	pg.Start()
	mu.Lock()
	restarted = time.Now()
	mu.Unlock()
	waitFor("/readyz after the restart", func() bool { return ready() == http.StatusOK })
	readyAfter := time.Since(restarted)
	n, _ := count()
	waitFor("writes after the restart", func() bool { m, _ := count(); return m >= n+50 })
	close(stop)
	wg.Wait()
	mu.Lock()
	writeAfter := firstBack.Sub(restarted)
	mu.Unlock()
	for _, err := range failures {
		t.Error(err)
	}
	t.Logf("%s stop: %d writes acknowledged, %d refused with 503 while down (the first within %v of the stop); after the start returned: /readyz ready in %v, first write in %v",
		mode, len(acked), refused, outage.Round(time.Millisecond), readyAfter.Round(time.Millisecond), writeAfter.Round(time.Millisecond))

	// Every acknowledged write is there.
	for _, id := range acked {
		if res := s.Do(http.MethodGet, "/v1/incidents/"+id, key, nil); res.Status != http.StatusOK {
			t.Errorf("acknowledged %s: %d after the restart", id, res.Status)
		}
	}
	// And reached the subscription opened before the outage, once each (the
	// listener and the watcher recovered by themselves).
	want := map[string]bool{}
	for _, id := range acked {
		want[id] = true
	}
	seen := map[string]int{}
	for len(want) > 0 {
		m, err := c.Next(30 * time.Second)
		if err != nil {
			t.Fatalf("subscription, %d acknowledged writes not delivered: %v", len(want), err)
		}
		if m.Type != "next" || m.ID != "all" {
			t.Fatalf("subscription message %+v", m)
		}
		var p struct {
			Data struct {
				IncidentChanged struct{ Incident struct{ ID string } }
			}
		}
		if err := json.Unmarshal(m.Payload, &p); err != nil {
			t.Fatal(err)
		}
		id := p.Data.IncidentChanged.Incident.ID
		if seen[id]++; seen[id] > 1 {
			t.Errorf("%s delivered twice", id)
		}
		delete(want, id)
	}
	c.Stop("all")
	s.WaitSubscriptions(0)
}
