package store

import (
	"context"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/incidentd/incidentd/model"
)

// ---- The engine's side: fan-out, leases, outcomes. These span tenants:
// only the webhook engine calls them, never a door.

// WebhookRender renders a message's body (the same bytes for every
// endpoint that receives it).
type WebhookRender func(m *model.WebhookMessage) ([]byte, error)

// lockWebhookCursor reads the fan-out's cursor under its lock (PostgreSQL;
// SQLite has one writer): whatever queues deliveries from the stream, or
// takes away the endpoints they are queued for, holds it.
func (s *Store) lockWebhookCursor(ctx context.Context, t *txn) (model.Position, error) {
	var cur model.Position
	lock := ``
	if s.pg {
		lock = ` FOR UPDATE`
	}
	if err := t.queryRow(ctx, `SELECT tx, seq FROM webhook_cursor WHERE id = 1`+lock).Scan(&cur.Tx, &cur.Seq); err != nil {
		return cur, fmt.Errorf("lock webhook cursor: %w", err)
	}
	return cur, nil
}

// FanOutWebhooks reads up to limit events after the webhook cursor, in the
// stream's order and under the same rule as the watcher (only positions
// below the oldest running transaction, so none can gain a predecessor),
// and in one transaction queues a delivery per (message, matching enabled
// endpoint) and moves the cursor past them. The cursor row is locked for
// the transaction (PostgreSQL), so that instances fan out in turn and each
// event exactly once. It returns how many events it read (limit: more may
// wait). An endpoint receives the events written at or after its creation.
func (s *Store) FanOutWebhooks(ctx context.Context, limit int, render WebhookRender) (int, error) {
	seal, err := s.sealer(ctx)
	if err != nil {
		return 0, fmt.Errorf("fan out webhooks: %w", err)
	}
	n := 0
	err = s.write(ctx, func(ctx context.Context, t *txn) error {
		cur, err := s.lockWebhookCursor(ctx, t)
		if err != nil {
			return err
		}
		// The gate is read in this statement, after the lock: it may lie
		// at or below this transaction's own id, which only defers later
		// events to the next call.
		rows, err := t.query(ctx, `SELECT `+eventColumns+` FROM events WHERE (tx, id) > ($1, $2) AND tx < `+s.gate()+`
			ORDER BY tx, id LIMIT $3`, cur.Tx, cur.Seq, limit)
		if err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		var evs []*model.Event
		for rows.Next() {
			e, err := scanEvent(seal, rows)
			if err != nil {
				rows.Close()
				return err
			}
			evs = append(evs, e)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read events: %w", err)
		}
		n = len(evs)
		if n == 0 {
			return nil
		}
		if err := s.queueWebhooks(ctx, t, evs, render); err != nil {
			return err
		}
		last := evs[n-1].Pos
		return t.exec(ctx, "move webhook cursor", `UPDATE webhook_cursor SET tx = $1, seq = $2 WHERE id = 1`, last.Tx, last.Seq)
	})
	if err != nil {
		return 0, fmt.Errorf("fan out webhooks: %w", err)
	}
	return n, nil
}

// MaintenanceFanOutPage bounds the windows one FanOutMaintenance call reads.
const MaintenanceFanOutPage = 200

