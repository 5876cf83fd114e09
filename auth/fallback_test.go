package auth

import (
	"sync"
	"testing"
	"time"

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
