package live

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Public fans a published tenant's status out to anonymous viewers (public
// server-sent events, public GraphQL subscriptions, the widget). Render
// once, send many: on each change the status is read once per tenant and
// rendered once per distinct rendering (the SSE frame; each distinct
// GraphQL document and variables), and the same bytes are handed to every
// viewer of it. A viewer holds a slot for the latest bytes, nothing else:
// each message is a whole state, so a slow viewer skips to the newest
// instead of queueing.
type Public struct {
	opt     PublicOptions
	hub     *Hub
	fetch   func(ctx context.Context, tenant string) (*model.StatusSummary, error)
	version func(*model.StatusSummary) string

	mu      sync.Mutex
	tenants map[string]*publicTenant
	perIP   map[string]int
	viewers int
	closed  bool
	wg      sync.WaitGroup
}

// PublicOptions bound the public viewers.
type PublicOptions struct {
	// Refresh is how often a watched tenant's status is read again even
	// without events: maintenance starts and ends by the clock, and another
	// instance may have unpublished it (default 5 s).
	Refresh time.Duration
	// MaxPerIP caps one client address's open viewers (default 50).
	MaxPerIP int
	// Max caps the instance's public viewers (default 20,000).
	Max int
	// MaxRenderings caps the distinct renderings of one tenant on this
	// instance (default 64): each is rendered on every change.
	MaxRenderings int
}

// Why a public viewer ended, besides its own Close.
var (
	ErrUnpublished   = &model.Error{Code: model.CodeNotFound, Message: "this status page is no longer published"}
	ErrTooManyFromIP = &model.Error{Code: model.CodeRateLimited,
		Message: "too many open public streams from this address; close one and retry"}
	ErrTooManyViewers    = &model.Error{Code: model.CodeUnavailable, Message: "this instance serves as many public viewers as it can; retry shortly"}
	ErrTooManyRenderings = &model.Error{Code: model.CodeRateLimited,
		Message: "this status has as many distinct subscriptions as it may; use the same document and variables as others"}
)

// Render renders a tenant's status for one kind of viewer; version is the
// status's version (see NewPublic).
type Render func(sum *model.StatusSummary, version string) ([]byte, error)

// NewPublic returns the public fan-out over hub. fetch reads a published
// tenant's status (not_found when it is not published); version names a
// status's content (equal content, equal version), so that a change that
// alters nothing public sends nothing.
func NewPublic(hub *Hub, fetch func(ctx context.Context, tenant string) (*model.StatusSummary, error),
	version func(*model.StatusSummary) string, opt PublicOptions) *Public {
	if opt.Refresh <= 0 {
		opt.Refresh = 5 * time.Second
	}
	if opt.MaxPerIP <= 0 {
		opt.MaxPerIP = 50
	}
	if opt.Max <= 0 {
		opt.Max = 20_000
	}
	if opt.MaxRenderings <= 0 {
		opt.MaxRenderings = 64
	}
	return &Public{opt: opt, hub: hub, fetch: fetch, version: version, tenants: map[string]*publicTenant{}, perIP: map[string]int{}}
}

type publicTenant struct {
	name string
	poke chan struct{}
	stop context.CancelFunc
	// refresh serialises reading and rendering the tenant's status.
	refresh sync.Mutex
	// sum and version are the latest status read (under refresh).
	sum     *model.StatusSummary
	version string
	// renders, by key (under Public.mu).
	renders map[string]*rendering
}

type rendering struct {
	render  Render
	cur     []byte
	viewers map[*Viewer]struct{}
}

// Viewer is one public viewer of one rendering.
type Viewer struct {
	p    *Public
	t    *publicTenant
	key  string
	ip   string
	wake chan struct{}

	mu      sync.Mutex
	pending []byte
	err     error
	done    bool
}

