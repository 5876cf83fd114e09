// Package live fans committed events out to subscribers (GraphQL
// subscriptions, server-sent events). It receives every committed event, in
// commit order, from the store's watcher, and hands each subscriber only the
// events of its own tenant that pass its filter.
package live

import (
	"context"
	"errors"
	"fmt"
	"sync"

	"github.com/incidentd/incidentd/model"
)

// Why a subscription ended, besides its own Close.
var (
	// ErrSlowConsumer: the subscriber did not keep up and its buffer filled.
	ErrSlowConsumer = &model.Error{Code: model.CodeRateLimited, Message: "subscriber too slow: its event buffer overflowed; resume with after=<last event id>"}
	// ErrShutdown: the server is stopping.
	ErrShutdown = &model.Error{Code: model.CodeUnavailable, Message: "server shutting down; reconnect and resume with after=<last event id>"}
)

// Options bound a hub.
type Options struct {
	// Buffer is each subscriber's queue length (default 256).
	Buffer int
	// MaxPerTenant caps a tenant's concurrent subscriptions (default 10,000).
	MaxPerTenant int
}

// Hub is the in-process fan-out.
type Hub struct {
	opt Options

	mu       sync.RWMutex
	byTenant map[string]map[*Sub]struct{}
	closed   bool

	// streams counts the streams opened by Open whose callers have not yet
	// finished: a stream ended by Close is still telling its client why
	// until its caller's context ends (see Wait).
	streams sync.WaitGroup
}

// New returns an empty hub.
func New(opt Options) *Hub {
	if opt.Buffer <= 0 {
		opt.Buffer = 256
	}
	if opt.MaxPerTenant <= 0 {
		opt.MaxPerTenant = 10_000
	}
	return &Hub{opt: opt, byTenant: make(map[string]map[*Sub]struct{})}
}

// Sub is one subscription.
type Sub struct {
	hub    *Hub
	tenant string
	// cred is the API key prefix the subscription was opened with ("" for tokens).
	cred   string
	filter model.EventFilter
	ch     chan *model.Event

	once sync.Once
	err  error // set before ch closes
}

// Subscribe registers a subscriber of tenant's events that pass f. Codes:
// rate_limited (the tenant's cap is reached), unavailable (shutting down).
func (h *Hub) Subscribe(tenant string, f model.EventFilter) (*Sub, error) {
	return h.subscribe(context.Background(), tenant, "", f)
}

// subscribe registers the subscription; the hub's Wait waits for hold to end
// too (unless it never can).
func (h *Hub) subscribe(hold context.Context, tenant, cred string, f model.EventFilter) (*Sub, error) {
	s := &Sub{hub: h, tenant: tenant, cred: cred, filter: f, ch: make(chan *model.Event, h.opt.Buffer)}
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.closed {
		return nil, ErrShutdown
	}
	subs := h.byTenant[tenant]
	if len(subs) >= h.opt.MaxPerTenant {
		return nil, &model.Error{Code: model.CodeRateLimited,
			Message: fmt.Sprintf("this tenant already has %d subscriptions, the maximum", h.opt.MaxPerTenant)}
	}
	if subs == nil {
		subs = make(map[*Sub]struct{})
		h.byTenant[tenant] = subs
	}
	subs[s] = struct{}{}
	if hold.Done() != nil {
		// Counted under mu while open, so every Add happens before the
		// Wait that follows Close.
		h.streams.Add(1)
		context.AfterFunc(hold, h.streams.Done)
	}
	return s, nil
}

// C delivers the events; it closes when the subscription ends (see Err).
func (s *Sub) C() <-chan *model.Event { return s.ch }

// Err says why C closed: ErrSlowConsumer, ErrShutdown, or nil after Close.
func (s *Sub) Err() error { return s.err }

// Close ends the subscription.
func (s *Sub) Close() { s.hub.remove(s, nil) }

func (h *Hub) remove(s *Sub, why error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.removeLocked(s, why)
}

func (h *Hub) removeLocked(s *Sub, why error) {
	s.once.Do(func() {
		if subs := h.byTenant[s.tenant]; subs != nil {
			delete(subs, s)
			if len(subs) == 0 {
				delete(h.byTenant, s.tenant)
			}
		}
		s.err = why
		close(s.ch)
	})
}

// Publish hands committed events, in commit order, to the subscribers of
// their tenants. It never blocks: a subscriber whose buffer is full is ended
// with ErrSlowConsumer rather than buffered without bound.
func (h *Hub) Publish(evs []*model.Event) {
	var slow map[*Sub]bool
	h.mu.RLock()
	for _, e := range evs {
		for s := range h.byTenant[e.TenantID] {
			if s.tenant != e.TenantID || slow[s] || !s.filter.Match(e) {
				continue // once slow, nothing more: a later event must not hide the lost one
			}
			select {
			case s.ch <- e:
			default:
				if slow == nil {
					slow = map[*Sub]bool{}
				}
				slow[s] = true
			}
		}
	}
	h.mu.RUnlock()
	if len(slow) > 0 {
		h.mu.Lock()
		for s := range slow {
			h.removeLocked(s, ErrSlowConsumer)
		}
		h.mu.Unlock()
	}
}

