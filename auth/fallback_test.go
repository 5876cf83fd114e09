package auth

import (
	"context"
	"errors"
	"runtime"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ulule/limiter/v3"

	"github.com/incidentd/incidentd/internal/testsvc"
)

// The rate limiter over a Redis that goes away and comes back (a
// redis-server of the test's own): requests keep being charged, now in this
// instance, so the budget still holds; Redis is tried again a second later
// (on the store's clock) and used again once it answers.
func TestRedisGoesAway(t *testing.T) {
	rd := testsvc.StartRedis(t)
	st, closeFn, err := NewRedisStore(t.Context(), rd.URL())
	if err != nil {
		t.Fatal(err)
	}
	defer closeFn() //nolint:errcheck
	fs := st.(*fallbackStore)
	var mu sync.Mutex
	now := time.Now()
	fs.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	var changes []bool
	fs.onChange = func(down bool, err error) {
		if down == (err == nil) {
			t.Errorf("change to down=%v with err %v", down, err)
		}
		changes = append(changes, down)
	}
	tiers, err := ParseTiers("default=3-H", nil)
	if err != nil {
		t.Fatal(err)
	}
	l := NewLimiter(fs, tiers)
	charge := func(what string, wantRemaining int64, wantReached bool) {
		t.Helper()
		u, err := l.Charge(t.Context(), "k", DefaultTier, 1)
		if err != nil || u.Remaining != wantRemaining || u.Reached != wantReached || u.Limit != 3 {
			t.Fatalf("%s: %+v %v, want remaining %d reached %v", what, u, err, wantRemaining, wantReached)
		}
	}

	charge("first, in Redis", 2, false)
	charge("second, in Redis", 1, false)
	if len(changes) != 0 {
		t.Fatalf("switched with Redis up: %v", changes)
	}

	rd.Stop()
	// Counted locally from zero: one budget more for this window, never none.
	charge("Redis gone", 2, false)
	if len(changes) != 1 || !changes[0] {
		t.Fatalf("changes %v, want one switch to local", changes)
	}
	charge("local", 1, false)
	charge("local", 0, false)
	charge("local, past the budget", 0, true)

	// Back: not tried again before a second has passed, then used again.
	rd.Start()
	charge("Redis back, before the retry", 0, true)
	if len(changes) != 1 {
		t.Fatalf("tried Redis before the retry time: %v", changes)
	}
	mu.Lock()
	now = now.Add(fallbackRetry)
	mu.Unlock()
	charge("Redis back (empty: it keeps nothing on disk)", 2, false)
	if len(changes) != 2 || changes[1] {
		t.Fatalf("changes %v, want a switch back to Redis", changes)
	}
}

// hangingStore answers with an error, or, while hang is open, not at all
// until it is closed (a Redis that hangs rather than refuses).
type hangingStore struct {
	limiter.Store
	calls atomic.Int32
	hang  chan struct{}
}

func (h *hangingStore) Increment(ctx context.Context, key string, n int64, r limiter.Rate) (limiter.Context, error) {
	h.calls.Add(1)
	if h.hang != nil {
		select { // as a timeout would end it, so that a failing test ends too
		case <-h.hang:
		case <-time.After(2 * time.Second):
		}
	}
	return limiter.Context{}, errors.New("redis: i/o timeout")
}

// While Redis is away, once the retry time has come one request tries it
// again; the others keep counting locally instead of all waiting out the
// timeout with it.
func TestOneProbeAtATime(t *testing.T) {
	shared := &hangingStore{}
	fs := newFallbackStore(shared)
	fs.onChange = nil
	var mu sync.Mutex
	now := time.Now()
	fs.now = func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	rate := limiter.Rate{Period: time.Hour, Limit: 100}
	if _, err := fs.Increment(t.Context(), "k", 1, rate); err != nil || shared.calls.Load() != 1 {
		t.Fatalf("first call: %v, %d calls to shared", err, shared.calls.Load())
	}
	// Down: local until the retry time.
	if _, err := fs.Increment(t.Context(), "k", 1, rate); err != nil || shared.calls.Load() != 1 {
		t.Fatalf("before the retry time: %v, %d calls to shared", err, shared.calls.Load())
	}
	mu.Lock()
	now = now.Add(fallbackRetry)
	mu.Unlock()
	shared.hang = make(chan struct{})
	probed := make(chan error)
	go func() {
		_, err := fs.Increment(t.Context(), "k", 1, rate)
		probed <- err
	}()
	for shared.calls.Load() != 2 {
		runtime.Gosched() // until the probe is inside shared
	}
	for i := range 5 {
		c, err := fs.Increment(t.Context(), "k", 1, rate)
		if err != nil || c.Remaining != int64(100-3-i) {
			t.Fatalf("call %d while the probe hangs: %+v %v", i, c, err)
		}
	}
	if n := shared.calls.Load(); n != 2 {
		t.Errorf("%d calls reached the hanging store, want the probe alone", n)
	}
	close(shared.hang)
	if err := <-probed; err != nil {
		t.Errorf("the probe, answered locally after its failure: %v", err)
	}
}
