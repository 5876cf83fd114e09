package store

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/incidentd/incidentd/model"
)

// Exact totalCount without a recount per write and without a row that
// every write touches. Each count is taken once, in one snapshot whose
// place in the event stream is known, and then rolled forward by the
// committed events (each carries the incident before and after the
// change: -1 where the before matched, +1 where the after does), in
// stream order, by this process's watcher. A reader uses a cached count
// only when it can prove the cache has seen every event its own snapshot
// holds: it asks the database, in one index probe, whether its tenant has
// events at or past the cache's front; if so it waits (briefly) for the
// watcher to pass the newest transaction it could see, and otherwise
// counts afresh. So a count is exact for a moment during the request, on
// every replica, and includes every write committed before the request
// began, the caller's own included, wherever it was written.

// historySize is how many applied events the cache keeps, so that a fresh
// count whose snapshot the watcher has passed meanwhile can catch up.
const historySize = 8192

// maxSkip bounds the events a fresh count may already hold past its
// position (see snapshotCount); a count holding more is not cached.
const maxSkip = 10_000

type countKey struct{ tenant, filter string }

type cell struct {
	status   model.Status
	severity model.Severity
}

// countEntry is one tenant's count for one filter (filter "" is the
// status x severity tally that answers every status and severity filter).
type countEntry struct {
	filter model.IncidentFilter
	tally  map[cell]int // filter ""
	n      int          // other filters
	// since: events before it are in the count already; skip: events at or
	// after it that the count's snapshot held anyway.
	since model.Position
	skip  map[model.Position]bool
	// epoch is the database server's (see Store.epoch) when it was counted.
	epoch string
}

func (e *countEntry) value(f *model.IncidentFilter) int {
	if e.tally == nil {
		return e.n
	}
	n := 0
	for c, k := range e.tally {
		if f.MatchesCounted(c.status, c.severity) {
			n += k
		}
	}
	return n
}

func (e *countEntry) add(inc *model.Incident, d int) {
	switch {
	case inc == nil || inc.IsDeleted:
	case e.tally != nil:
		e.tally[cell{inc.Status, inc.Severity}] += d
	case e.filter.Matches(inc):
		e.n += d
	}
}

// countCache holds the counts and the stream front they have been rolled
// forward to.
type countCache struct {
	mu       sync.Mutex
	max      int
	entries  map[countKey]*countEntry
	byTenant map[string]map[string]*countEntry
	// front: every event before it has been applied, none at or after it;
	// known once the watcher has reported.
	front model.Position
	known bool
	// epoch is the database server's the front belongs to: positions from
	// before a restart say nothing of the transaction ids after it.
	epoch string
	// moved is closed (and replaced) whenever front advances.
	moved chan struct{}
	// history holds the latest applied events: every event at or after
	// histFrom (and before front) is in it, in order.
	history  []*model.Event
	histFrom model.Position
	// fresh counts the counts taken afresh (tests tell them from cached ones).
	fresh atomic.Int64
}

func newCountCache(max int) *countCache {
	return &countCache{max: max, entries: map[countKey]*countEntry{}, byTenant: map[string]map[string]*countEntry{},
		moved: make(chan struct{})}
}

// holds reports whether the count was taken with the event at p in it:
// those before since, and the later ones its snapshot held.
func (entry *countEntry) holds(p model.Position) bool {
	return p.Compare(entry.since) < 0 || entry.skip[p]
}

// apply rolls entry forward by e when the entry does not hold it yet.
func (entry *countEntry) apply(e *model.Event) {
	if entry.holds(e.Pos) {
		return
	}
	entry.add(e.Before, -1)
	entry.add(e.Incident, +1)
}

// advance applies events (in stream order) and moves the front.
func (c *countCache) advance(evs []*model.Event, front model.Position) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known {
		c.histFrom = front
	}
	for _, e := range evs {
		for _, entry := range c.byTenant[e.TenantID] {
			entry.apply(e)
		}
	}
	c.history = append(c.history, evs...)
	if len(c.history) > 2*historySize { // trimmed in steps, not on every call
		drop := len(c.history) - historySize
		last := c.history[drop-1].Pos
		c.histFrom = model.Position{Tx: last.Tx, Seq: last.Seq + 1}
		c.history = append(c.history[:0:0], c.history[drop:]...)
	}
	if !c.known || front.Compare(c.front) > 0 {
		c.front, c.known = front, true
		close(c.moved)
		c.moved = make(chan struct{})
	}
}

// restart drops every count: a watcher starts at front, and the events
// before it that no watcher applied are missing from the cached counts; or
// the database restarted (a new epoch) and transaction ids it had handed
// out but not made durable may be handed out again, below the front.
func (c *countCache) restart(front model.Position, epoch string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.epoch = epoch
	c.entries, c.byTenant = map[countKey]*countEntry{}, map[string]map[string]*countEntry{}
	c.history, c.histFrom = nil, front
	c.front, c.known = front, true
	close(c.moved)
	c.moved = make(chan struct{})
}