// FanOutMaintenance queues the maintenance messages due: maintenance.created
// for each window created since, maintenance.started for each whose start
// has passed, maintenance.ended for each whose end has passed or that was
// deleted (Cancelled), each once and in that order per window, to the
// enabled endpoints that want them and existed at the message's moment. It
// runs under the webhook cursor's lock, like FanOutWebhooks, so that
// instances queue each message once. It returns how many windows it read
// (MaintenanceFanOutPage: more may be due).
func (s *Store) FanOutMaintenance(ctx context.Context, render WebhookRender) (int, error) {
	now := s.clock.Now()
	n := 0
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		n = 0
		if _, err := s.lockWebhookCursor(ctx, t); err != nil {
			return err
		}
		type pending struct {
			id, tenant, announced string
			startsAt, endsAt      dbTime
			cancelledAt           *dbTime
			snapshot              *string
		}
		rows, err := t.query(ctx, `SELECT window_id, tenant_id, announced, starts_at, ends_at, cancelled_at, snapshot FROM webhook_maintenance
			WHERE announced = '' OR cancelled_at IS NOT NULL OR (announced = $1 AND starts_at <= $2) OR ends_at <= $2
			ORDER BY starts_at, window_id LIMIT $3`, string(model.WebhookMaintenanceCreated), newDBTime(now), MaintenanceFanOutPage)
		if err != nil {
			return fmt.Errorf("read maintenance messages: %w", err)
		}
		var due []pending
		for rows.Next() {
			var p pending
			if err := rows.Scan(&p.id, &p.tenant, &p.announced, &p.startsAt, &p.endsAt, &p.cancelledAt, &p.snapshot); err != nil {
				rows.Close()
				return err
			}
			due = append(due, p)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return fmt.Errorf("read maintenance messages: %w", err)
		}
		n = len(due)
		endpoints := map[string][]*model.WebhookEndpoint{}
		for _, p := range due {
			eps, ok := endpoints[p.tenant]
			if !ok {
				rows, err := s.webhookEndpointRows(ctx, t, `WHERE tenant_id = $1 AND enabled ORDER BY created_at, id`, p.tenant)
				if err != nil {
					return fmt.Errorf("read webhook endpoints: %w", err)
				}
				for _, r := range rows {
					ep, err := r.toModel()
					if err != nil {
						return err
					}
					eps = append(eps, ep)
				}
				endpoints[p.tenant] = eps
			}
			var msgs []*model.WebhookMessage
			if len(eps) > 0 {
				var m *model.Maintenance
				if p.snapshot != nil {
					if m, err = decodeMaintenance([]byte(*p.snapshot)); err != nil {
						return err
					}
				} else {
					w := &where{}
					w.and("m.id = " + w.arg(p.id))
					w.and("m.tenant_id = " + w.arg(p.tenant))
					found, err := maintenance{s}.windows(ctx, t, w)
					if err != nil {
						return err
					}
					if len(found) == 0 { // gone without its mark: nothing to say
						if err := t.exec(ctx, "drop maintenance messages", `DELETE FROM webhook_maintenance WHERE window_id = $1`, p.id); err != nil {
							return err
						}
						continue
					}
					m = found[0]
				}
				msgs = maintenanceMessages(m, p.announced, p.cancelledAt.ptr(), now)
				if len(msgs) > 0 {
					w := &where{}
					w.and("tenant_id = " + w.arg(p.tenant))
					in(w, "id", m.ComponentIDs)
					comps, err := s.queryComponents(ctx, t, `WHERE `+w.String(), w.args...)
					if err != nil {
						return fmt.Errorf("read components: %w", err)
					}
					for _, msg := range msgs {
						msg.Components = comps
					}
				}
			} else {
				msgs = maintenanceMessages(&model.Maintenance{ID: p.id, StartsAt: p.startsAt.Time, EndsAt: p.endsAt.Time}, p.announced, p.cancelledAt.ptr(), now)
			}
			for _, msg := range msgs {
				if err := s.queueMessage(ctx, t, p.tenant, eps, msg, p.id, "", render); err != nil {
					return err
				}
			}
			if len(msgs) == 0 {
				continue
			}
			if last := msgs[len(msgs)-1].Type; last == model.WebhookMaintenanceEnded {
				err = t.exec(ctx, "maintenance announced", `DELETE FROM webhook_maintenance WHERE window_id = $1`, p.id)
			} else {
				err = t.exec(ctx, "maintenance announced", `UPDATE webhook_maintenance SET announced = $1 WHERE window_id = $2`, string(last), p.id)
			}
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return 0, fmt.Errorf("fan out maintenance: %w", err)
	}
	return n, nil
}

// maintenanceMessages lists a window's messages due at now after announced
// (the last one queued, "" for none): created, then started once its start
// has passed, then ended once its end has passed or it was cancelled.
func maintenanceMessages(m *model.Maintenance, announced string, cancelledAt *time.Time, now time.Time) []*model.WebhookMessage {
	var out []*model.WebhookMessage
	add := func(typ model.WebhookEventType, at time.Time, cancelled bool) {
		out = append(out, &model.WebhookMessage{Type: typ, At: at, Maintenance: m, Cancelled: cancelled})
	}
	if announced == "" {
		add(model.WebhookMaintenanceCreated, m.CreatedAt, false)
	}
	switch {
	case cancelledAt != nil:
		add(model.WebhookMaintenanceEnded, *cancelledAt, true)
	case !now.Before(m.EndsAt):
		if announced != string(model.WebhookMaintenanceStarted) {
			add(model.WebhookMaintenanceStarted, m.StartsAt, false)
		}
		add(model.WebhookMaintenanceEnded, m.EndsAt, false)
	case !now.Before(m.StartsAt) && announced != string(model.WebhookMaintenanceStarted):
		add(model.WebhookMaintenanceStarted, m.StartsAt, false)
	}
	return out
}

