package store

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/incidentd/incidentd/model"
)

// The event stream. Every committed change writes one row to events in its
// own transaction (the outbox). No lock orders them: on PostgreSQL each row
// records the id of the transaction that wrote it (a column default), and
// rows are read in (transaction id, row id) order, but only below the
// oldest transaction still running, whose rows could otherwise still
// appear before ones already read. A position, once read, therefore never
// gains a predecessor, and every replica reads the same order. A long
// transaction delays delivery of what commits after it began (by as long
// as it runs) but never reorders or loses it. On SQLite, with one writer,
// row ids grow in commit order.
//
// The oldest running transaction (the gate) is not durable: after a crash
// PostgreSQL hands out again the transaction ids it had handed out but not
// written to its log, which can lie below a gate read before the crash.
// Committed events' ids are durable (a commit waits for its log), so the
// watcher reads on from the last event it read, never from a gate, and
// whatever else trusts a gate (the counts) carries the server's epoch (its
// start time) and starts over when it changes.

// notifyChannel wakes other instances' watchers on PostgreSQL. It carries
// no event: the table is the only truth, so a lost notification only
// delays (every watcher also looks on its own, see watchIdle).
const notifyChannel = "incidentd_events"

// eventPayload is the stored form of an event.
type eventPayload struct {
	After  *incidentRow `json:"after,omitempty"`
	Before *incidentRow `json:"before,omitempty"`
	// Components are those whose affect the change added, removed or changed.
	Components []string `json:"components,omitempty"`
}

// eventPrefix starts every event id clients see.
const eventPrefix = "evt_"

// appendEvent queues the outbox row of a change in t; once t commits, this
// instance's watcher is woken and the others are notified.
func (s *Store) appendEvent(ctx context.Context, t *txn, typ model.EventType, before, after *model.Incident, components []string) error {
	p := eventPayload{After: toRow(after), Components: components}
	if before != nil {
		p.Before = toRow(before)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	t.onCommit(s.committed)
	return t.exec(ctx, "insert event", `INSERT INTO events (tenant_id, type, resource_id, payload, created_at) VALUES ($1, $2, $3, $4, $5)`,
		after.TenantID, string(typ), after.ID, string(raw), newDBTime(s.clock.Now()))
}

// committed wakes the local watcher after a write commits, and asks the
// notifier to wake the other instances.
func (s *Store) committed() {
	s.wake()
	select {
	case s.notify <- struct{}{}:
	default: // a notification is pending already
	}
}

// wake asks the local watcher to read the stream now.
func (s *Store) wake() {
	select {
	case s.poke <- struct{}{}:
	default: // a wake-up is pending already; it will read this event too
	}
}

// fannedOut keeps events at or before the webhook cursor (fanned out).
const fannedOut = `(tx, id) <= (SELECT tx, seq FROM webhook_cursor WHERE id = 1)`

const eventColumns = "tx, id, tenant_id, type, payload, created_at"

// scanEvent reads one row of eventColumns.
func scanEvent(seal *sealer, r rows) (*model.Event, error) {
	var pos model.Position
	var tenant, typ string
	var payload []byte
	var at dbTime
	if err := r.Scan(&pos.Tx, &pos.Seq, &tenant, &typ, &payload, &at); err != nil {
		return nil, err
	}
	return decodeEvent(seal, pos, tenant, typ, payload, at)
}

func decodeEvent(seal *sealer, pos model.Position, tenant, typ string, payload []byte, at dbTime) (*model.Event, error) {
	e := model.Event{Pos: pos, TenantID: tenant}
	var p eventPayload
	if err := json.Unmarshal(payload, &p); err != nil || p.After == nil {
		return nil, fmt.Errorf("decode event %d: %v", e.Pos.Seq, err)
	}
	e.Type, e.At, e.Components = model.EventType(typ), at.Time, p.Components
	e.Incident = p.After.toModel()
	if p.Before != nil {
		e.Before = p.Before.toModel()
	}
	e.Cursor = seal.token(eventPrefix, e.TenantID, e.Pos)
	return &e, nil
}

// gate is the SQL for "the oldest transaction still running": positions
// below it are final. SQLite's committed rows are all final.
func (s *Store) gate() string {
	if s.pg {
		return `pg_snapshot_xmin(pg_current_snapshot())::text::bigint`
	}
	return `9223372036854775807`
}

// epoch is the SQL for the database server's epoch: it changes when the
// server restarts (or another server takes over), and with it what a gate
// read before means. SQLite has no gate to distrust.
func (s *Store) epoch() string {
	if s.pg {
		return `(extract(epoch from pg_postmaster_start_time()) * 1000000)::bigint::text`
	}
	return `''`
}

// Events returns the event log service.
func (s *Store) Events() model.EventLog { return eventLog{s} }

type eventLog struct{ s *Store }

func (l eventLog) ParsePosition(ctx context.Context, token string) (model.Position, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return model.Position{}, err
	}
	if token == model.StreamStart {
		return model.Position{}, nil
	}
	seal, err := l.s.sealer(ctx)
	if err != nil {
		return model.Position{}, model.Internal(err, "read event id")
	}
	pos, ok := seal.open(eventPrefix, p.TenantID, token)
	if !ok {
		return model.Position{}, model.Invalid("invalid resume position",
			model.FieldError{Field: "after", Message: "after must be the id of an event of this tenant"})
	}
	return pos, nil
}

