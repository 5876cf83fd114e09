// Package webhook delivers a tenant's changes to its webhook endpoints
// (Standard Webhooks): an engine fans the committed event stream out into
// a durable delivery queue and sends what is due, signed, with retries.
//
// Guarantees:
//   - No committed change is missed: fan-out reads the event stream after a
//     durable cursor and queues deliveries and moves the cursor in one
//     transaction (under a row lock, so instances fan out in turn, each
//     event once). A crash loses nothing; a restart resumes after the
//     cursor.
//   - At least once: a delivery is leased while it is sent, outside any
//     transaction; a crash before its outcome is recorded lets the lease run
//     out and the delivery is sent again. Every attempt and redelivery of a
//     message carries the same webhook-id, for receivers to drop duplicates.
//   - In order per endpoint (so per resource): an endpoint has one delivery
//     in flight, always its oldest pending one; the next is sent once it
//     succeeded or was abandoned. A receiver that fails delays only its own
//     deliveries. Tests (webhook.test) stand outside that order.
//   - Messages go out to the endpoints enabled when the fan-out reads the
//     event, and written at or after the endpoint's creation; an endpoint
//     disabled meanwhile receives none of the events of that time.
//
// Event types: the incident events (incident.created, .updated, .deleted,
// .update_added), and component.status: for each incident event, one
// message per component (among those whose affect the change touched and
// those the incident affects) whose status at the event's time, as the
// uptime history records it, differs from the last one reported; so one
// per move, however late the fan-out. maintenance.created, .started and
// .ended: a window's creation and deletion write a mark in their own
// transaction (the maintenance outbox), and its start and end, which are
// moments rather than writes, are noticed by the fan-out once they pass
// (within Poll); a deleted window's maintenance.ended says cancelled.
package webhook

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/store"
)

// DefaultSchedule is the wait before each retry after a failed attempt:
// eight attempts over about 28 hours.
var DefaultSchedule = []time.Duration{5 * time.Second, 5 * time.Minute, 30 * time.Minute, 2 * time.Hour, 5 * time.Hour, 10 * time.Hour, 10 * time.Hour}

// Options tune an Engine; zero values take the defaults.
type Options struct {
	// Workers bounds the endpoints sent to at once, each with one attempt
	// in flight (default 128): slow receivers hold a worker each, so there
	// are many, and cheap.
	Workers int
	// Batch bounds the deliveries of an endpoint one worker takes in a
	// run, sent in order (default 50).
	Batch int
	// RunFor bounds a run's time (default 5 s): a slow receiver then gives
	// its worker back to the endpoints that waited longest, even when
	// there are more slow receivers than workers.
	RunFor time.Duration
	// Timeout bounds one attempt: connection, request and answer (default 10 s).
	Timeout time.Duration
	// Schedule is the wait before each retry (default DefaultSchedule);
	// when it is exhausted, the delivery is abandoned.
	Schedule []time.Duration
	// Jitter spreads each wait by up to ±Jitter of it (default 0.2;
	// negative: none).
	Jitter float64
	// DisableAfter disables an endpoint whose deliveries have failed
	// continuously for longer than this (default 5 days).
	DisableAfter time.Duration
	// AllowPrivateTargets admits plain http and loopback, private and
	// link-local addresses (development and tests only). The service
	// (Engine.Service) applies the same rule.
	AllowPrivateTargets bool
	// Poll is how often an idle engine looks for due deliveries and
	// unread events anyway (default 1 s): Wake makes it look at once.
	Poll time.Duration
	// Retention is how long deliveries that are over (delivered or
	// failed) stay in the delivery log (default 30 days); pending ones
	// stay however old.
	Retention time.Duration
	// Clock stamps attempts (default the system clock).
	Clock model.Clock
	// UserAgent of the requests (default "incidentd-webhooks").
	UserAgent string
	// Tenants, when set, limits the deliveries this engine sends to those
	// of the tenants it returns, asked at each claim (none: it sends
	// nothing). For tests whose servers share one database, so that one
	// test's engine never sends another's deliveries.
	Tenants func() []string
}

