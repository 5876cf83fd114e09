package store

import (
	"sync"
)

// countCache remembers filtered totals per tenant and filter, each valid for
// exactly one tenant generation. Every write bumps its tenant's generation in
// its own transaction, so a count taken at generation G is exact for as long
// as G is current: no TTL, no staleness.
type countCache struct {
	mu      sync.Mutex
	max     int
	entries map[countKey]countEntry
}

type countKey struct{ tenant, filter string }

type countEntry struct {
	generation int64
	n          int
}

func newCountCache(max int) *countCache {
	return &countCache{max: max, entries: make(map[countKey]countEntry)}
}

func (c *countCache) get(tenant, filter string, generation int64) (int, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[countKey{tenant, filter}]
	if !ok || e.generation != generation {
		return 0, false
	}
	return e.n, true
}

func (c *countCache) put(tenant, filter string, generation int64, n int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.entries) >= c.max {
		// Evict an arbitrary tenth: map order is random enough for a cache
		// whose misses only cost one count query.
		drop := c.max/10 + 1
		for k := range c.entries {
			delete(c.entries, k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.entries[countKey{tenant, filter}] = countEntry{generation, n}
}