// ErrRevoked ends the subscriptions of a revoked API key.
var ErrRevoked = model.Unauthorized("the API key of this subscription was revoked")

// EndCredential ends every subscription opened with the API key of prefix.
func (h *Hub) EndCredential(prefix string) {
	if prefix == "" {
		return
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, subs := range h.byTenant {
		for s := range subs {
			if s.cred == prefix {
				h.removeLocked(s, ErrRevoked)
			}
		}
	}
}

// Close ends every subscription with ErrShutdown and refuses new ones.
func (h *Hub) Close() {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.closed = true
	for _, subs := range h.byTenant {
		for s := range subs {
			h.removeLocked(s, ErrShutdown)
		}
	}
}

// Wait, after Close, waits until every stream Open started has been finished
// by its caller (whose context has ended: a WebSocket operation once its
// client was told why it ended, an SSE request once its handler returned),
// or until ctx ends. Closing connections before then would cut that message
// off.
func (h *Hub) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		h.streams.Wait()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("waiting for live streams to finish: %w", ctx.Err())
	}
}

// Count returns the number of live subscriptions.
func (h *Hub) Count() int {
	h.mu.RLock()
	defer h.mu.RUnlock()
	n := 0
	for _, subs := range h.byTenant {
		n += len(subs)
	}
	return n
}

// Open subscribes the principal in ctx (scope incidents:read) to its tenant's
// events passing f, and calls emit with each, in order, from one goroutine,
// until emit returns false or ctx ends; then end is called once with why the
// stream ended (nil when the caller stopped it). With after (an event id,
// "" for none), the retained events after it are replayed first; live
// events at or before the last one replayed are skipped, so nothing is
// delivered twice and nothing in between is lost. Emitting straight into the caller's channel saves a goroutine hop
// per event and subscriber, which is what fan-out to thousands costs.
// Codes: unauthorized, forbidden, invalid, rate_limited, unavailable.
func (h *Hub) Open(ctx context.Context, log model.EventLog, f model.EventFilter, after string,
	emit func(*model.Event) bool, end func(error)) error {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return err
	}
	if errs := f.Validate(); len(errs) > 0 {
		return model.Invalid("invalid subscription filter", errs...)
	}
	var from *model.Position
	if after != "" {
		pos, err := log.ParsePosition(ctx, after)
		if err != nil {
			return err
		}
		from = &pos
	}
	// Subscribe before replaying, so that what commits during the replay waits in the buffer.
	sub, err := h.subscribe(ctx, p.TenantID, p.KeyPrefix, f)
	if err != nil {
		return err
	}
	// The first replay page is read here, so that a refused resume point
	// fails the subscription itself; later pages are read as the client
	// consumes, so a long replay never sits in memory whole.
	var page []*model.Event
	if from != nil {
		if page, err = log.IncidentEvents(ctx, *from, model.MaxReplay); err != nil {
			sub.Close()
			return err
		}
	}
	go func() {
		why := forward(ctx, log, f, sub, from, page, emit)
		// The caller hears of the end (and frees what it holds for the
		// stream, such as its connection's slot) before the hub stops
		// counting the subscription: whoever waits for the count to drop
		// may then rely on the slot being free.
		end(why)
		sub.Close()
	}()
	return nil
}

func forward(ctx context.Context, log model.EventLog, f model.EventFilter, sub *Sub, from *model.Position,
	page []*model.Event, emit func(*model.Event) bool) error {
	var last model.Position
	if from != nil {
		last = *from
	}
	for from != nil {
		for _, e := range page {
			last = e.Pos
			if f.Match(e) && !emit(e) {
				return nil
			}
		}
		if len(page) < model.MaxReplay {
			break
		}
		var err error
		if page, err = log.IncidentEvents(ctx, last, model.MaxReplay); err != nil {
			return err
		}
	}
	for {
		select {
		case e, ok := <-sub.C():
			if !ok {
				return sub.Err()
			}
			if from != nil && e.Pos.Compare(last) <= 0 {
				continue // already replayed (or before the resume point)
			}
			if !emit(e) {
				return nil
			}
		case <-ctx.Done():
			return nil
		}
	}
}

// IsEnded reports whether err is one of the hub's own endings.
func IsEnded(err error) bool { return errors.Is(err, ErrSlowConsumer) || errors.Is(err, ErrShutdown) }