const (
	fanOutPage = 500
	// pruneEvery is how often an engine prunes the delivery log, and
	// prunePage how many deliveries one statement deletes.
	pruneEvery = time.Hour
	prunePage  = 5000
	// maxRecordBatch bounds the outcomes recorded in one transaction.
	maxRecordBatch = 256
	// leaseMargin is added to the timeout for a delivery's lease: a lease
	// that runs out while its attempt is still going would send it twice.
	leaseMargin = 30 * time.Second
)

// Engine fans events out to endpoints and sends the deliveries. Several
// engines (instances) may run over one database.
type Engine struct {
	st     *store.Store
	opt    Options
	client *http.Client
	wake   chan struct{}
	// done is signalled by each worker that finished: its endpoint's next
	// delivery may be due.
	done chan struct{}
	// sent, if set (tests), is told after each recorded attempt.
	sent func()
	// recordFault, if set (tests), fails a recording when it returns an
	// error, as a database that does not answer would.
	recordFault func() error
}

// New returns an engine over st; Run starts it.
func New(st *store.Store, opt Options) *Engine {
	if opt.Workers <= 0 {
		opt.Workers = 128
	}
	if opt.RunFor <= 0 {
		opt.RunFor = 5 * time.Second
	}
	if opt.Batch <= 0 {
		opt.Batch = 50
	}
	if opt.Timeout <= 0 {
		opt.Timeout = 10 * time.Second
	}
	if opt.Schedule == nil {
		opt.Schedule = DefaultSchedule
	}
	// ParseSchedule refuses longer ones; a schedule given in code is cut
	// to the bound the attempt log is read under.
	opt.Schedule = opt.Schedule[:min(len(opt.Schedule), model.MaxWebhookRetries)]
	if opt.Jitter == 0 {
		opt.Jitter = 0.2
	}
	if opt.DisableAfter <= 0 {
		opt.DisableAfter = 5 * 24 * time.Hour
	}
	if opt.Poll <= 0 {
		opt.Poll = time.Second
	}
	if opt.Retention <= 0 {
		opt.Retention = 30 * 24 * time.Hour
	}
	if opt.Clock == nil {
		opt.Clock = model.SystemClock{}
	}
	if opt.UserAgent == "" {
		opt.UserAgent = "incidentd-webhooks"
	}
	return &Engine{st: st, opt: opt, client: newClient(opt.Timeout, opt.AllowPrivateTargets),
		wake: make(chan struct{}, 1), done: make(chan struct{}, 1)}
}

// Service is the endpoints' service, under the engine's target rule.
func (e *Engine) Service() model.WebhookService { return e.st.Webhooks(e.opt.AllowPrivateTargets) }

// Wake makes the engine look for new events and due deliveries now (the
// wiring calls it after each batch the event watcher delivers).
func (e *Engine) Wake() {
	select {
	case e.wake <- struct{}{}:
	default: // a wake-up is pending already
	}
}

// Run fans out and delivers until ctx ends, then waits for the attempts in
// flight, which ctx's end cancels: their deliveries are given back unsent
// (due again at once, for any instance).
func (e *Engine) Run(ctx context.Context) {
	rec := make(chan *outcome, 4*e.opt.Batch)
	recorded := make(chan struct{})
	go func() {
		defer close(recorded)
		e.recorder(rec)
	}()
	var wg sync.WaitGroup
	defer func() {
		wg.Wait() // the workers' last outcomes are sent
		close(rec)
		<-recorded
	}()
	slots := make(chan struct{}, e.opt.Workers)
	var pruned time.Time
	for ctx.Err() == nil {
		if time.Since(pruned) > pruneEvery {
			e.prune(ctx)
			pruned = time.Now()
		}
		e.fanOut(ctx)
		free := cap(slots) - len(slots)
		tenants, all := e.tenants()
		if free > 0 && (all || len(tenants) > 0) {
			runs, err := e.st.ClaimWebhookRuns(ctx, free, e.opt.Batch, e.lease(), tenants...)
			if err != nil && ctx.Err() == nil {
				slog.Warn("webhook: claim deliveries", "err", err)
			}
			for _, run := range runs {
				slots <- struct{}{}
				wg.Add(1)
				go func() {
					defer wg.Done()
					e.send(ctx, run, rec)
					<-slots
					select {
					case e.done <- struct{}{}:
					default:
					}
				}()
			}
			if len(runs) == free {
				continue // more may be due: claim again once a slot frees
			}
		}
		timer := time.NewTimer(e.opt.Poll)
		select {
		case <-ctx.Done():
		case <-e.wake:
		case <-e.done:
		case <-timer.C:
		}
		timer.Stop()
	}
}