// queueMessage queues m to each of eps that wants it and existed at its
// moment, rendered once, with one webhook-id for all.
func (s *Store) queueMessage(ctx context.Context, t *txn, tenant string, eps []*model.WebhookEndpoint, m *model.WebhookMessage,
	resource, eventID string, render WebhookRender) error {
	var body []byte
	msgID := ""
	for _, ep := range eps {
		if m.At.Before(ep.CreatedAt) || !ep.Wants(m) {
			continue
		}
		if body == nil {
			var err error
			if body, err = render(m); err != nil {
				// A message that cannot be rendered is a bug; it must not
				// stop the stream behind it.
				slog.Error("webhook: render message", "type", m.Type, "resource", resource, "err", err)
				return nil
			}
			msgID = newMessageID()
		}
		d := &deliveryRow{ID: model.NewID("whd", 16), TenantID: tenant, EndpointID: ep.ID, MessageID: msgID, Type: m.Type,
			ResourceID: resource, EventID: eventID, Payload: body, At: newDBTime(s.clock.Now())}
		if err := d.insert(ctx, t); err != nil {
			return err
		}
	}
	return nil
}

// PruneWebhookDeliveries deletes the deliveries created before cutoff that
// are over (delivered or failed), at most limit of them; pending ones stay
// however old. It returns how many it deleted.
func (s *Store) PruneWebhookDeliveries(ctx context.Context, cutoff time.Time, limit int) (int64, error) {
	var n int64
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		var ids []string
		rows, err := t.query(ctx, `SELECT id FROM webhook_deliveries WHERE created_at < $1 AND state <> $2 ORDER BY seq LIMIT $3`,
			newDBTime(cutoff), string(model.WebhookPending), limit)
		if err != nil {
			return err
		}
		for rows.Next() {
			var id string
			if err := rows.Scan(&id); err != nil {
				rows.Close()
				return err
			}
			ids = append(ids, id)
		}
		rows.Close()
		if err := rows.Err(); err != nil || len(ids) == 0 {
			return err
		}
		w := &where{}
		in(w, "delivery_id", ids)
		if err := t.exec(ctx, "prune webhook attempts", `DELETE FROM webhook_attempts WHERE `+w.String(), w.args...); err != nil {
			return err
		}
		w = &where{}
		in(w, "id", ids)
		n, err = t.execNow(ctx, "prune webhook deliveries", `DELETE FROM webhook_deliveries WHERE `+w.String(), w.args...)
		return err
	})
	if err != nil {
		return 0, fmt.Errorf("prune webhook deliveries: %w", err)
	}
	return n, nil
}

// queueWebhooks queues the deliveries of evs.
func (s *Store) queueWebhooks(ctx context.Context, t *txn, evs []*model.Event, render WebhookRender) error {
	var tenants []string
	for _, e := range evs {
		tenants = append(tenants, e.TenantID)
	}
	tenants = dedupe(tenants)
	w := &where{}
	in(w, "tenant_id", tenants)
	rows, err := s.webhookEndpointRows(ctx, t, `WHERE `+w.String()+` AND enabled ORDER BY created_at, id`, w.args...)
	if err != nil {
		return fmt.Errorf("read webhook endpoints: %w", err)
	}
	endpoints := map[string][]*model.WebhookEndpoint{}
	for _, r := range rows {
		ep, err := r.toModel()
		if err != nil {
			return err
		}
		endpoints[ep.TenantID] = append(endpoints[ep.TenantID], ep)
	}
	byTenant := map[string][]*model.Event{}
	for _, e := range evs {
		if len(endpoints[e.TenantID]) > 0 {
			byTenant[e.TenantID] = append(byTenant[e.TenantID], e)
		}
	}
	for _, tenant := range tenants {
		tevs := byTenant[tenant]
		if len(tevs) == 0 {
			continue
		}
		eps := endpoints[tenant]
		look, err := s.webhookLookups(ctx, t, tenant, tevs, eps)
		if err != nil {
			return err
		}
		for _, e := range tevs {
			var incComps []*model.Component
			var moved []model.ComponentStatusChange
			for _, id := range look.candidates(e) {
				c := look.components[id]
				if c == nil {
					continue // deleted since
				}
				incComps = append(incComps, c)
				if !look.wantStatus {
					continue
				}
				if st := look.statusAt(id, e.At); st != look.sent[id] {
					look.sent[id] = st
					moved = append(moved, model.ComponentStatusChange{Component: c, Status: st})
					if err := t.exec(ctx, "record component status", `INSERT INTO webhook_component_status (tenant_id, component_id, status)
						VALUES ($1, $2, $3) ON CONFLICT (tenant_id, component_id) DO UPDATE SET status = excluded.status`, tenant, id, st); err != nil {
						return err
					}
				}
			}
			for _, m := range model.WebhookMessagesOf(e, incComps, moved) {
				resource := e.Incident.ID
				if m.Type == model.WebhookComponentStatus {
					resource = m.Components[0].ID
				}
				if err := s.queueMessage(ctx, t, tenant, eps, m, resource, e.Cursor, render); err != nil {
					return err
				}
			}

		}
	}
	return nil
}