func (l eventLog) IncidentEvents(ctx context.Context, after model.Position, limit int) ([]*model.Event, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > model.MaxReplay {
		return nil, model.Invalid("invalid replay", model.FieldError{Field: "limit", Message: fmt.Sprintf("limit must be between 1 and %d", model.MaxReplay)})
	}
	seal, err := l.s.sealer(ctx)
	if err != nil {
		return nil, model.Internal(err, "replay events")
	}
	rows, err := l.s.query(ctx, `SELECT `+eventColumns+` FROM events WHERE tenant_id = $1 AND (tx, id) > ($2, $3) AND tx < `+l.s.gate()+`
		ORDER BY tx, id LIMIT $4`, p.TenantID, after.Tx, after.Seq, limit)
	if err != nil {
		return nil, model.Internal(err, "replay events")
	}
	var evs []*model.Event
	for rows.Next() {
		e, err := scanEvent(seal, rows)
		if err != nil {
			rows.Close()
			return nil, model.Internal(err, "replay events")
		}
		evs = append(evs, e)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, model.Internal(err, "replay events")
	}
	// Read the watermark after the events: a prune between the two would
	// otherwise make a lossy replay look complete.
	var pruned model.Position
	err = l.s.queryRow(ctx, `SELECT pruned_tx, pruned_seq FROM event_retention WHERE tenant_id = $1`, p.TenantID).Scan(&pruned.Tx, &pruned.Seq)
	if err != nil && !isNoRows(err) {
		return nil, model.Internal(err, "read retention")
	}
	if after != (model.Position{}) && after.Compare(pruned) < 0 {
		return nil, model.Invalid("events after this position are no longer retained: reload the current state and subscribe without after",
			model.FieldError{Field: "after", Message: "after is older than the event retention window"})
	}
	return evs, nil
}

// PruneEvents deletes events written before cutoff and records, per tenant,
// the newest position it deleted, so that a resume from before it is
// refused instead of silently lossy. It keeps the events the webhook
// fan-out has not read yet, however old: they are its only record.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		var err error
		if s.pg {
			// One statement: the rows deleted are exactly those recorded.
			return t.queryRow(ctx, `WITH gone AS (DELETE FROM events WHERE created_at < $1 AND `+fannedOut+` RETURNING tenant_id, tx, id),
				kept AS (INSERT INTO event_retention (tenant_id, pruned_tx, pruned_seq)
					SELECT DISTINCT ON (tenant_id) tenant_id, tx, id FROM gone ORDER BY tenant_id, tx DESC, id DESC
					ON CONFLICT (tenant_id) DO UPDATE SET pruned_tx = excluded.pruned_tx, pruned_seq = excluded.pruned_seq
					WHERE (excluded.pruned_tx, excluded.pruned_seq) > (event_retention.pruned_tx, event_retention.pruned_seq))
				SELECT count(*) FROM gone`, newDBTime(cutoff)).Scan(&n)
		}
		// One writer: the two statements see the same rows.
		if err := t.exec(ctx, "prune events", `INSERT INTO event_retention (tenant_id, pruned_tx, pruned_seq)
			SELECT tenant_id, 0, MAX(id) FROM events WHERE created_at < $1 AND `+fannedOut+` GROUP BY tenant_id
			ON CONFLICT (tenant_id) DO UPDATE SET pruned_seq = MAX(event_retention.pruned_seq, excluded.pruned_seq)`, newDBTime(cutoff)); err != nil {
			return err
		}
		n, err = t.execNow(ctx, "prune events", `DELETE FROM events WHERE created_at < $1 AND `+fannedOut, newDBTime(cutoff))
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