// lease is how long a claimed endpoint stays leased without news of its
// run: an attempt's longest time, and a margin (a lease that ran out while
// its attempt still went would let the delivery be sent twice at once).
func (e *Engine) lease() time.Duration { return e.opt.Timeout + leaseMargin }

// prune deletes the deliveries that are over and older than Retention.
func (e *Engine) prune(ctx context.Context) {
	cutoff := e.opt.Clock.Now().Add(-e.opt.Retention)
	for ctx.Err() == nil {
		n, err := e.st.PruneWebhookDeliveries(ctx, cutoff, prunePage)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("webhook: prune deliveries", "err", err)
			}
			return
		}
		if n > 0 {
			slog.Info("webhook: pruned deliveries", "count", n)
		}
		if n < prunePage {
			return
		}
	}
}

// fanOut queues the deliveries of every event not fanned out yet, and the
// maintenance messages due.
func (e *Engine) fanOut(ctx context.Context) {
	for ctx.Err() == nil {
		n, err := e.st.FanOutMaintenance(ctx, e.render)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("webhook: fan out maintenance", "err", err)
			}
			break
		}
		if n < store.MaintenanceFanOutPage {
			break
		}
	}
	for ctx.Err() == nil {
		n, err := e.st.FanOutWebhooks(ctx, fanOutPage, e.render)
		if err != nil {
			if ctx.Err() == nil {
				slog.Warn("webhook: fan out", "err", err)
			}
			return
		}
		if n < fanOutPage {
			return
		}
	}
}

// outcome is an attempt on its way to the store; done is closed once it is
// recorded (or its recording failed).
type outcome struct {
	store.WebhookOutcome
	done chan struct{}
	// lost, once done is closed: nothing was recorded (the lease was
	// taken over, or recording gave up), so the run is no longer this
	// worker's to go on with.
	lost bool
}

// send sends a run's deliveries in order, each once, and hands each
// outcome to the recorder without waiting for it: the run's lease covers
// them all, and a crash before they are recorded sends them again. A
// delivery that failed ends the run (the ones behind it wait for its
// retry). The run ends, giving back what was not sent, once its outcomes
// are recorded.
func (e *Engine) send(ctx context.Context, run *store.WebhookRun, rec chan<- *outcome) {
	var pending []*outcome
	defer func() {
		for _, o := range pending {
			<-o.done
		}
		rctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Second)
		defer cancel()
		if err := e.st.EndWebhookRun(rctx, run); err != nil {
			slog.Warn("webhook: end run", "endpoint", run.EndpointID, "err", err)
		}
	}()
	deadline := time.Now().Add(e.opt.RunFor)
	for i, j := range run.Jobs {
		if i > 0 && time.Now().After(deadline) {
			return // the rest is given back, for the endpoints that waited longest first
		}
		if lostAny(pending) {
			return
		}
		a, ok := e.attempt(ctx, j)
		if !ok {
			return // stopping: the attempt did not finish
		}
		o := &outcome{WebhookOutcome: store.WebhookOutcome{Job: j, Attempt: a}, done: make(chan struct{})}
		rec <- o
		pending = append(pending, o)
		if !a.Delivered {
			return
		}
	}
}