// lookup returns the entry's value for f and the front it is exact at.
// lookup returns f's cached count as it stands: every event before the
// front that the count did not hold is in n; the entry (read only from
// here on: since and skip never change) says which later ones it holds.
func (c *countCache) lookup(key countKey, f *model.IncidentFilter) (n int, front model.Position, epoch string, entry *countEntry, ok bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e := c.entries[key]
	if e == nil || !c.known {
		return 0, model.Position{}, "", nil, false
	}
	return e.value(f), c.front, c.epoch, e, true
}

// install caches a fresh count, first rolling it forward by the events the
// watcher applied meanwhile (from history); a count older than the history
// is not cached.
func (c *countCache) install(key countKey, e *countEntry) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.known || e.since.Compare(c.histFrom) < 0 || e.epoch != c.epoch {
		return
	}
	for _, ev := range c.history {
		if ev.TenantID == key.tenant {
			e.apply(ev)
		}
	}
	if len(c.entries) >= c.max {
		// Evict an arbitrary tenth: map order is random enough for a cache
		// whose misses cost one count.
		drop := c.max/10 + 1
		for k := range c.entries {
			c.remove(k)
			if drop--; drop == 0 {
				break
			}
		}
	}
	c.remove(key)
	c.entries[key] = e
	if c.byTenant[key.tenant] == nil {
		c.byTenant[key.tenant] = map[string]*countEntry{}
	}
	c.byTenant[key.tenant][key.filter] = e
}

func (c *countCache) remove(k countKey) {
	delete(c.entries, k)
	if m := c.byTenant[k.tenant]; m != nil {
		delete(m, k.filter)
		if len(m) == 0 {
			delete(c.byTenant, k.tenant)
		}
	}
}

// reached reports whether the front is at or past target, and the channel
// that closes when it next moves.
func (c *countCache) reached(target model.Position) (bool, <-chan struct{}) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.known && c.front.Compare(target) >= 0, c.moved
}

func countKeyOf(tenant string, f *model.IncidentFilter) countKey {
	if f.OnlyCounted() {
		return countKey{tenant: tenant}
	}
	return countKey{tenant: tenant, filter: f.Key()}
}

// countCheck is a cached count and what the database adds to it: the
// tenant's events at or after the cache's front that the reader's snapshot
// holds (the watcher has not applied them yet, or they wait for an older
// transaction), so that the count is exact for that snapshot without
// waiting for the watcher.
type countCheck struct {
	n     int
	front model.Position
	epoch string
	entry *countEntry // for holds: the events after front it has already
	// cached: there is a count; checked: the database answered.
	cached, checked bool
	missing         []missedEvent
	// overflow: more than maxCatchUp events are missing; count afresh.
	overflow bool
}

// missedEvent is an event's position and incident before and after (nil: none).
type missedEvent struct {
	pos           model.Position
	before, after *model.Incident
}

// maxCatchUp bounds the events a reader applies itself; beyond it (the
// stream is held back, say by a long transaction) it counts afresh.
const maxCatchUp = 200

// precheck looks f's count up and, when there is one, returns the
// statement that checks it, to send with the caller's own (one round trip).
func (s *Store) precheck(tenant string, f *model.IncidentFilter) (*countCheck, *stmt) {
	n, front, epoch, entry, ok := s.counts.lookup(countKeyOf(tenant, f), f)
	if !ok {
		return &countCheck{}, nil
	}
	st := s.catchUpStmt(tenant, front)
	return &countCheck{n: n, front: front, epoch: epoch, entry: entry, cached: true}, &st
}

// catchUpStmt reads the database's epoch and the tenant's events at or
// after front, in order.
func (s *Store) catchUpStmt(tenant string, front model.Position) stmt {
	return stmt{`SELECT x.epoch, e.tx, e.id, e.payload FROM (SELECT ` + s.epoch() + ` AS epoch) x
		LEFT JOIN (SELECT tx, id, payload FROM events WHERE tenant_id = $1 AND (tx, id) >= ($2, $3) ORDER BY tenant_id, tx, id LIMIT $4) e ON true
		ORDER BY e.tx, e.id`,
		[]any{tenant, front.Tx, front.Seq, maxCatchUp + 1}}
}

