package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

// notifyChannel carries committed events between instances on PostgreSQL.
const notifyChannel = "incidentd_events"

// maxNotifyPayload keeps NOTIFY payloads under PostgreSQL's 8000-byte limit;
// larger events are sent by reference and fetched.
const maxNotifyPayload = 7900

// eventPayload is the stored (and notified) form of an event.
type eventPayload struct {
	ID     int64        `json:"id,omitempty"`
	Tenant string       `json:"tenant,omitempty"`
	Type   string       `json:"type,omitempty"`
	At     *dbTime      `json:"at,omitempty"`
	After  *incidentRow `json:"after,omitempty"`
	Before *incidentRow `json:"before,omitempty"`
	// Components are those whose affect the change added, removed or changed.
	Components []string `json:"components,omitempty"`
	// Ref marks a notification that only names the event: fetch it.
	Ref bool `json:"ref,omitempty"`
}

// appendEvent writes the outbox row of a change in its transaction. On
// PostgreSQL a per-tenant advisory lock, held until commit, makes a tenant's
// event ids grow in commit order (resume relies on it), and NOTIFY, which
// PostgreSQL delivers only after commit and in commit order, wakes every
// instance's watcher.
func (s *Store) appendEvent(ctx context.Context, tx bun.Tx, typ model.EventType, before, after *model.Incident) error {
	return s.appendEventTouching(ctx, tx, typ, before, after, nil)
}

// appendEventTouching is appendEvent for a change that also added, removed
// or changed the affects of components.
func (s *Store) appendEventTouching(ctx context.Context, tx bun.Tx, typ model.EventType, before, after *model.Incident, components []string) error {
	tenant := after.TenantID
	if st := txStateOf(ctx); s.pg && (st == nil || !st.eventsLocked) {
		if _, err := s.bound(tx).ExecContext(ctx, `SELECT pg_advisory_xact_lock(hashtextextended(?, 0))`, "events:"+tenant); err != nil {
			return fmt.Errorf("lock events: %w", err)
		}
		if st != nil { // held until commit: one transaction writes one tenant's events
			st.eventsLocked = true
		}
	}
	at := newDBTime(after.UpdatedAt)
	p := eventPayload{After: toRow(after), Components: components}
	if before != nil {
		p.Before = toRow(before)
	}
	raw, err := json.Marshal(p)
	if err != nil {
		return fmt.Errorf("encode event: %w", err)
	}
	if !s.pg {
		_, err = s.bound(tx).ExecContext(ctx, `INSERT INTO events (tenant_id, type, resource_id, payload, created_at)
			VALUES (?, ?, ?, ?, ?)`, tenant, string(typ), after.ID, string(raw), at)
		if err != nil {
			return fmt.Errorf("insert event: %w", err)
		}
		return nil
	}
	// The notification carries the event; its id is known only once the row
	// is in, so the insert and the NOTIFY go in one statement that splices
	// the id into the payload's first member.
	note := eventPayload{Tenant: tenant, Type: string(typ), At: &at, After: p.After, Before: p.Before, Components: components}
	msg, err := json.Marshal(note)
	if err != nil {
		return fmt.Errorf("encode notification: %w", err)
	}
	if len(msg)+len(`"id":9223372036854775807,`) > maxNotifyPayload {
		msg = []byte(`{"ref":true}`) // too large for NOTIFY: watchers fetch it by id
	}
	_, err = s.bound(tx).ExecContext(ctx, `WITH e AS (INSERT INTO events (tenant_id, type, resource_id, payload, created_at)
			VALUES (?, ?, ?, ?, ?) RETURNING id)
		SELECT pg_notify(?, '{"id":' || id || ',' || ?) FROM e`,
		tenant, string(typ), after.ID, string(raw), at, notifyChannel, string(msg[1:]))
	if err != nil {
		return fmt.Errorf("insert and notify event: %w", err)
	}
	return nil
}

// committed wakes the local watcher after a write commits (SQLite has no NOTIFY).
func (s *Store) committed() {
	if s.pg {
		return
	}
	select {
	case s.poke <- struct{}{}:
	default: // a wake-up is already pending; it will read this event too
	}
}

type eventRow struct {
	ID       int64
	TenantID string
	Type     string
	Payload  string
	At       dbTime
}

func (r *eventRow) toModel() (*model.Event, error) {
	var p eventPayload
	if err := json.Unmarshal([]byte(r.Payload), &p); err != nil || p.After == nil {
		return nil, fmt.Errorf("decode event %d: %v", r.ID, err)
	}
	e := &model.Event{ID: r.ID, TenantID: r.TenantID, Type: model.EventType(r.Type), Incident: p.After.toModel(), At: r.At.Time, Components: p.Components}
	if p.Before != nil {
		e.Before = p.Before.toModel()
	}
	return e, nil
}