// attempt sends one leased delivery and says what came of it; false when
// ctx ended before the attempt did.
func (e *Engine) attempt(ctx context.Context, j *store.WebhookJob) (store.WebhookAttempt, bool) {
	var r result
	if errs := model.CheckWebhookURL(j.URL, e.opt.AllowPrivateTargets); len(errs) > 0 {
		r.err = errors.New(errs[0].Message)
	} else {
		r = e.post(ctx, j.URL, j.MessageID, j.Secrets, j.Payload)
	}
	if ctx.Err() != nil {
		return store.WebhookAttempt{}, false
	}
	a := store.WebhookAttempt{At: e.opt.Clock.Now(), Latency: r.latency, Status: r.status, Excerpt: r.excerpt, DisableAfter: e.opt.DisableAfter}
	switch {
	case r.err != nil:
		a.Error = r.err.Error()
	case r.status >= 200 && r.status < 300:
		a.Delivered = true
	case r.status == http.StatusGone:
		a.Disable = "the receiver answered 410 Gone"
	default:
		a.Error = "HTTP " + strconv.Itoa(r.status)
	}
	if !a.Delivered && a.Disable == "" && j.Attempts < len(e.opt.Schedule) {
		a.Next = a.At.Add(e.jitter(e.opt.Schedule[j.Attempts]))
	}
	return a, true
}

// recorder writes outcomes as they come, all those waiting in one
// transaction, so that the workers of many endpoints share commits. It
// returns when in is closed and drained. An attempt is over when it comes
// here: it is recorded even while the engine stops.
func (e *Engine) recorder(in <-chan *outcome) {
	batch := make([]*outcome, 0, maxRecordBatch)
	for o := range in {
		batch = append(batch[:0], o)
	more:
		for len(batch) < maxRecordBatch {
			select {
			case o, ok := <-in:
				if !ok {
					break more
				}
				batch = append(batch, o)
			default:
				break more
			}
		}
		outs := make([]store.WebhookOutcome, len(batch))
		for i, o := range batch {
			outs[i] = o.WebhookOutcome
		}
		recorded := e.record(outs)
		for i, o := range batch {
			o.lost = !recorded[i]
			close(o.done)
			if e.sent != nil {
				e.sent()
			}
		}
	}
}

// record records outcomes, trying again while the database fails (with
// backoff, and the workers waiting on the recorder meanwhile) until the
// leases they were sent under have run out: then another worker owns the
// deliveries, and nothing is recorded. Giving up sooner would hand the
// deliveries back as they were, due again at once, skipping their retry
// schedule while the database is least able to bear it.
func (e *Engine) record(outs []store.WebhookOutcome) []bool {
	giveUp := time.Now().Add(e.lease())
	wait := 50 * time.Millisecond
	for {
		var recorded []bool
		var err error
		if e.recordFault != nil {
			err = e.recordFault()
		}
		if err == nil {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			recorded, err = e.st.RecordWebhookAttempts(ctx, e.lease(), outs)
			cancel()
		}
		if err == nil {
			return recorded
		}
		if time.Now().Add(wait).After(giveUp) {
			slog.Error("webhook: record attempts: giving up, the leases have run out", "attempts", len(outs), "err", err)
			return make([]bool, len(outs))
		}
		slog.Warn("webhook: record attempts: trying again", "attempts", len(outs), "in", wait, "err", err)
		time.Sleep(wait)
		wait = min(2*wait, 2*time.Second)
	}
}

// tenants are the tenants whose deliveries this engine sends
// (Options.Tenants), or all.
func (e *Engine) tenants() (tenants []string, all bool) {
	if e.opt.Tenants == nil {
		return nil, true
	}
	return e.opt.Tenants(), false
}

// lostAny reports whether an outcome already recorded was not (its run
// is no longer the worker's).
func lostAny(pending []*outcome) bool {
	for _, o := range pending {
		select {
		case <-o.done:
			if o.lost {
				return true
			}
		default:
		}
	}
	return false
}

func (e *Engine) jitter(d time.Duration) time.Duration {
	if e.opt.Jitter <= 0 {
		return d
	}
	return time.Duration(float64(d) * (1 + e.opt.Jitter*(2*rand.Float64()-1)))
}