// Watch adds a viewer of tenant's status rendered by render, shared with
// every viewer of the same key. The viewer's first message is the current
// status, unless seen is its version (a resume that missed nothing). Codes:
// not_found (not published), rate_limited (ip's cap), unavailable.
func (p *Public) Watch(ctx context.Context, tenant, ip, key string, render Render, seen string) (*Viewer, error) {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil, ErrShutdown
	}
	if p.perIP[ip] >= p.opt.MaxPerIP {
		p.mu.Unlock()
		return nil, ErrTooManyFromIP
	}
	if p.viewers >= p.opt.Max {
		p.mu.Unlock()
		return nil, ErrTooManyViewers
	}
	p.perIP[ip]++
	p.viewers++
	t := p.tenants[tenant]
	if t == nil {
		t = &publicTenant{name: tenant, poke: make(chan struct{}, 1), renders: map[string]*rendering{}}
		p.tenants[tenant] = t
	}
	if t.renders[key] == nil && len(t.renders) >= p.opt.MaxRenderings {
		p.perIP[ip]--
		if p.perIP[ip] <= 0 {
			delete(p.perIP, ip)
		}
		p.viewers--
		if len(t.renders) == 0 {
			delete(p.tenants, tenant)
		}
		p.mu.Unlock()
		return nil, ErrTooManyRenderings
	}
	v := &Viewer{p: p, t: t, key: key, ip: ip, wake: make(chan struct{}, 1)}
	r := t.renders[key]
	if r == nil {
		r = &rendering{render: render, viewers: map[*Viewer]struct{}{}}
		t.renders[key] = r
	}
	r.viewers[v] = struct{}{}
	p.mu.Unlock()

	// The first viewer of a tenant reads its status; the first of a
	// rendering renders it.
	t.refresh.Lock()
	err := func() error {
		if t.sum == nil {
			// Subscribed before the read, so that no change committed
			// after the read goes unnoticed.
			sub, err := p.hub.Subscribe(tenant, model.EventFilter{})
			if err != nil {
				slog.Warn("public status: subscribe", "tenant", tenant, "err", err)
				sub = nil // the refresh ticker covers for it
			}
			sum, err := p.fetch(ctx, tenant)
			if err != nil {
				if sub != nil {
					sub.Close()
				}
				return err
			}
			t.sum, t.version = sum, p.version(sum)
			p.start(t, sub)
		}
		p.mu.Lock()
		cur := r.cur
		p.mu.Unlock()
		if cur == nil {
			b, err := render(t.sum, t.version)
			if err != nil {
				return err
			}
			p.mu.Lock()
			r.cur, cur = b, b
			p.mu.Unlock()
		}
		if seen != t.version {
			v.offer(cur)
		}
		return nil
	}()
	t.refresh.Unlock()
	if err != nil {
		v.Close()
		return nil, err
	}
	return v, nil
}

// start runs the tenant's refresher: it reads and renders the status again
// on the tenant's events, on a publication change, and every Refresh.
func (p *Public) start(t *publicTenant, sub *Sub) {
	ctx, cancel := context.WithCancel(context.Background())
	p.mu.Lock()
	if p.closed || p.tenants[t.name] != t {
		p.mu.Unlock()
		cancel()
		if sub != nil {
			sub.Close()
		}
		return
	}
	t.stop = cancel
	p.wg.Add(1)
	p.mu.Unlock()
	go func() {
		defer p.wg.Done()
		p.run(ctx, t, sub)
	}()
}

func (p *Public) run(ctx context.Context, t *publicTenant, sub *Sub) {
	tick := time.NewTicker(p.opt.Refresh)
	defer tick.Stop()
	defer func() {
		if sub != nil {
			sub.Close()
		}
	}()
	for {
		if sub == nil {
			var err error
			if sub, err = p.hub.Subscribe(t.name, model.EventFilter{}); err != nil {
				// The tenant's cap or a shutdown: fall back to the ticker.
				slog.Warn("public status: subscribe", "tenant", t.name, "err", err)
				sub = nil
			}
		}
		var events <-chan *model.Event
		if sub != nil {
			events = sub.C()
		}
		select {
		case <-ctx.Done():
			return
		case _, ok := <-events:
			if !ok { // too slow: a fresh subscription, and a read covers what was missed
				sub = nil
			}
			// One read for every event already queued.
			for drained := false; !drained && sub != nil; {
				select {
				case _, ok := <-sub.C():
					if !ok {
						sub = nil
					}
				default:
					drained = true
				}
			}
		case <-t.poke:
		case <-tick.C:
		}
		p.update(ctx, t)
	}
}