// scan reads the answer of catchUpStmt. A count from another epoch of the
// database cannot be rolled forward: it is counted afresh.
func (c *countCheck) scan(r rows) error {
	for r.Next() {
		if len(c.missing) == maxCatchUp {
			c.overflow = true
			break
		}
		var m missedEvent
		var epoch string
		var tx, id *int64
		var payload []byte
		if err := r.Scan(&epoch, &tx, &id, &payload); err != nil {
			return err
		}
		if epoch != c.epoch {
			c.overflow = true
			break
		}
		if tx == nil {
			continue // no event: the left join's empty row
		}
		m.pos = model.Position{Tx: *tx, Seq: *id}
		var p eventPayload
		if err := json.Unmarshal(payload, &p); err != nil || p.After == nil {
			return fmt.Errorf("count check: decode event: %v", err)
		}
		m.after = p.After.toModel()
		if p.Before != nil {
			m.before = p.Before.toModel()
		}
		c.missing = append(c.missing, m)
	}
	c.checked = true
	return r.Err()
}

// count returns the exact number of the tenant's live incidents matching
// f; c, when not nil, is a check already made (see precheck).
func (s *Store) count(ctx context.Context, tenant string, f *model.IncidentFilter, c *countCheck) (int, error) {
	key := countKeyOf(tenant, f)
	if c == nil || (c.cached && !c.checked) {
		var st *stmt
		if c, st = s.precheck(tenant, f); st != nil {
			r, err := s.query(ctx, st.sql, st.args...)
			if err == nil {
				err = c.scan(r)
				r.Close()
			}
			if err != nil {
				return 0, model.Internal(err, "count incidents")
			}
		}
	}
	if c.cached && !c.overflow {
		return c.value(f), nil
	}
	e, err := s.snapshotCount(ctx, tenant, f, key.filter == "")
	if err != nil {
		return 0, model.Internal(err, "count incidents")
	}
	n := e.value(f)
	if e.skip != nil {
		s.counts.install(key, e)
	}
	return n, nil
}

// value is the cached count with the missing events its entry does not
// hold applied (a count installed ahead of the watcher holds some of them).
func (c *countCheck) value(f *model.IncidentFilter) int {
	n := c.n
	for _, m := range c.missing {
		if !c.entry.holds(m.pos) {
			n += matches(f, m.after) - matches(f, m.before)
		}
	}
	return n
}

func matches(f *model.IncidentFilter, inc *model.Incident) int {
	if f.Matches(inc) {
		return 1
	}
	return 0
}

// snapshotCount counts f in one statement, and so in one snapshot, and
// says where in the stream that snapshot stands: every event before
// since, and the listed ones after it, are in the count; no other.
// On PostgreSQL since is the snapshot's oldest running transaction: every
// older one has ended and its events are in. On SQLite (one writer) it
// follows the newest event.
func (s *Store) snapshotCount(ctx context.Context, tenant string, f *model.IncidentFilter, tally bool) (*countEntry, error) {
	s.counts.fresh.Add(1)
	w := incidents{s}.filter(tenant, f)
	inner := `SELECT '' AS status, '' AS severity, count(*) AS n FROM incidents WHERE ` + w.String()
	if tally {
		inner = `SELECT status, severity, count(*) AS n FROM incidents WHERE tenant_id = $1 AND NOT is_deleted GROUP BY status, severity`
		w.args = w.args[:1]
	}
	q := `SELECT x.tx, x.seq, ` + s.epoch() + `, (SELECT string_agg(e.tx::text || ':' || e.id::text, ',') FROM events e WHERE e.tenant_id = $1 AND e.tx >= x.tx),
			c.status, c.severity, c.n
		FROM (SELECT ` + s.gate() + ` AS tx, 0 AS seq) x LEFT JOIN (` + inner + `) c ON true`
	if !s.pg {
		q = `SELECT x.tx, x.seq, ` + s.epoch() + `, NULL, c.status, c.severity, c.n
		FROM (SELECT 0 AS tx, COALESCE((SELECT MAX(id) FROM events), 0) + 1 AS seq) x LEFT JOIN (` + inner + `) c ON true`
	}
	rows, err := s.query(ctx, q, w.args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	e := &countEntry{filter: *f}
	if tally {
		e.tally = map[cell]int{}
	}
	var skip *string
	for rows.Next() {
		var st, sv *string
		var n *int
		if err := rows.Scan(&e.since.Tx, &e.since.Seq, &e.epoch, &skip, &st, &sv, &n); err != nil {
			return nil, err
		}
		switch {
		case n == nil:
		case tally:
			e.tally[cell{model.Status(*st), model.Severity(*sv)}] += *n
		default:
			e.n = *n
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	e.skip = map[model.Position]bool{}
	if skip != nil {
		list := strings.Split(*skip, ",")
		if len(list) > maxSkip {
			e.skip = nil // fine for this answer, too big to keep
			return e, nil
		}
		for _, item := range list {
			txs, ids, _ := strings.Cut(item, ":")
			tx, err1 := strconv.ParseInt(txs, 10, 64)
			id, err2 := strconv.ParseInt(ids, 10, 64)
			if err1 != nil || err2 != nil {
				return nil, fmt.Errorf("count: bad position %q", item)
			}
			e.skip[model.Position{Tx: tx, Seq: id}] = true
		}
	}
	return e, nil
}
