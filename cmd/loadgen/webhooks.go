package main

// -webhooks: outgoing webhook delivery. loadgen starts local receivers
// (httptest servers in this process): all healthy but one slow and one
// failing; registers one endpoint per receiver (incident.created) for the
// tenant of -key; creates incidents at -mutation-rate for -duration (or
// -requests of them); and measures, per receiver class, the time from the
// incident's createdAt (the server's clock, from the message's
// data.createdAt) to the message's arrival at the receiver. With -key2 (a
// tenant without endpoints) it first creates incidents there at the same
// rate, for the create latency without webhooks. The server must admit
// private targets (INCIDENTD_WEBHOOK_ALLOW_PRIVATE_TARGETS=true): the
// receivers listen on 127.0.0.1 over plain http.

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"time"
)

const (
	classHealthy = "healthy"
	classSlow    = "slow"
	classFailing = "failing"

	slowDelay       = 2 * time.Second  // the slow receiver's wait before its 200
	webhookDrain    = 60 * time.Second // longest wait for the healthy receivers after the creations
	webhookProgress = 5 * time.Second
)

// receiver is one local webhook target.
type receiver struct {
	class    string
	srv      *httptest.Server
	endpoint string // the endpoint's id on the server
	stop     <-chan struct{}

	mu        sync.Mutex
	messages  map[string]bool // webhook-id seen
	incidents map[string]int  // incident id: messages received for it
	first     []time.Duration // createdAt to arrival, first arrival of each message
	attempts  int             // requests received, retries included
	bad       int             // requests that were not a readable incident.created
}

// webhookMessage is the part of a delivered message loadgen reads.
type webhookMessage struct {
	Type string `json:"type"`
	Data struct {
		ID        string `json:"id"`
		CreatedAt string `json:"createdAt"`
	} `json:"data"`
}

func newReceiver(class string, stop <-chan struct{}) *receiver {
	r := &receiver{class: class, stop: stop, messages: map[string]bool{}, incidents: map[string]int{}}
	r.srv = httptest.NewServer(http.HandlerFunc(r.serve))
	return r
}

func (r *receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, err := io.ReadAll(req.Body)
	arrived := time.Now()
	r.record(req.Header.Get("webhook-id"), body, err, arrived)
	switch r.class {
	case classFailing:
		w.WriteHeader(http.StatusInternalServerError)
		return
	case classSlow:
		t := time.NewTimer(slowDelay)
		defer t.Stop()
		select {
		case <-t.C:
		case <-r.stop:
		case <-req.Context().Done():
		}
	}
	w.WriteHeader(http.StatusOK)
}