// update reads the tenant's status and sends what changed.
func (p *Public) update(ctx context.Context, t *publicTenant) {
	t.refresh.Lock()
	defer t.refresh.Unlock()
	sum, err := p.fetch(ctx, t.name)
	if err != nil {
		if model.AsError(err).Code == model.CodeNotFound {
			p.endTenant(t, ErrUnpublished)
			return
		}
		if ctx.Err() == nil {
			slog.Warn("public status: read", "tenant", t.name, "err", err)
		}
		return // the viewers keep the last state; the next event or tick tries again
	}
	version := p.version(sum)
	if version == t.version {
		return
	}
	t.sum, t.version = sum, version
	p.mu.Lock()
	type job struct {
		r      *rendering
		render Render
	}
	jobs := make([]job, 0, len(t.renders))
	for _, r := range t.renders {
		jobs = append(jobs, job{r, r.render})
	}
	p.mu.Unlock()
	for _, j := range jobs {
		b, err := j.render(sum, version)
		if err != nil {
			slog.Warn("public status: render", "tenant", t.name, "err", err)
			continue
		}
		p.mu.Lock()
		if !bytes.Equal(b, j.r.cur) {
			j.r.cur = b
			for v := range j.r.viewers {
				v.offer(b)
			}
		}
		p.mu.Unlock()
	}
}

// Changed tells the fan-out that tenant's publication changed on this
// instance, so that its viewers learn at once (an unpublish ends them).
func (p *Public) Changed(tenant string) {
	p.mu.Lock()
	t := p.tenants[tenant]
	p.mu.Unlock()
	if t != nil {
		select {
		case t.poke <- struct{}{}:
		default:
		}
	}
}

// endTenant ends every viewer of t with why.
func (p *Public) endTenant(t *publicTenant, why error) {
	p.mu.Lock()
	var all []*Viewer
	for _, r := range t.renders {
		for v := range r.viewers {
			all = append(all, v)
		}
	}
	p.mu.Unlock()
	for _, v := range all {
		v.end(why)
	}
}

// Close ends every viewer with ErrShutdown and refuses new ones.
func (p *Public) Close() {
	p.mu.Lock()
	p.closed = true
	var all []*publicTenant
	for _, t := range p.tenants {
		all = append(all, t)
	}
	p.mu.Unlock()
	for _, t := range all {
		p.endTenant(t, ErrShutdown)
	}
	p.wg.Wait()
}

// Renderings returns how many distinct renderings tenant's viewers share.
func (p *Public) Renderings(tenant string) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	if t := p.tenants[tenant]; t != nil {
		return len(t.renders)
	}
	return 0
}

// MaxPerIP is the cap of one client address's viewers.
func (p *Public) MaxPerIP() int { return p.opt.MaxPerIP }

// Count returns the open public viewers.
func (p *Public) Count() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.viewers
}

// offer makes b the viewer's next message, replacing one not yet taken.
func (v *Viewer) offer(b []byte) {
	v.mu.Lock()
	if !v.done {
		v.pending = b
	}
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
}

// end ends the viewer with why (nil: closed by its owner) and frees its slot.
func (v *Viewer) end(why error) {
	v.mu.Lock()
	if v.done {
		v.mu.Unlock()
		return
	}
	v.done, v.err, v.pending = true, why, nil
	v.mu.Unlock()
	select {
	case v.wake <- struct{}{}:
	default:
	}
	p := v.p
	p.mu.Lock()
	defer p.mu.Unlock()
	p.viewers--
	if p.perIP[v.ip]--; p.perIP[v.ip] <= 0 {
		delete(p.perIP, v.ip)
	}
	t := v.t
	if r := t.renders[v.key]; r != nil {
		delete(r.viewers, v)
		if len(r.viewers) == 0 {
			delete(t.renders, v.key)
		}
	}
	if len(t.renders) == 0 && p.tenants[t.name] == t {
		delete(p.tenants, t.name)
		if t.stop != nil {
			t.stop()
		}
	}
}

// Close ends the viewer.
func (v *Viewer) Close() { v.end(nil) }

// Wake signals that Take may have something.
func (v *Viewer) Wake() <-chan struct{} { return v.wake }

// Take returns the viewer's next message, nil when there is none yet, or
// an error when the viewer ended (ErrUnpublished, ErrShutdown; errClosed
// after Close).
func (v *Viewer) Take() ([]byte, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	b := v.pending
	v.pending = nil
	switch {
	case b != nil:
		return b, nil
	case v.done && v.err != nil:
		return nil, v.err
	case v.done:
		return nil, errClosed
	}
	return nil, nil
}

// Next waits for the viewer's next message (see Take) or for ctx.
func (v *Viewer) Next(ctx context.Context) ([]byte, error) {
	for {
		if b, err := v.Take(); b != nil || err != nil {
			return b, err
		}
		select {
		case <-v.wake:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

var errClosed = errors.New("viewer closed")

// String names the viewer in logs.
func (v *Viewer) String() string { return fmt.Sprintf("public viewer of %s (%s)", v.t.name, v.key) }