func (s *Store) queryEvents(ctx context.Context, q string, args ...any) ([]*model.Event, error) {
	s.stmts.Add(1)
	rows, err := s.db.DB.QueryContext(ctx, s.rebind(q), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*model.Event
	for rows.Next() {
		var r eventRow
		var payload []byte
		if err := rows.Scan(&r.ID, &r.TenantID, &r.Type, &payload, &r.At); err != nil {
			return nil, err
		}
		r.Payload = string(payload)
		e, err := r.toModel()
		if err != nil {
			return nil, err
		}
		out = append(out, e)
	}
	return out, rows.Err()
}

const eventColumns = "id, tenant_id, type, payload, created_at"

// Events returns the event log service.
func (s *Store) Events() model.EventLog { return eventLog{s} }

type eventLog struct{ s *Store }

func (l eventLog) IncidentEvents(ctx context.Context, after int64, limit int) ([]*model.Event, error) {
	p, err := model.Authorize(ctx, model.ScopeIncidentsRead)
	if err != nil {
		return nil, err
	}
	if limit < 1 || limit > model.MaxReplay {
		return nil, model.Invalid("invalid replay", model.FieldError{Field: "limit", Message: fmt.Sprintf("limit must be between 1 and %d", model.MaxReplay)})
	}
	if after < 0 {
		return nil, model.Invalid("invalid replay", model.FieldError{Field: "after", Message: "after must be an event id"})
	}
	evs, err := l.s.queryEvents(ctx, "SELECT "+eventColumns+" FROM events WHERE tenant_id = ? AND id > ? ORDER BY id LIMIT "+strconv.Itoa(limit), p.TenantID, after)
	if err != nil {
		return nil, model.Internal(err, "replay events")
	}
	// Read the watermark after the events: a prune between the two would
	// otherwise make a lossy replay look complete.
	pruned, err := l.s.scalar(ctx, `SELECT COALESCE(MAX(pruned_below), 0) FROM event_retention WHERE tenant_id = ?`, p.TenantID)
	if err != nil {
		return nil, model.Internal(err, "read retention")
	}
	if after < pruned-1 {
		return nil, model.Invalid("events after "+strconv.FormatInt(after, 10)+" are no longer retained: reload the current state and subscribe without after",
			model.FieldError{Field: "after", Message: "after is older than the event retention window"})
	}
	return evs, nil
}

// PruneEvents deletes events older than cutoff and records, per tenant, the
// id below which its events are gone, so that a resume from before it is
// refused instead of silently lossy.
func (s *Store) PruneEvents(ctx context.Context, cutoff time.Time) (int64, error) {
	var n int64
	keep := "GREATEST(event_retention.pruned_below, excluded.pruned_below)"
	if !s.pg {
		keep = "MAX(event_retention.pruned_below, excluded.pruned_below)"
	}
	err := s.tx(ctx, func(ctx context.Context, tx bun.Tx) error {
		var maxID sql.NullInt64
		if err := tx.QueryRowContext(ctx, `SELECT MAX(id) FROM events WHERE created_at < ?`, newDBTime(cutoff)).Scan(&maxID); err != nil {
			return err
		}
		if !maxID.Valid {
			return nil
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO event_retention (tenant_id, pruned_below)
			SELECT tenant_id, MAX(id) + 1 FROM events WHERE id <= ? GROUP BY tenant_id
			ON CONFLICT (tenant_id) DO UPDATE SET pruned_below = `+keep, maxID.Int64)
		if err != nil {
			return err
		}
		res, err := tx.ExecContext(ctx, `DELETE FROM events WHERE id <= ?`, maxID.Int64)
		if err != nil {
			return err
		}
		n, _ = res.RowsAffected()
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("prune events: %w", err)
	}
	return n, nil
}

// Watcher is the system feed of the live hub: every committed event of every
// tenant, in commit order. It is the one read that spans tenants; the hub
// routes each event to its own tenant's subscribers only.
type Watcher struct {
	s    *Store
	last int64
	conn *pgx.Conn // PostgreSQL: the LISTEN connection
}

// NewWatcher starts listening before it reads the current position, so that
// no event committed from now on can fall between the two.
func (s *Store) NewWatcher(ctx context.Context) (*Watcher, error) {
	w := &Watcher{s: s}
	if s.pg {
		conn, err := s.listen(ctx)
		if err != nil {
			return nil, err
		}
		w.conn = conn
	}
	last, err := s.scalar(ctx, `SELECT COALESCE(MAX(id), 0) FROM events`)
	if err != nil {
		w.close()
		return nil, fmt.Errorf("watch events: %w", err)
	}
	w.last = last
	return w, nil
}

// ListenerName is the application_name of this store's LISTEN connection,
// which makes it visible (and, in tests, killable) in pg_stat_activity.
func (s *Store) ListenerName() string { return "incidentd-listener-" + s.instance }

func (s *Store) listen(ctx context.Context) (*pgx.Conn, error) {
	cfg, err := pgx.ParseConfig(s.url)
	if err != nil {
		return nil, fmt.Errorf("event listener: %w", err)
	}
	cfg.RuntimeParams["application_name"] = s.ListenerName()
	conn, err := pgx.ConnectConfig(ctx, cfg)
	if err != nil {
		return nil, fmt.Errorf("event listener: connect: %w", err)
	}
	if _, err := conn.Exec(ctx, "LISTEN "+notifyChannel+"; LISTEN "+keysChannel); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("event listener: listen: %w", err)
	}
	return conn, nil
}

func (w *Watcher) close() {
	if w.conn != nil {
		w.conn.Close(context.Background())
		w.conn = nil
	}
}

// Run delivers events until ctx ends. When the feed may have missed events
// (the listener lost its connection), it calls gap before delivering again,
// so that subscribers can resume from the database, which replays exactly.
// keys is told of every API key that changed on any instance, as "r:<prefix>"
// (revoked) or "c:<prefix>" (changed), so that caches forget it at once; ""
// means every key.
func (w *Watcher) Run(ctx context.Context, deliver func([]*model.Event), gap func(), keys func(prefix string)) {
	defer w.close()
	if w.s.pg {
		w.runPG(ctx, deliver, func() { keys(""); gap() }, keys)
		return
	}
	w.runLocal(ctx, deliver, keys)
}

func (w *Watcher) runLocal(ctx context.Context, deliver func([]*model.Event), keys func(string)) {
	tick := time.NewTicker(time.Second) // a safety net; commits poke at once
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case prefix := <-w.s.keyPoke:
			keys(prefix)
			continue
		case <-w.s.poke:
		case <-tick.C:
		}
		if w.s.keyOverflow.CompareAndSwap(true, false) {
			keys("")
		}
		for {
			// SQLite has one writer, so ids are assigned in commit order.
			evs, err := w.s.queryEvents(ctx, "SELECT "+eventColumns+" FROM events WHERE id > ? ORDER BY id LIMIT 1000", w.last)
			if err != nil {
				if ctx.Err() == nil {
					slog.Warn("watch events", "err", err)
				}
				break
			}
			if len(evs) > 0 {
				w.last = evs[len(evs)-1].ID
				deliver(evs)
			}
			if len(evs) < 1000 {
				break
			}
		}
	}
}

// listenerIdle is how long the listener waits before checking that its
// connection is still alive.
const listenerIdle = 30 * time.Second

func (w *Watcher) runPG(ctx context.Context, deliver func([]*model.Event), gap func(), keys func(string)) {
	backoff := 100 * time.Millisecond
	for ctx.Err() == nil {
		if w.conn == nil {
			conn, err := w.s.listen(ctx)
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
			w.conn, backoff = conn, 100*time.Millisecond
			gap() // notifications sent while we were away are lost
		}
		wctx, cancel := context.WithTimeout(ctx, listenerIdle)
		n, err := w.conn.WaitForNotification(wctx)
		cancel()
		switch {
		case err == nil && n.Channel == keysChannel:
			keys(n.Payload)
		case err == nil:
			e, err := w.s.decodeNotification(ctx, n.Payload)
			if err != nil {
				slog.Warn("event listener: bad notification", "err", err)
				continue
			}
			deliver([]*model.Event{e})
		case ctx.Err() != nil:
			return
		case wctx.Err() != nil && w.conn.Ping(ctx) == nil:
			// idle, and the connection still answers
		default:
			slog.Warn("event listener: connection lost; subscribers will resume", "err", err)
			w.close()
		}
	}
}

func (s *Store) decodeNotification(ctx context.Context, payload string) (*model.Event, error) {
	var p eventPayload
	if err := json.Unmarshal([]byte(payload), &p); err != nil {
		return nil, err
	}
	if p.Ref {
		evs, err := s.queryEvents(ctx, "SELECT "+eventColumns+" FROM events WHERE id = ?", p.ID)
		if err != nil {
			return nil, err
		}
		if len(evs) == 0 {
			return nil, errors.New("event " + strconv.FormatInt(p.ID, 10) + " not found")
		}
		return evs[0], nil
	}
	if p.After == nil || p.At == nil {
		return nil, errors.New("notification without event")
	}
	e := &model.Event{ID: p.ID, TenantID: p.Tenant, Type: model.EventType(p.Type), Incident: p.After.toModel(), At: p.At.Time, Components: p.Components}
	if p.Before != nil {
		e.Before = p.Before.toModel()
	}
	return e, nil
}