// record counts one request; only the first arrival of a message (its
// first attempt) counts towards the latency and the incidents received.
func (r *receiver) record(id string, body []byte, readErr error, arrived time.Time) {
	var m webhookMessage
	created, perr := time.Time{}, readErr
	if perr == nil {
		perr = json.Unmarshal(body, &m)
	}
	if perr == nil {
		created, perr = time.Parse(time.RFC3339Nano, m.Data.CreatedAt)
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.attempts++
	switch {
	case perr != nil || id == "" || m.Type != "incident.created" || m.Data.ID == "":
		r.bad++
	case r.messages[id]:
		// a retry (failing) or a redelivery: not a new message
	default:
		r.messages[id] = true
		r.incidents[m.Data.ID]++
		r.first = append(r.first, arrived.Sub(created))
	}
}

// missing counts the ids this receiver has not received yet.
func (r *receiver) missing(ids []string) int {
	r.mu.Lock()
	defer r.mu.Unlock()
	n := 0
	for _, id := range ids {
		if r.incidents[id] == 0 {
			n++
		}
	}
	return n
}

// webhookClass is one output row: the receivers of a class together.
type webhookClass struct {
	Class     string  `json:"class"`
	Receivers int     `json:"receivers"`
	Expected  int     `json:"expected"`  // messages: creations × receivers
	Received  int     `json:"received"`  // distinct messages of this run's incidents
	Missing   int     `json:"missing"`   // expected − received
	Attempts  int     `json:"attempts"`  // requests, retries included
	Unmatched int     `json:"unmatched"` // messages of incidents this run did not create
	Repeated  int     `json:"repeated"`  // incidents received in more than one message
	Bad       int     `json:"bad"`       // unreadable requests
	P50       float64 `json:"p50Ms"`     // createdAt to first arrival
	P99       float64 `json:"p99Ms"`
	Max       float64 `json:"maxMs"`
}

type webhooksResult struct {
	Mode         string         `json:"mode"`
	Rate         float64        `json:"mutationRate"`
	Creates      result         `json:"creates"`            // POST /v1/incidents with the endpoints registered
	Baseline     *result        `json:"baseline,omitempty"` // the same on -key2's tenant, without endpoints
	DrainSeconds float64        `json:"drainSeconds"`       // after the last creation, until the healthy receivers had everything
	Classes      []webhookClass `json:"classes"`
}

func receiverClasses(n int, allHealthy bool) []string {
	out := make([]string, 0, n)
	if allHealthy {
		for range n {
			out = append(out, classHealthy)
		}
		return out
	}
	for range n - 2 {
		out = append(out, classHealthy)
	}
	return append(out, classSlow, classFailing)
}

// runWebhooks is the -webhooks mode.
func (lg *loadgen) runWebhooks(ctx context.Context) error {
	if _, err := lg.c.preflight(ctx); err != nil {
		return err
	}
	if n, err := lg.countEndpoints(ctx, ""); err == nil && n > 0 {
		lg.logf("webhooks: the tenant of -key already has %d endpoints: they receive these incidents too", n)
	}
	res := webhooksResult{Mode: "webhooks", Rate: lg.cfg.mutationRate}
	if lg.cfg.key2 != "" {
		if n, err := lg.countEndpoints(ctx, lg.cfg.key2); err == nil && n > 0 {
			lg.logf("webhooks: the tenant of -key2 has %d endpoints: the baseline is not one without webhooks", n)
		}
		lg.logf("webhooks: baseline: creating %.0f incidents/s %s on the tenant of -key2 (no endpoints)", lg.cfg.mutationRate, lg.cfg.describe())
		st, window, _ := lg.creations(ctx, "wh-baseline", lg.cfg.key2)
		if ctx.Err() != nil {
			return ctx.Err()
		}
		b := summarize("wh-baseline", 0, st, window)
		res.Baseline = &b
	}

	stop := make(chan struct{})
	var receivers []*receiver
	defer func() {
		close(stop) // the slow receiver answers at once
		for _, r := range receivers {
			if r.endpoint != "" {
				lg.deleteEndpoint(r.endpoint)
			}
			r.srv.Close()
		}
	}()
	for i, class := range receiverClasses(lg.cfg.receivers, lg.cfg.allHealthy) {
		r := newReceiver(class, stop)
		receivers = append(receivers, r)
		id, err := lg.registerEndpoint(ctx, r.srv.URL+"/"+class+"/"+strconv.Itoa(i), "loadgen "+class+" receiver "+strconv.Itoa(i))
		if err != nil {
			return err
		}
		r.endpoint = id
	}
	if lg.cfg.allHealthy {
		lg.logf("webhooks: %d receivers registered, all healthy; creating %.0f incidents/s %s",
			len(receivers), lg.cfg.mutationRate, lg.cfg.describe())
	} else {
		lg.logf("webhooks: %d receivers registered (%d healthy, 1 slow: %s, 1 failing: 500); creating %.0f incidents/s %s",
			len(receivers), len(receivers)-2, slowDelay, lg.cfg.mutationRate, lg.cfg.describe())
	}

	done := make(chan struct{})
	go func() {
		t := time.NewTicker(webhookProgress)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				got := 0
				for _, r := range receivers {
					r.mu.Lock()
					got += len(r.messages)
					r.mu.Unlock()
				}
				lg.logf("webhooks: %d messages received so far", got)
			}
		}
	}()
	st, window, ids := lg.creations(ctx, "wh-creates", "")
	close(done)
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.Creates = summarize("wh-creates", 0, st, window)

	// The healthy receivers must get every incident; wait for them.
	drainStart := time.Now()
	for ctx.Err() == nil && time.Since(drainStart) < webhookDrain {
		short := 0
		for _, r := range receivers {
			if r.class == classHealthy {
				short += r.missing(ids)
			}
		}
		if short == 0 {
			break
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	res.DrainSeconds = time.Since(drainStart).Seconds()
	res.Classes = tallyWebhooks(receivers, ids)
	lg.printWebhooks(res)
	for _, c := range res.Classes {
		if c.Class == classHealthy && c.Missing > 0 {
			return fmt.Errorf("the healthy receivers missed %d of %d messages after %s", c.Missing, c.Expected, webhookDrain)
		}
	}
	return nil
}

// creations creates -mutation-rate incidents per second for -duration (or
// -requests of them) with key ("": -key), and returns the POSTs' stats,
// the wall time and the ids created.
func (lg *loadgen) creations(ctx context.Context, name, key string) (stats, time.Duration, []string) {
	rate := lg.cfg.mutationRate
	now := time.Now()
	var ids []string
	rows, window := lg.attack(ctx, phase{name: name, jobs: lg.cfg.requests, duration: lg.cfg.duration, keep: -1,
		workers: min(max(4, int(math.Ceil(rate))), 64), every: max(time.Duration(float64(time.Second)/rate), time.Microsecond),
		gen: func(rng *rand.Rand, _ int) request {
			r := postRequest(newIncident(rng, now, postAge))
			r.key = key
			return r
		},
		judge: judgeCreated(func(id string) { ids = append(ids, id) })})
	if want := rate * window.Seconds(); ctx.Err() == nil && lg.cfg.requests == 0 && float64(rows[0].requests) < 0.95*want {
		lg.logf("%s: sent only %d of %.0f creations: the workers could not keep up with the POST latency", name, rows[0].requests, want)
	}
	return rows[0], window, ids
}

// tallyWebhooks sums the receivers up by class, in the order healthy,
// slow, failing.
func tallyWebhooks(receivers []*receiver, ids []string) []webhookClass {
	created := make(map[string]bool, len(ids))
	for _, id := range ids {
		created[id] = true
	}
	var out []webhookClass
	for _, class := range []string{classHealthy, classSlow, classFailing} {
		c := webhookClass{Class: class}
		var lat []time.Duration
		for _, r := range receivers {
			if r.class != class {
				continue
			}
			r.mu.Lock()
			c.Receivers++
			c.Attempts += r.attempts
			c.Bad += r.bad
			lat = append(lat, r.first...)
			for id, n := range r.incidents {
				switch {
				case !created[id]:
					c.Unmatched += n
				default:
					c.Received++
					if n > 1 {
						c.Repeated++
					}
				}
			}
			r.mu.Unlock()
		}
		if c.Receivers == 0 {
			continue
		}
		c.Expected = len(ids) * c.Receivers
		c.Missing = c.Expected - c.Received
		slices.Sort(lat)
		c.P50, c.P99, c.Max = ms(percentile(lat, 50)), ms(percentile(lat, 99)), ms(percentile(lat, 100))
		out = append(out, c)
	}
	return out
}

// registerEndpoint creates an endpoint for incident.created and returns its id.
func (lg *loadgen) registerEndpoint(ctx context.Context, target, description string) (string, error) {
	r := request{method: http.MethodPost, path: "/v1/webhooks",
		body: mustJSON(map[string]any{"url": target, "description": description, "events": []string{"incident.created"}})}
	status, body, err := lg.c.do(ctx, r)
	switch {
	case err != nil:
		return "", fmt.Errorf("%s: %w", r, err)
	case status == http.StatusBadRequest || status == http.StatusUnprocessableEntity:
		return "", fmt.Errorf("%s: HTTP %d: %s (does the server run with INCIDENTD_WEBHOOK_ALLOW_PRIVATE_TARGETS=true?)", r, status, preview(body))
	case status == http.StatusForbidden:
		return "", fmt.Errorf("%s: HTTP 403: the key needs the scope webhooks:admin: %s", r, preview(body))
	case !is2xx(status):
		return "", fmt.Errorf("%s: HTTP %d: %s", r, status, preview(body))
	}
	var ep struct {
		ID     string `json:"id"`
		Secret string `json:"secret"`
	}
	if err := json.Unmarshal(body, &ep); err != nil || ep.ID == "" || ep.Secret == "" {
		return "", fmt.Errorf("%s: an answer without id or secret: %s", r, preview(body))
	}
	return ep.ID, nil
}

// deleteEndpoint removes an endpoint of the run, even once ctx has ended.
func (lg *loadgen) deleteEndpoint(id string) {
	ctx, cancel := context.WithTimeout(context.Background(), lg.cfg.timeout)
	defer cancel()
	status, body, err := lg.c.do(ctx, request{method: http.MethodDelete, path: "/v1/webhooks/" + id})
	if err != nil || !is2xx(status) {
		lg.logf("webhooks: deleting endpoint %s: HTTP %d %v %s", id, status, err, preview(body))
	}
}

// countEndpoints counts the endpoints of the tenant of key ("": -key).
func (lg *loadgen) countEndpoints(ctx context.Context, key string) (int, error) {
	status, body, err := lg.c.do(ctx, request{method: http.MethodGet, path: "/v1/webhooks", key: key})
	if err != nil {
		return 0, err
	}
	if !is2xx(status) {
		return 0, errors.New("HTTP " + strconv.Itoa(status))
	}
	var list struct {
		Data []json.RawMessage `json:"data"`
	}
	if err := json.Unmarshal(body, &list); err != nil {
		return 0, err
	}
	return len(list.Data), nil
}

func (lg *loadgen) printWebhooks(r webhooksResult) {
	w := lg.out.w
	if lg.cfg.jsonOut {
		fmt.Fprintf(w, "%s\n", mustJSON(r))
		return
	}
	if r.Baseline != nil {
		lg.out.print(*r.Baseline)
	}
	lg.out.print(r.Creates)
	fmt.Fprintf(w, "\nwebhook delivery at %.0f creations/s (createdAt to arrival; slow and failing: first attempts), drained in %.1f s\n",
		r.Rate, r.DrainSeconds)
	format := "%-8s %9s %9s %9s %8s %9s %9s %9s %9s\n"
	fmt.Fprintf(w, format, "class", "receivers", "expected", "received", "missing", "attempts", "p50(ms)", "p99(ms)", "max(ms)")
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	for _, c := range r.Classes {
		fmt.Fprintf(w, format, c.Class, strconv.Itoa(c.Receivers), strconv.Itoa(c.Expected), strconv.Itoa(c.Received),
			strconv.Itoa(c.Missing), strconv.Itoa(c.Attempts), f2(c.P50), f2(c.P99), f2(c.Max))
		var odd []string
		for _, n := range []struct {
			what string
			n    int
		}{{"unmatched", c.Unmatched}, {"repeated", c.Repeated}, {"unreadable", c.Bad}} {
			if n.n > 0 {
				odd = append(odd, n.what+" "+strconv.Itoa(n.n))
			}
		}
		if len(odd) > 0 {
			fmt.Fprintf(w, "  %s: %s\n", c.Class, strings.Join(odd, ", "))
		}
	}
}