// Watcher reads the stream: every committed event of every tenant, in
// position order. It is the one read that spans tenants; the hub routes
// each event to its own tenant's subscribers only. It rolls the store's
// counts forward before handing events on.
type Watcher struct {
	s *Store
	// front is where the counts stand (a gate: see epoch); read is after the
	// last event read, where the next poll starts.
	front, read model.Position
	// epoch is the database server's at the last poll.
	epoch string
	// listener is the LISTEN connection (PostgreSQL), open before
	// NewWatcher returns so that no key change made once the server serves
	// goes unheard.
	listener *pgx.Conn
	// afterPass, if set (tests), is told after each pass whether committed
	// events were left waiting, so that a test can know the watcher looked.
	afterPass func(pending bool)
}

// NewWatcher starts at the current end of the stream.
func (s *Store) NewWatcher(ctx context.Context) (*Watcher, error) {
	w := &Watcher{s: s}
	// The front is the gate; reading starts after the newest event below it.
	q := `SELECT g.gate, 0, COALESCE(l.tx, 0), COALESCE(l.id, 0) + 1, ` + s.epoch() + ` FROM (SELECT ` + s.gate() + ` AS gate) g
		LEFT JOIN LATERAL (SELECT tx, id FROM events WHERE tx < g.gate ORDER BY tx DESC, id DESC LIMIT 1) l ON true`
	if !s.pg {
		q = `SELECT 0, n, 0, n, '' FROM (SELECT COALESCE((SELECT MAX(id) FROM events), 0) + 1 AS n)`
	}
	if err := s.queryRow(ctx, q).Scan(&w.front.Tx, &w.front.Seq, &w.read.Tx, &w.read.Seq, &w.epoch); err != nil {
		return nil, fmt.Errorf("watch events: %w", err)
	}
	if _, err := s.sealer(ctx); err != nil {
		return nil, fmt.Errorf("watch events: %w", err)
	}
	if s.pg {
		conn, err := s.listenConn(ctx)
		if err != nil {
			return nil, err
		}
		w.listener = conn
	}
	s.counts.restart(w.front, w.epoch)
	return w, nil
}

// ListenerName is the application_name of this store's LISTEN connection,
// which makes it visible (and, in tests, killable) in pg_stat_activity.
func (s *Store) ListenerName() string { return "incidentd-listener-" + s.instance }

const (
	// watchIdle is how often an idle watcher looks at the stream anyway.
	watchIdle = time.Second
	// watchPending bounds the wait between looks while committed events
	// wait for an older transaction to end.
	watchPending = 50 * time.Millisecond
	// notifySpacing spaces this instance's wake-ups of the others.
	notifySpacing = 5 * time.Millisecond
	pollPage      = 1000
)

// Run delivers events, in order, until ctx ends. keys is told of every API
// key that changed on any instance, as "r:<prefix>" (revoked) or
// "c:<prefix>" (changed), so that caches forget it at once; "" means
// every key (notifications may have been missed).
func (w *Watcher) Run(ctx context.Context, deliver func([]*model.Event), keys func(prefix string)) {
	if w.s.pg {
		go w.s.listen(ctx, w.listener, keys)
		go w.s.notifier(ctx)
	}
	seal, err := w.s.sealer(ctx)
	if err != nil {
		slog.Error("event watcher stopped", "err", err)
		return
	}
	wait := watchIdle
	for {
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return
		case <-w.s.poke:
		case <-timer.C:
		}
		timer.Stop()
		pending, err := w.catchUp(ctx, seal, deliver)
		if w.afterPass != nil && err == nil {
			w.afterPass(pending)
		}
		switch {
		case err != nil:
			if ctx.Err() != nil {
				return
			}
			slog.Warn("watch events", "err", err)
			wait = watchPending
		case pending:
			// Committed events wait for an older transaction: look again
			// soon, then less often.
			if wait >= watchIdle {
				wait = time.Millisecond
			} else {
				wait = min(wait*2, watchPending)
			}
		default:
			wait = watchIdle
		}
	}
}

// catchUp reads and delivers every final event after the front; pending
// says that later events exist but are not final yet.
func (w *Watcher) catchUp(ctx context.Context, seal *sealer, deliver func([]*model.Event)) (pending bool, err error) {
	for {
		from := w.read
		evs, p, err := w.poll(ctx, seal)
		if err != nil {
			return false, err
		}
		if p.epoch != w.epoch {
			// The database restarted: the counts' front may lie above
			// transaction ids it hands out again.
			slog.Warn("the database restarted: cached counts start over", "epoch", p.epoch)
			w.epoch = p.epoch
			w.s.counts.restart(from, p.epoch)
		}
		w.front, w.read, pending = p.front, p.read, p.pending
		w.s.counts.advance(evs, w.front)
		if len(evs) > 0 {
			deliver(evs)
		}
		if len(evs) < pollPage {
			return pending, nil
		}
	}
}

// polled is what a poll found beside the events: the new front and read
// positions, whether committed events wait beyond the front, and the
// database's epoch.
type polled struct {
	front, read model.Position
	pending     bool
	epoch       string
}

