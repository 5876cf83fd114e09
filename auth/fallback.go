package auth

import (
	"context"
	"log/slog"
	"sync"
	"time"

	"github.com/ulule/limiter/v3"
)

// fallbackRetry is how long a failed shared store is left alone before the
// next request tries it again, so that a dead Redis costs one failed call a
// second, not one per request.
const fallbackRetry = time.Second

// fallbackStore keeps counters in shared (Redis) and, while shared fails, in
// local memory: the limiter fails open to per-instance budgets rather than
// refusing every request (or serving without any limit) while Redis is away.
// Counters are not carried between the two: a client gets at most one extra
// budget per instance for the window in which Redis went away or came back.
type fallbackStore struct {
	shared, local limiter.Store

	mu        sync.Mutex
	downUntil time.Time // zero while shared is believed up
	probing   bool      // one request is trying shared again; the rest count locally
	now       func() time.Time
	// onChange, when set, hears every switch (true: falling back).
	onChange func(fallingBack bool, err error)
}

func newFallbackStore(shared limiter.Store) *fallbackStore {
	return &fallbackStore{shared: shared, local: NewMemoryStore(), now: time.Now,
		onChange: func(down bool, err error) {
			if down {
				// The error's text only: the Redis store's errors print a
				// stack trace with %+v, which a log line does not want.
				slog.Warn("rate limit: shared store unreachable; counting in this instance until it answers", "err", err.Error())
			} else {
				slog.Info("rate limit: shared store answers again")
			}
		}}
}

// pick is the store to use now. While shared is down, once the retry time
// has come, one request tries it (and may wait for its timeout); the others
// go on counting locally meanwhile, so that a Redis that hangs costs one
// request a second, not every request in flight.
func (f *fallbackStore) pick() limiter.Store {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.downUntil.IsZero() {
		return f.shared
	}
	if f.probing || f.now().Before(f.downUntil) {
		return f.local
	}
	f.probing = true
	return f.shared
}

// result records how a call to st went, and reports whether to redo it locally.
func (f *fallbackStore) result(st limiter.Store, err error) (retryLocally bool) {
	if st != f.shared {
		return false
	}
	f.mu.Lock()
	wasDown := !f.downUntil.IsZero()
	f.probing = false
	if err != nil {
		f.downUntil = f.now().Add(fallbackRetry)
	} else {
		f.downUntil = time.Time{}
	}
	f.mu.Unlock()
	if changed := wasDown != (err != nil); changed && f.onChange != nil {
		f.onChange(err != nil, err)
	}
	return err != nil
}

func (f *fallbackStore) do(call func(limiter.Store) (limiter.Context, error)) (limiter.Context, error) {
	st := f.pick()
	c, err := call(st)
	if f.result(st, err) {
		return call(f.local)
	}
	return c, err
}

func (f *fallbackStore) Get(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return f.do(func(s limiter.Store) (limiter.Context, error) { return s.Get(ctx, key, rate) })
}

func (f *fallbackStore) Peek(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return f.do(func(s limiter.Store) (limiter.Context, error) { return s.Peek(ctx, key, rate) })
}

func (f *fallbackStore) Reset(ctx context.Context, key string, rate limiter.Rate) (limiter.Context, error) {
	return f.do(func(s limiter.Store) (limiter.Context, error) { return s.Reset(ctx, key, rate) })
}

func (f *fallbackStore) Increment(ctx context.Context, key string, count int64, rate limiter.Rate) (limiter.Context, error) {
	return f.do(func(s limiter.Store) (limiter.Context, error) { return s.Increment(ctx, key, count, rate) })
}