type webhookLookup struct {
	// incidentComponents: the components each incident affects now.
	incidentComponents map[string][]string
	components         map[string]*model.Component
	// levels: each candidate component's level history over the batch,
	// when an endpoint wants component.status; sent: the last status
	// reported.
	levels map[string][]levelSpan
	sent   map[string]string
	// wantStatus: an endpoint wants component.status.
	wantStatus bool
}

// levelSpan is a stretch of a component's uptime history.
type levelSpan struct {
	level int
	start time.Time
	end   *time.Time
}

// statusAt is a component's status at an instant: the level of the latest
// stretch covering it, operational when none does.
func (l *webhookLookup) statusAt(id string, at time.Time) string {
	st := model.LevelOperational
	for _, iv := range l.levels[id] {
		if !iv.start.After(at) && (iv.end == nil || iv.end.After(at)) {
			st = model.Level(iv.level)
		}
	}
	return st.String()
}

func minTime(a, b time.Time) time.Time {
	if b.Before(a) {
		return b
	}
	return a
}

func maxTime(a, b time.Time) time.Time {
	if b.After(a) {
		return b
	}
	return a
}

// candidates are the components of an event: those whose affect it touched
// and those the incident affects now, sorted.
func (l *webhookLookup) candidates(e *model.Event) []string {
	return dedupe(append(slices.Clone(e.Components), l.incidentComponents[e.Incident.ID]...))
}

// webhookLookups reads what matching and component.status need, only when
// an endpoint of the tenant needs it.
func (s *Store) webhookLookups(ctx context.Context, t *txn, tenant string, evs []*model.Event, eps []*model.WebhookEndpoint) (*webhookLookup, error) {
	look := &webhookLookup{incidentComponents: map[string][]string{}, components: map[string]*model.Component{},
		levels: map[string][]levelSpan{}, sent: map[string]string{}}
	needComps, needStatus := false, false
	for _, ep := range eps {
		needComps = needComps || ep.Filter.NeedsComponents()
		needStatus = needStatus || slices.Contains(ep.Events, model.WebhookComponentStatus)
	}
	if !needComps && !needStatus {
		return look, nil
	}
	var incs []string
	for _, e := range evs {
		incs = append(incs, e.Incident.ID)
	}
	w := &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "incident_id", dedupe(incs))
	rows, err := t.query(ctx, `SELECT incident_id, component_id FROM incident_affects WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("read affects: %w", err)
	}
	for rows.Next() {
		var inc, comp string
		if err := rows.Scan(&inc, &comp); err != nil {
			rows.Close()
			return nil, err
		}
		look.incidentComponents[inc] = append(look.incidentComponents[inc], comp)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read affects: %w", err)
	}
	var ids []string
	for _, e := range evs {
		ids = append(ids, look.candidates(e)...)
	}
	if ids = dedupe(ids); len(ids) == 0 {
		return look, nil
	}
	w = &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "id", ids)
	comps, err := s.queryComponents(ctx, t, `WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("read components: %w", err)
	}
	for _, c := range comps {
		look.components[c.ID] = c
	}
	if look.wantStatus = needStatus; !needStatus {
		return look, nil
	}
	// Each component's level over the batch's span, from the uptime history
	// (recorded in the changes' own transactions), so that each event sees
	// the status it left, however late it is fanned out.
	from, to := evs[0].At, evs[0].At
	for _, e := range evs {
		from, to = minTime(from, e.At), maxTime(to, e.At)
	}
	w = &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "component_id", ids)
	w.and("started_at <= " + w.arg(newDBTime(to)))
	w.and("(ended_at IS NULL OR ended_at > " + w.arg(newDBTime(from)) + ")")
	rows, err = t.query(ctx, `SELECT component_id, level, started_at, ended_at FROM uptime_intervals WHERE `+w.String()+` ORDER BY started_at`, w.args...)
	if err != nil {
		return nil, fmt.Errorf("read component levels: %w", err)
	}
	for rows.Next() {
		var id string
		var iv levelSpan
		var start dbTime
		var end *dbTime
		if err := rows.Scan(&id, &iv.level, &start, &end); err != nil {
			rows.Close()
			return nil, err
		}
		iv.start, iv.end = start.Time, end.ptr()
		look.levels[id] = append(look.levels[id], iv)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read component levels: %w", err)
	}
	for _, id := range ids {
		look.sent[id] = "operational"
	}
	w = &where{}
	w.and("tenant_id = " + w.arg(tenant))
	in(w, "component_id", ids)
	rows, err = t.query(ctx, `SELECT component_id, status FROM webhook_component_status WHERE `+w.String(), w.args...)
	if err != nil {
		return nil, fmt.Errorf("read component status: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, st string
		if err := rows.Scan(&id, &st); err != nil {
			return nil, err
		}
		look.sent[id] = st
	}
	return look, rows.Err()
}