// poll reads one page of final events after the last one read, in one
// statement (one snapshot).
func (w *Watcher) poll(ctx context.Context, seal *sealer) ([]*model.Event, polled, error) {
	q := `SELECT g.gate, ` + w.s.epoch() + `, (SELECT tx FROM events WHERE tx >= g.gate ORDER BY tx LIMIT 1) IS NOT NULL, e.tx, e.id, e.tenant_id, e.type, e.payload, e.created_at
		FROM (SELECT ` + w.s.gate() + ` AS gate) g
		LEFT JOIN LATERAL (SELECT ` + eventColumns + ` FROM events WHERE (tx, id) >= ($1, $2) AND tx < g.gate ORDER BY tx, id LIMIT $3) e ON true`
	if !w.s.pg {
		q = `SELECT 0, '', false, e.tx, e.id, e.tenant_id, e.type, e.payload, e.created_at
			FROM (SELECT 1) g LEFT JOIN (SELECT ` + eventColumns + ` FROM events WHERE (tx, id) >= ($1, $2) ORDER BY tx, id LIMIT $3) e ON true`
	}
	p := polled{front: w.front, read: w.read, epoch: w.epoch}
	rows, err := w.s.query(ctx, q, w.read.Tx, w.read.Seq, pollPage)
	if err != nil {
		return nil, p, err
	}
	defer rows.Close()
	var evs []*model.Event
	var gate int64
	for rows.Next() {
		var tx, id *int64
		var tenant, typ *string
		var payload []byte
		var at *dbTime
		if err := rows.Scan(&gate, &p.epoch, &p.pending, &tx, &id, &tenant, &typ, &payload, &at); err != nil {
			return nil, p, err
		}
		if tx == nil {
			continue // no event: the left join's empty row
		}
		e, err := decodeEvent(seal, model.Position{Tx: *tx, Seq: *id}, *tenant, *typ, payload, *at)
		if err != nil {
			return nil, p, err
		}
		evs = append(evs, e)
	}
	if err := rows.Err(); err != nil {
		return nil, p, err
	}
	if n := len(evs); n > 0 {
		last := evs[n-1].Pos
		p.read = model.Position{Tx: last.Tx, Seq: last.Seq + 1}
		if p.read.Compare(p.front) > 0 || p.epoch != w.epoch {
			p.front = p.read
		}
	}
	if w.s.pg && len(evs) < pollPage && (gate > p.front.Tx || p.epoch != w.epoch) {
		p.front = model.Position{Tx: gate}
	}
	return evs, p, nil
}

// listen holds the LISTEN connection (PostgreSQL): notifications of
// events wake the watcher; key changes go to keys. It reconnects with
// backoff, and tells keys to forget everything after each (re)connection,
// since changes may have gone unheard.
func (s *Store) listen(ctx context.Context, conn *pgx.Conn, keys func(string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		var err error
		if conn == nil {
			conn, err = s.listenConn(ctx)
		}
		if err != nil {
			if ctx.Err() != nil {
				return
			}
			slog.Warn("event listener", "err", err, "retry_in", backoff.String())
			select {
			case <-time.After(backoff):
			case <-ctx.Done():
				return
			}
			backoff = min(backoff*2, 5*time.Second)
			continue
		}
		backoff = 100 * time.Millisecond
		keys("") // changes made while no connection listened went unheard
		s.wake()
		for {
			n, err := conn.WaitForNotification(ctx)
			if err != nil {
				if ctx.Err() == nil {
					slog.Warn("event listener: connection lost; reconnecting", "err", err)
				}
				break
			}
			if n.Channel == keysChannel {
				keys(n.Payload)
			} else {
				s.wake()
			}
		}
		conn.Close(context.Background())
		conn = nil
	}
	if conn != nil {
		conn.Close(context.Background())
	}
}

func (s *Store) listenConn(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return nil, fmt.Errorf("event listener: %w", err)
	}
	cfg.RuntimeParams["application_name"] = s.ListenerName()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("event listener: connect: %w", redactErr(err, s.url))
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel+"; LISTEN "+keysChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("event listener: listen: %w", err)
	}
	return conn, nil
}

// notifier wakes the other instances after local commits (PostgreSQL),
// at most once per notifySpacing: outside the writers' transactions, so
// that they never queue on NOTIFY's commit lock.
func (s *Store) notifier(ctx context.Context) {
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.notify:
		}
		if _, err := s.exec(ctx, `SELECT pg_notify($1, '')`, notifyChannel); err != nil && ctx.Err() == nil {
			slog.Warn("notify other instances", "err", err)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(notifySpacing):
		}
	}
}
