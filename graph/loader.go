package graph

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// loader batches the keys requested by concurrently resolving fields into
// one fetch (the dataloader pattern), so that a list of N items with a
// relation costs one query for the relation, not N.
type loader[K comparable, V any] struct {
	fetch func(ctx context.Context, keys []K) (map[K]V, error)
	wait  time.Duration
	max   int

	mu    sync.Mutex
	batch *batch[K, V]
}

type batch[K comparable, V any] struct {
	first, last time.Time
	keys        []K
	seen        map[K]bool
	done        chan struct{}
	res         map[K]V
	err         error
}

func newLoader[K comparable, V any](fetch func(context.Context, []K) (map[K]V, error)) *loader[K, V] {
	return &loader[K, V]{fetch: fetch, wait: 2 * time.Millisecond, max: 500}
}

// Load returns the value of k, fetched together with the other keys asked
// for within the batching window.
func (l *loader[K, V]) Load(ctx context.Context, k K) (V, error) {
	l.mu.Lock()
	b := l.batch
	now := time.Now()
	if b == nil {
		b = &batch[K, V]{seen: map[K]bool{}, done: make(chan struct{}), first: now}
		l.batch = b
		l.arm(ctx, b, l.wait)
	}
	b.last = now
	if !b.seen[k] {
		b.seen[k] = true
		b.keys = append(b.keys, k)
	}
	full := len(b.keys) >= l.max
	l.mu.Unlock()
	if full {
		l.dispatch(ctx, b)
	}
	<-b.done
	return b.res[k], b.err
}

// arm waits until keys stop arriving (a quiet spell of l.wait, at most 5
// spells in all), so that siblings resolved a little late still join.
func (l *loader[K, V]) arm(ctx context.Context, b *batch[K, V], after time.Duration) {
	time.AfterFunc(after, func() {
		l.mu.Lock()
		quiet := time.Since(b.last)
		pending := l.batch == b && quiet < l.wait && time.Since(b.first) < 5*l.wait
		l.mu.Unlock()
		if pending {
			l.arm(ctx, b, l.wait-quiet)
			return
		}
		l.dispatch(ctx, b)
	})
}

// dispatch runs a batch once, whichever of the timer and a full batch comes first.
func (l *loader[K, V]) dispatch(ctx context.Context, b *batch[K, V]) {
	l.mu.Lock()
	if l.batch != b {
		l.mu.Unlock()
		return
	}
	l.batch = nil
	l.mu.Unlock()
	defer close(b.done) // waiters never hang, whatever happens in fetch
	defer func() {
		if v := recover(); v != nil {
			b.err = model.Internal(fmt.Errorf("panic: %v", v), "batch loader")
		}
	}()
	b.res, b.err = l.fetch(ctx, b.keys)
}

// loaders are one request's (or subscription's) batchers.
type loaders struct {
	affects    *loader[string, []model.Affect]
	components *loader[string, *model.Component]
	affecting  *loader[string, []model.AffectingIncident]
	incidents  *loader[string, *model.Incident]
	updates    *loader[string, []model.IncidentUpdate]
	phases     *loader[int, *model.PhaseList]

	// The tenant's impact types (a small, bounded set), read whole when
	// first asked for, and again when older than typesTTL or missing an id:
	// a subscription's loaders live as long as it does.
	typesMu sync.Mutex
	types   map[string]*model.ImpactType
	typesAt time.Time
}

const typesTTL = time.Second

// impactType returns one of the tenant's impact types.
func (l *loaders) impactType(ctx context.Context, cat model.CatalogueService, id string) (*gqlmodel.ImpactType, error) {
	l.typesMu.Lock()
	defer l.typesMu.Unlock()
	if t := l.types[id]; t != nil && time.Since(l.typesAt) < typesTTL {
		return impactTypeOut(t), nil
	}
	ts, err := cat.ImpactTypes(ctx)
	if err != nil {
		return nil, err
	}
	l.types, l.typesAt = make(map[string]*model.ImpactType, len(ts)), time.Now()
	for i := range ts {
		l.types[ts[i].ID] = &ts[i]
	}
	if t := l.types[id]; t != nil {
		return impactTypeOut(t), nil
	}
	return nil, model.NotFound("Impact type", id)
}

type loadersKey struct{}

func withLoaders(ctx context.Context, rel model.RelationService, cat model.CatalogueService) context.Context {
	return context.WithValue(ctx, loadersKey{}, &loaders{
		phases: newLoader(func(ctx context.Context, gens []int) (map[int]*model.PhaseList, error) {
			out := map[int]*model.PhaseList{}
			for _, g := range gens { // an operation meets one or two generations
				l, err := cat.Phases(ctx, g)
				if err != nil && model.ErrorCode(err) != model.CodeNotFound {
					return nil, err
				}
				out[g] = l
			}
			return out, nil
		}),
		affects:    newLoader(rel.AffectsOf),
		components: newLoader(rel.ComponentsByID),
		affecting:  newLoader(rel.AffectingOf),
		incidents:  newLoader(rel.IncidentsByID),
		updates: newLoader(func(ctx context.Context, ids []string) (map[string][]model.IncidentUpdate, error) {
			return rel.UpdatesOf(ctx, ids, bound("Incident.updates").max) // the most a field can ask for
		}),
	})
}

func loadersFrom(ctx context.Context) *loaders {
	l, _ := ctx.Value(loadersKey{}).(*loaders)
	return l
}

// componentsOf loads several components through the batching loader, in order.
// The keys are loaded concurrently so that they share one batch.
func (l *loaders) componentsOf(ctx context.Context, ids []string) ([]model.Component, error) {
	got := make([]*model.Component, len(ids))
	errs := make([]error, len(ids))
	var wg sync.WaitGroup
	for i, id := range ids {
		wg.Go(func() { got[i], errs[i] = l.components.Load(ctx, id) })
	}
	wg.Wait()
	out := make([]model.Component, 0, len(ids))
	for i, c := range got {
		if errs[i] != nil {
			return nil, errs[i]
		}
		if c != nil {
			out = append(out, *c)
		}
	}
	return out, nil
}