// WebhookJob is a leased delivery: what a worker needs to send it.
type WebhookJob struct {
	Seq        int64
	ID         string
	TenantID   string
	EndpointID string
	MessageID  string
	Type       model.WebhookEventType
	URL        string
	Payload    []byte
	// Secrets sign the message: the current one, then the previous one
	// while its grace lasts.
	Secrets []string
	// Attempts made before this one.
	Attempts int
	// Lease identifies this lease: an outcome is recorded only under it.
	Lease string
}

// WebhookRun is what one worker sends in turn: an endpoint's oldest
// pending deliveries, in order, under a lease of the endpoint; or one test
// delivery (Test), which stands outside the order.
type WebhookRun struct {
	EndpointID string
	Test       bool
	Lease      string
	Jobs       []*WebhookJob
}

// ClaimWebhookRuns leases up to n runs: of each enabled endpoint whose
// oldest pending delivery is due and which no worker holds, up to batch of
// its oldest pending deliveries (those due, in order); and due test
// deliveries, one run each (they go to disabled endpoints too). The
// endpoint's lease lasts until now+lease and each recorded outcome of the
// run renews it (RecordWebhookAttempts); EndWebhookRun ends it. A lease
// that runs out (a crash) lets any instance take the endpoint over, and
// its deliveries are sent again. Instances claim disjoint endpoints
// (PostgreSQL: the claim locks the endpoint rows it takes, skipping those
// locked, and a taken endpoint's lease excludes it after the commit;
// SQLite has one writer). The endpoints that waited longest come first.
// tenants, when not empty, limits the claim to theirs (tests).
func (s *Store) ClaimWebhookRuns(ctx context.Context, n, batch int, lease time.Duration, tenants ...string) ([]*WebhookRun, error) {
	now := s.clock.Now()
	at, until := newDBTime(now), newDBTime(now.Add(lease))
	token := model.RandomString(16, "abcdefghijklmnopqrstuvwxyz0123456789")
	var runs []*WebhookRun
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		runs = nil
		lockEP, lockD := ``, ``
		if s.pg {
			lockEP, lockD = ` FOR UPDATE OF ep SKIP LOCKED`, ` FOR UPDATE OF d SKIP LOCKED`
		}
		w := &where{}
		w.args = []any{string(model.WebhookPending), at, string(model.WebhookTest), n}
		w.and("true")
		if len(tenants) > 0 {
			in(w, "ep.tenant_id", tenants)
		}
		// The head check reads the endpoint's queue index: one probe per
		// enabled endpoint, however long its backlog.
		rows, err := t.query(ctx, `SELECT ep.id, ep.tenant_id, ep.url, ep.secret, ep.previous_secret, ep.previous_secret_until
			FROM webhook_endpoints ep
			WHERE ep.enabled AND (ep.lease_token IS NULL OR ep.lease_until <= $2) AND `+w.String()+`
				AND (SELECT d.next_attempt_at FROM webhook_deliveries d
					WHERE d.endpoint_id = ep.id AND d.state = $1 AND d.type <> $3 ORDER BY d.seq LIMIT 1) <= $2
			ORDER BY ep.lease_until NULLS FIRST, ep.id LIMIT $4`+lockEP, w.args...)
		if err != nil {
			return err
		}
		type target struct {
			tenant, url string
			secrets     []string
		}
		targets := map[string]target{}
		var unsigned []string
		for rows.Next() {
			var id string
			var tg target
			var secret string
			var prev *string
			var prevUntil *dbTime
			if err := rows.Scan(&id, &tg.tenant, &tg.url, &secret, &prev, &prevUntil); err != nil {
				rows.Close()
				return err
			}
			if tg.secrets, err = s.signingSecrets(id, secret, prev, prevUntil, now); err != nil {
				// Leased without a run, so that it does not hold a place in
				// every claim: it is tried again when the lease runs out.
				unsigned = append(unsigned, id)
				continue
			}
			targets[id] = tg
			runs = append(runs, &WebhookRun{EndpointID: id, Lease: token})
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return err
		}
		for _, id := range unsigned {
			if err := t.exec(ctx, "lease webhook endpoint", `UPDATE webhook_endpoints SET lease_until = $1, lease_token = $2 WHERE id = $3`,
				until, token, id); err != nil {
				return err
			}
		}
		for _, run := range runs {
			tg := targets[run.EndpointID]
			rows, err := t.query(ctx, `SELECT seq, id, message_id, type, payload, attempts, next_attempt_at FROM webhook_deliveries
				WHERE endpoint_id = $1 AND state = $2 AND type <> $3 ORDER BY seq LIMIT $4`,
				run.EndpointID, string(model.WebhookPending), string(model.WebhookTest), batch)
			if err != nil {
				return err
			}
			for rows.Next() {
				j := WebhookJob{TenantID: tg.tenant, EndpointID: run.EndpointID, URL: tg.url, Secrets: tg.secrets, Lease: token}
				var typ, payload string
				var next dbTime
				if err := rows.Scan(&j.Seq, &j.ID, &j.MessageID, &typ, &payload, &j.Attempts, &next); err != nil {
					rows.Close()
					return err
				}
				if next.After(now) {
					break // waiting for its retry: the rest wait behind it
				}
				j.Type, j.Payload = model.WebhookEventType(typ), []byte(payload)
				run.Jobs = append(run.Jobs, &j)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if err := t.exec(ctx, "lease webhook endpoint", `UPDATE webhook_endpoints SET lease_until = $1, lease_token = $2 WHERE id = $3`,
				until, token, run.EndpointID); err != nil {
				return err
			}
			if err := leaseJobs(ctx, t, run.Jobs, until, token); err != nil {
				return err
			}
		}
		if free := n - len(runs); free > 0 {
			w := &where{}
			w.args = []any{string(model.WebhookPending), at, string(model.WebhookTest), free}
			w.and("true")
			if len(tenants) > 0 {
				in(w, "d.tenant_id", tenants)
			}
			rows, err := t.query(ctx, `SELECT d.seq, d.id, d.tenant_id, d.endpoint_id, d.message_id, d.payload, d.attempts,
					ep.url, ep.secret, ep.previous_secret, ep.previous_secret_until
				FROM webhook_deliveries d JOIN webhook_endpoints ep ON ep.id = d.endpoint_id AND ep.tenant_id = d.tenant_id
				WHERE d.state = $1 AND d.type = $3 AND d.next_attempt_at <= $2 AND (d.lease_until IS NULL OR d.lease_until <= $2)
					AND `+w.String()+`
				ORDER BY d.seq LIMIT $4`+lockD, w.args...)
			if err != nil {
				return err
			}
			var tests, unsignedTests []*WebhookJob
			for rows.Next() {
				j := WebhookJob{Type: model.WebhookTest, Lease: token}
				var payload, secret string
				var prev *string
				var prevUntil *dbTime
				if err := rows.Scan(&j.Seq, &j.ID, &j.TenantID, &j.EndpointID, &j.MessageID, &payload, &j.Attempts,
					&j.URL, &secret, &prev, &prevUntil); err != nil {
					rows.Close()
					return err
				}
				j.Payload = []byte(payload)
				if j.Secrets, err = s.signingSecrets(j.EndpointID, secret, prev, prevUntil, now); err != nil {
					unsignedTests = append(unsignedTests, &j) // leased without a run, as above
					continue
				}
				tests = append(tests, &j)
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
			if err := leaseJobs(ctx, t, append(tests, unsignedTests...), until, token); err != nil {
				return err
			}
			for _, j := range tests {
				runs = append(runs, &WebhookRun{EndpointID: j.EndpointID, Test: true, Lease: token, Jobs: []*WebhookJob{j}})
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("claim webhook runs: %w", err)
	}
	return runs, nil
}

// leaseJobs marks jobs as leased under token: an outcome is recorded only
// under the lease it was sent under.
func leaseJobs(ctx context.Context, t *txn, jobs []*WebhookJob, until dbTime, token string) error {
	if len(jobs) == 0 {
		return nil
	}
	ids := make([]string, len(jobs))
	for i, j := range jobs {
		ids[i] = j.ID
	}
	w := &where{}
	w.args = []any{until, token}
	in(w, "id", ids)
	return t.exec(ctx, "lease webhook deliveries", `UPDATE webhook_deliveries SET lease_until = $1, lease_token = $2 WHERE `+w.String(), w.args...)
}

// EndWebhookRun gives back what a run did not record (a failed delivery
// ends a run: those behind it wait for its retry; a stopping worker ends
// its run early) and releases the endpoint: its pending deliveries are
// due again at once, for any instance.
func (s *Store) EndWebhookRun(ctx context.Context, run *WebhookRun) error {
	ids := make([]string, len(run.Jobs))
	for i, j := range run.Jobs {
		ids[i] = j.ID
	}
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		// The endpoint's row before its deliveries' rows: every
		// transaction that locks both takes them in that order.
		if !run.Test {
			if err := t.exec(ctx, "release webhook endpoint", `UPDATE webhook_endpoints SET lease_until = $1, lease_token = NULL
				WHERE id = $2 AND lease_token = $3`, newDBTime(s.clock.Now()), run.EndpointID, run.Lease); err != nil {
				return err
			}
		}
		if len(ids) == 0 {
			return nil
		}
		w := &where{}
		w.args = []any{run.Lease}
		in(w, "id", ids)
		return t.exec(ctx, "give back webhook deliveries", `UPDATE webhook_deliveries SET lease_until = NULL, lease_token = NULL
			WHERE lease_token = $1 AND `+w.String(), w.args...)
	})
	if err != nil {
		return fmt.Errorf("end webhook run: %w", err)
	}
	return nil
}

// WebhookAttempt is the outcome of one attempt.
type WebhookAttempt struct {
	At      time.Time
	Latency time.Duration
	// Status is the receiver's HTTP status, 0 when none came (Error says why).
	Status  int
	Error   string
	Excerpt []byte
	// Delivered: the receiver accepted the message (2xx).
	Delivered bool
	// Next is when to try again; zero abandons the delivery.
	Next time.Time
	// Disable, when not "", disables the endpoint with this reason (410
	// Gone).
	Disable string
	// DisableAfter disables the endpoint, when this attempt failed, if its
	// deliveries have failed without a success for longer than this.
	DisableAfter time.Duration
}

// WebhookOutcome is one attempt of a leased delivery.
type WebhookOutcome struct {
	Job     *WebhookJob
	Attempt WebhookAttempt
}

// RecordWebhookAttempt records one outcome (RecordWebhookAttempts).
func (s *Store) RecordWebhookAttempt(ctx context.Context, j *WebhookJob, a WebhookAttempt) (bool, error) {
	ok, err := s.RecordWebhookAttempts(ctx, 0, []WebhookOutcome{{j, a}})
	if err != nil {
		return false, err
	}
	return ok[0], nil
}

// RecordWebhookAttempts records outcomes of leased deliveries in one
// transaction (so that many workers' outcomes share a commit), and the
// endpoints' health: a success ends an endpoint's failure streak; a
// failure starts one, and one longer than DisableAfter (or a Disable
// reason) disables the endpoint, recorded with the reason and audited as
// the system's act. Tests do not count towards an endpoint's health. The
// leases of the outcomes' endpoints are renewed until now+renew (when
// renew > 0). It reports, per outcome, false if the lease was lost (the
// delivery was deleted, or its lease ran out and another worker took it):
// nothing is recorded for it then.
func (s *Store) RecordWebhookAttempts(ctx context.Context, renew time.Duration, outs []WebhookOutcome) ([]bool, error) {
	recorded := make([]bool, len(outs))
	var eps []string
	for _, o := range outs {
		// Tests' endpoints too: their deletion must not run between an
		// attempt's row and its delivery's.
		eps = append(eps, o.Job.EndpointID)
	}
	eps = dedupe(eps)
	err := s.write(ctx, func(ctx context.Context, t *txn) error {
		clear(recorded)
		// Endpoints' rows before their deliveries' rows, and in one order
		// (by id), as every transaction that locks both takes them:
		// otherwise an endpoint's deletion or a run's end deadlocks with
		// this.
		if s.pg && len(eps) > 0 {
			w := &where{}
			in(w, "id", eps)
			rows, err := t.query(ctx, `SELECT id FROM webhook_endpoints WHERE `+w.String()+` ORDER BY id FOR UPDATE`, w.args...)
			if err != nil {
				return err
			}
			rows.Close()
			if err := rows.Err(); err != nil {
				return err
			}
		}
		// An endpoint's health follows its last recorded outcome here.
		type health struct {
			j *WebhookJob
			a WebhookAttempt
		}
		last := map[string]health{}
		var order []string
		leases := map[[2]string]bool{}
		for i, o := range outs {
			j, a := o.Job, o.Attempt
			state, next := model.WebhookPending, any(nil)
			switch {
			case a.Delivered:
				state = model.WebhookDelivered
			case a.Next.IsZero() || a.Disable != "":
				state = model.WebhookFailed
			default:
				next = newDBTime(a.Next)
			}
			// Sent with the update below, in one round trip; both apply
			// under the same lease.
			if err := t.exec(ctx, "log webhook attempt", `INSERT INTO webhook_attempts (delivery_id, n, tenant_id, endpoint_id, at, status, error,
				latency_us, response_excerpt) SELECT id, attempts + 1, tenant_id, endpoint_id, $1, $2, $3, $4, $5 FROM webhook_deliveries
				WHERE seq = $6 AND lease_token = $7`, newDBTime(a.At), a.Status, a.Error, a.Latency.Microseconds(), excerptOf(a.Excerpt), j.Seq, j.Lease); err != nil {
				return err
			}
			n, err := t.execNow(ctx, "record webhook attempt", `UPDATE webhook_deliveries SET state = $1, attempts = attempts + 1, last_status = $2,
				last_error = $3, last_latency_us = $4, last_attempt_at = $5, response_excerpt = $6, next_attempt_at = $7, lease_until = NULL, lease_token = NULL
				WHERE seq = $8 AND lease_token = $9`,
				string(state), a.Status, a.Error, a.Latency.Microseconds(), newDBTime(a.At), excerptOf(a.Excerpt), next, j.Seq, j.Lease)
			if err != nil {
				return err
			}
			if n == 0 || j.Type == model.WebhookTest {
				recorded[i] = n > 0
				continue
			}
			recorded[i] = true
			if _, seen := last[j.EndpointID]; !seen {
				order = append(order, j.EndpointID)
			}
			last[j.EndpointID] = health{j, a}
			leases[[2]string{j.EndpointID, j.Lease}] = true
		}
		if renew > 0 {
			until := newDBTime(s.clock.Now().Add(renew))
			for k := range leases {
				if err := t.exec(ctx, "renew webhook endpoint lease", `UPDATE webhook_endpoints SET lease_until = $1 WHERE id = $2 AND lease_token = $3`,
					until, k[0], k[1]); err != nil {
					return err
				}
			}
		}
		for _, ep := range order {
			h := last[ep]
			if err := s.recordHealth(ctx, t, h.j, h.a); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("record webhook attempts: %w", err)
	}
	return recorded, nil
}

// recordHealth applies an endpoint's latest outcome to its health.
func (s *Store) recordHealth(ctx context.Context, t *txn, j *WebhookJob, a WebhookAttempt) error {
	if a.Delivered {
		return t.exec(ctx, "webhook endpoint healthy", `UPDATE webhook_endpoints SET failing_since = NULL WHERE id = $1 AND failing_since IS NOT NULL`, j.EndpointID)
	}
	at := newDBTime(a.At)
	reason := a.Disable
	var since *dbTime
	if err := t.queryRow(ctx, `UPDATE webhook_endpoints SET failing_since = COALESCE(failing_since, $1) WHERE id = $2 AND enabled
		RETURNING failing_since`, at, j.EndpointID).Scan(&since); err != nil {
		if isNoRows(err) {
			return nil // disabled meanwhile
		}
		return err
	}
	if reason == "" && a.DisableAfter > 0 && since != nil && a.At.Sub(since.Time) > a.DisableAfter {
		reason = fmt.Sprintf("deliveries failed continuously since %s (longer than %s)", since.UTC().Format(time.RFC3339), a.DisableAfter)
	}
	if reason == "" {
		return nil
	}
	if err := t.exec(ctx, "disable webhook endpoint", `UPDATE webhook_endpoints SET enabled = $1, disabled_reason = $2, updated_at = $3, updated_by = $4
		WHERE id = $5`, false, reason, at, "system", j.EndpointID); err != nil {
		return err
	}
	t.onCommit(func() {
		slog.Warn("webhook endpoint disabled", "tenant", j.TenantID, "endpoint", j.EndpointID, "reason", reason)
	})
	return s.audit(ctx, t, &model.Principal{TenantID: j.TenantID, ActorID: "system", CredentialID: "webhook-engine"},
		model.AuditWebhookUpdate, "webhook", j.EndpointID, map[string]model.Change{
			"enabled": {Before: true, After: false}, "disabledReason": {Before: "", After: reason}})
}

// excerptOf keeps at most MaxWebhookExcerpt bytes of b, cut at a rune
// boundary, with invalid UTF-8 and NULs replaced (the column is text).
func excerptOf(b []byte) string {
	if len(b) > model.MaxWebhookExcerpt {
		b = b[:model.MaxWebhookExcerpt]
	}
	s := strings.ToValidUTF8(string(b), "\uFFFD")
	s = strings.ReplaceAll(s, "\x00", "\uFFFD")
	for len(s) > model.MaxWebhookExcerpt {
		_, size := utf8.DecodeLastRuneInString(s)
		s = s[:len(s)-size]
	}
	return s
}
