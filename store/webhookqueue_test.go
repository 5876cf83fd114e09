package store

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// deliverAll claims every due delivery of tenant's endpoint in runs of at
// most 3, records each run's outcomes as delivered in one call, and
// returns their bodies in order of claim.
func deliverAll(t *testing.T, s *Store, tenant, endpoint string) []string {
	t.Helper()
	var got []string
	for range 100 {
		runs, err := s.ClaimWebhookRuns(context.Background(), 1000, 3, time.Minute, tenant)
		if err != nil {
			t.Fatal(err)
		}
		mine := 0
		for _, r := range runs {
			if r.EndpointID == endpoint {
				var outs []WebhookOutcome
				for _, j := range r.Jobs {
					got = append(got, string(j.Payload))
					outs = append(outs, WebhookOutcome{j, WebhookAttempt{At: time.Now(), Status: 200, Delivered: true}})
				}
				mine += len(r.Jobs)
				ok, err := s.RecordWebhookAttempts(context.Background(), time.Minute, outs)
				if err != nil {
					t.Fatal(err)
				}
				for i := range ok {
					if !ok[i] {
						t.Fatalf("outcome %d of a run not recorded", i)
					}
				}
			}
			if err := s.EndWebhookRun(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		if mine == 0 {
			return got
		}
	}
	t.Fatal("deliveries never ran out")
	return nil
}

// Rule: an endpoint's deliveries are sent in runs, oldest first, by one
// worker at a time (its lease); a failure ends the run and holds the next
// back until the retry succeeds or the delivery is abandoned; a lost
// lease records nothing, and a lease that ran out lets another worker take
// the endpoint over; 410 disables the endpoint, and so does failing for
// longer than DisableAfter; RedeliverSince queues the failed ones again,
// in order.
func TestWebhookQueue(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten := tenant("whq")
		ctx := asHooks(ten)
		svc := s.Webhooks(false)
		drainFanOut(t, s)
		ep, _, err := svc.Create(ctx, hookInput("https://example.com/q", model.WebhookIncidentCreated))
		if err != nil {
			t.Fatal(err)
		}
		var incs []string
		for _, title := range []string{"one", "two"} {
			inc, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: title, Severity: model.SeverityLow, OccurredAt: time.Now()})
			if err != nil {
				t.Fatal(err)
			}
			incs = append(incs, inc.ID)
		}
		drainFanOut(t, s)
		// claim takes the endpoint's run (batch deliveries at most) and
		// returns its jobs; other endpoints' runs are given back.
		claim := func(batch int) (*WebhookRun, []*WebhookJob) {
			t.Helper()
			runs, err := s.ClaimWebhookRuns(context.Background(), 1000, batch, time.Minute, ten)
			if err != nil {
				t.Fatal(err)
			}
			var mine *WebhookRun
			for _, r := range runs {
				if r.EndpointID == ep.ID && mine == nil {
					mine = r
				} else if err := s.EndWebhookRun(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			if mine == nil {
				return nil, nil
			}
			return mine, mine.Jobs
		}
		end := func(r *WebhookRun) {
			t.Helper()
			if err := s.EndWebhookRun(context.Background(), r); err != nil {
				t.Fatal(err)
			}
		}
		// A run is the endpoint's pending deliveries, oldest first, and
		// holds the endpoint.
		run, jobs := claim(10)
		if len(jobs) != 2 || !strings.Contains(string(jobs[0].Payload), incs[0]) || !strings.Contains(string(jobs[1].Payload), incs[1]) {
			t.Fatalf("claimed %+v", jobs)
		}
		first := jobs[0]
		if again, _ := claim(10); again != nil {
			t.Fatalf("the endpoint was claimed again while a run holds it")
		}
		// A failure due again at once ends the run: the same delivery
		// comes back first, the next behind it.
		now := time.Now()
		if ok, err := s.RecordWebhookAttempt(context.Background(), first, WebhookAttempt{At: now, Status: 500, Error: "HTTP 500", Next: now, Excerpt: []byte("oops"), DisableAfter: time.Hour}); err != nil || !ok {
			t.Fatal(ok, err)
		}
		if ok, err := s.RecordWebhookAttempt(context.Background(), first, WebhookAttempt{At: now, Delivered: true}); err != nil || ok {
			t.Fatalf("recorded under a spent lease: %v %v", ok, err)
		}
		end(run)
		run, jobs = claim(1)
		if len(jobs) != 1 || jobs[0].ID != first.ID || jobs[0].MessageID != first.MessageID || jobs[0].Attempts != 1 {
			t.Fatalf("retry %+v", jobs)
		}
		got, _ := svc.Get(ctx, ep.ID)
		if got.FailingSince == nil {
			t.Error("failing since not set")
		}
		// Abandoned: the next one goes.
		if _, err := s.RecordWebhookAttempt(context.Background(), jobs[0], WebhookAttempt{At: now, Status: 500, Error: "HTTP 500", DisableAfter: time.Hour}); err != nil {
			t.Fatal(err)
		}
		end(run)
		run, jobs = claim(1)
		if len(jobs) != 1 || jobs[0].ID == first.ID {
			t.Fatalf("next %+v", jobs)
		}
		// A retry not yet due holds the endpoint's queue.
		if _, err := s.RecordWebhookAttempt(context.Background(), jobs[0], WebhookAttempt{At: now, Error: "connection refused", Next: now.Add(time.Hour), DisableAfter: time.Hour}); err != nil {
			t.Fatal(err)
		}
		end(run)
		if r, _ := claim(1); r != nil {
			t.Fatalf("claimed behind a retry not due: %+v", r.Jobs)
		}
		if _, err := s.exec(context.Background(), `UPDATE webhook_deliveries SET next_attempt_at = $1 WHERE id = $2`, newDBTime(now), jobs[0].ID); err != nil {
			t.Fatal(err)
		}
		run, jobs = claim(1)
		if len(jobs) != 1 || jobs[0].Attempts != 1 {
			t.Fatalf("due retry %+v", jobs)
		}
		// Failing for longer than DisableAfter disables the endpoint.
		later := now.Add(2 * time.Hour)
		if _, err := s.RecordWebhookAttempt(context.Background(), jobs[0], WebhookAttempt{At: later, Error: "connection refused", Next: now, DisableAfter: time.Hour}); err != nil {
			t.Fatal(err)
		}
		end(run)
		got, _ = svc.Get(ctx, ep.ID)
		if got.Enabled || !strings.Contains(got.DisabledReason, "failed continuously") {
			t.Fatalf("not disabled: %+v", got)
		}
		if r, _ := claim(1); r != nil {
			t.Fatal("a disabled endpoint's delivery was claimed")
		}
		// A test goes to a disabled endpoint too, outside the order.
		test, err := svc.SendTest(ctx, ep.ID)
		if err != nil {
			t.Fatal(err)
		}
		run, jobs = claim(1)
		if run == nil || !run.Test || len(jobs) != 1 || jobs[0].ID != test.ID || jobs[0].Type != model.WebhookTest {
			t.Fatalf("test %+v", run)
		}
		if _, err := s.RecordWebhookAttempt(context.Background(), jobs[0], WebhookAttempt{At: later, Status: 204, Delivered: true}); err != nil {
			t.Fatal(err)
		}
		end(run)
		// Enabled again: the streak is over and the held delivery goes; a 410 disables.
		if _, err := svc.Update(ctx, ep.ID, model.WebhookEndpointInput{Enabled: model.Some(true)}); err != nil {
			t.Fatal(err)
		}
		run, jobs = claim(1)
		if len(jobs) != 1 {
			t.Fatalf("after enabling %+v", jobs)
		}
		if _, err := s.RecordWebhookAttempt(context.Background(), jobs[0], WebhookAttempt{At: later, Status: 410, Disable: "the receiver answered 410 Gone", DisableAfter: time.Hour}); err != nil {
			t.Fatal(err)
		}
		end(run)
		got, _ = svc.Get(ctx, ep.ID)
		if got.Enabled || got.DisabledReason != "the receiver answered 410 Gone" {
			t.Fatalf("410: %+v", got)
		}
		// Both incident deliveries failed: queued again, oldest first.
		if n, err := svc.RedeliverSince(ctx, ep.ID, now.Add(-time.Hour)); err != nil || n != 2 {
			t.Fatalf("redeliver since: %d %v", n, err)
		}
		if _, err := svc.Update(ctx, ep.ID, model.WebhookEndpointInput{Enabled: model.Some(true)}); err != nil {
			t.Fatal(err)
		}
		// A lease that runs out (its worker died) lets another take the
		// endpoint over; the first worker's outcomes are not recorded.
		runs, err := s.ClaimWebhookRuns(context.Background(), 1000, 10, time.Nanosecond, ten)
		if err != nil || len(runs) != 1 || len(runs[0].Jobs) != 2 {
			t.Fatalf("claim: %v %+v", err, runs)
		}
		dead := runs[0]
		time.Sleep(2 * time.Millisecond)
		run, jobs = claim(10)
		if len(jobs) != 2 || jobs[0].ID != dead.Jobs[0].ID {
			t.Fatalf("not taken over: %+v", jobs)
		}
		if ok, err := s.RecordWebhookAttempt(context.Background(), dead.Jobs[0], WebhookAttempt{At: later, Status: 200, Delivered: true}); err != nil || ok {
			t.Fatalf("recorded under a lost lease: %v %v", ok, err)
		}
		if err := s.EndWebhookRun(context.Background(), dead); err != nil {
			t.Fatal(err)
		}
		if r, _ := claim(10); r != nil {
			t.Fatal("the dead worker's end released the new worker's run")
		}
		end(run)
		got2 := deliverAll(t, s, ten, ep.ID)
		if len(got2) != 2 || !strings.Contains(got2[0], incs[0]) || !strings.Contains(got2[1], incs[1]) {
			t.Errorf("redelivered %v", got2)
		}
		// The attempt log: every recorded attempt, none under a lost lease.
		d, err := svc.Delivery(ctx, ep.ID, first.ID)
		if err != nil {
			t.Fatal(err)
		}
		if len(d.AttemptLog) != 2 || d.AttemptLog[0].Number != 1 || d.AttemptLog[0].Status != 500 || d.AttemptLog[0].ResponseExcerpt != "oops" ||
			d.AttemptLog[1].Number != 2 || d.AttemptLog[1].Error != "HTTP 500" {
			t.Errorf("attempt log %+v", d.AttemptLog)
		}
		if _, err := svc.Delivery(asHooks(tenant("whq")), ep.ID, first.ID); codeOf(err) != model.CodeNotFound {
			t.Errorf("another tenant read the delivery: %v", err)
		}
		page, err := svc.Deliveries(ctx, ep.ID, model.WebhookDeliveryQuery{Limit: 100})
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range page.Items {
			if d.ID == first.ID && (d.State != model.WebhookFailed || d.Attempts != 2 || d.LastStatus != 500) {
				t.Errorf("first delivery %+v", d)
			}
		}
		// Deleting the endpoint takes its log with it, attempts included.
		if err := svc.Delete(ctx, ep.ID); err != nil {
			t.Fatal(err)
		}
		var left int
		if err := s.queryRow(context.Background(), `SELECT (SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1) +
			(SELECT count(*) FROM webhook_deliveries WHERE endpoint_id = $1)`, ep.ID).Scan(&left); err != nil || left != 0 {
			t.Errorf("%d rows of the deleted endpoint's log left (%v)", left, err)
		}
	})
}

// Rule: events the webhook fan-out has not read are kept by the event
// retention however old (they are its only record); deliveries that are
// over go after their retention, pending ones stay. The store's clock is
// in 2001 so that pruning a shared database touches only this test's rows.
func TestWebhookRetention(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		base := time.Date(2001, 1, 1, 0, 0, 0, 0, time.UTC).Add(time.Duration(time.Now().UnixNano() % int64(time.Hour)))
		clk := &stepClock{now: base}
		s := openStore(t, url, Options{Clock: clk})
		ten := tenant("whr")
		ctx := asHooks(ten)
		drainFanOut(t, s)
		ep, _, err := s.Webhooks(false).Create(ctx, hookInput("https://example.com/r", model.WebhookIncidentCreated))
		if err != nil {
			t.Fatal(err)
		}
		if _, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "old", Severity: model.SeverityLow, OccurredAt: base}); err != nil {
			t.Fatal(err)
		}
		// An hour past the event's time, before any fan-out of this
		// store (another test's may run on a shared database: then the
		// event was read, and is rightly gone).
		if _, err := s.PruneEvents(context.Background(), base.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		drainFanOut(t, s)
		if got := deliverAll(t, s, ten, ep.ID); len(got) != 1 {
			t.Fatalf("the pruned event's delivery: %v", got)
		}
		if _, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: "pending", Severity: model.SeverityLow, OccurredAt: base}); err != nil {
			t.Fatal(err)
		}
		drainFanOut(t, s)
		if _, err := s.PruneWebhookDeliveries(context.Background(), base.Add(time.Hour), 1000); err != nil {
			t.Fatal(err)
		}
		page, err := s.Webhooks(false).Deliveries(ctx, ep.ID, model.WebhookDeliveryQuery{Limit: 10})
		if err != nil {
			t.Fatal(err)
		}
		if len(page.Items) != 1 || page.Items[0].State != model.WebhookPending {
			t.Fatalf("after pruning: %+v", page.Items)
		}
		var attempts int
		if err := s.queryRow(context.Background(), `SELECT count(*) FROM webhook_attempts WHERE endpoint_id = $1`, ep.ID).Scan(&attempts); err != nil || attempts != 0 {
			t.Fatalf("a pruned delivery's attempts stay: %d %v", attempts, err)
		}
	})
}
