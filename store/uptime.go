package store

import (
	"context"
	"strings"

	"github.com/incidentd/incidentd/model"
)

// Uptime history (model/uptime.go has the rules). Levels are recorded when
// they change, in the transaction that changes them; maintenance windows
// are read as they are stored, since a window begins and ends by the clock,
// not by a write.
//
// A component's level is the worst impact of the open incidents affecting
// it, so it can change only where an incident's affects or its being open
// change: the writes that record an incident event (appendChange: the
// components whose affect the change touched, and all of the incident's
// when it opened or ended) and a component's deletion (closeLevels). Each
// recomputes the level of those components from the database, inside its
// transaction, holding a per-component lock (PostgreSQL; SQLite's one
// writer holds the database): of two transactions changing one component,
// the second recomputes after the first commits and sees its change, so
// the last recorded level is always the current one and two transactions
// never both open an interval (a unique index would refuse the second).
//
// All three statements are queued with the transaction's other writes
// (no extra round trip): the lock, then the close of the open interval
// whose level is no longer the component's, then the insert of the new one.
// On PostgreSQL each statement reads a snapshot taken when it starts, after
// the lock is held. An interval starts at the clock's now, or at the end of
// the one before when a writer's clock is behind, so the chain never
// overlaps.

// appendChange records the levels an incident change moved, then its event
// (appendEvent). components are those whose affect the change touched.
func (s *Store) appendChange(ctx context.Context, t *txn, typ model.EventType, before, after *model.Incident, components []string) error {
	if err := s.recordLevels(ctx, t, after.TenantID, before, after, components); err != nil {
		return err
	}
	return s.appendEvent(ctx, t, typ, before, after, components)
}

// affectsLive reports whether an incident's affects count toward its
// components' levels (nil: it did not exist).
func affectsLive(i *model.Incident) bool { return i != nil && !i.IsDeleted && !i.Status.Ended() }

// recordLevels recomputes, in t, the levels of components and, when the
// incident started or stopped counting, of every component it affects.
func (s *Store) recordLevels(ctx context.Context, t *txn, tenant string, before, after *model.Incident, components []string) error {
	if !affectsLive(before) && !affectsLive(after) {
		return nil // an incident that counts neither before nor after moves no level
	}
	incident := ""
	if affectsLive(before) != affectsLive(after) {
		incident = after.ID
	}
	if incident == "" && len(components) == 0 {
		return nil
	}
	now := newDBTime(s.clock.Now())
	// scope adds the components concerned to w: a condition on components c.
	scope := func(w *where) (tn, cond string) {
		tn = w.arg(tenant)
		var or []string
		if len(components) > 0 {
			marks := make([]string, len(components))
			for i, c := range components {
				marks[i] = w.arg(c)
			}
			or = append(or, "c.id IN ("+strings.Join(marks, ", ")+")")
		}
		if incident != "" {
			or = append(or, "c.id IN (SELECT a.component_id FROM incident_affects a WHERE a.tenant_id = "+tn+" AND a.incident_id = "+w.arg(incident)+")")
		}
		return tn, "c.tenant_id = " + tn + " AND (" + strings.Join(or, " OR ") + ")"
	}
	if s.pg {
		w := &where{}
		_, cond := scope(w)
		if err := t.exec(ctx, "lock uptime", `SELECT `+uptimeLock("c")+` FROM components c WHERE `+cond+` ORDER BY c.id`, w.args...); err != nil {
			return err
		}
	}
	w := &where{}
	tn, cond := scope(w)
	at := w.arg(now)
	if err := t.exec(ctx, "close uptime interval", `UPDATE uptime_intervals SET ended_at = CASE WHEN started_at > `+at+` THEN started_at ELSE `+at+` END
		WHERE tenant_id = `+tn+` AND ended_at IS NULL AND component_id IN (SELECT c.id FROM components c WHERE `+cond+`)
		AND level <> `+levelOf(tn, "uptime_intervals.component_id"), w.args...); err != nil {
		return err
	}
	w = &where{}
	tn, cond = scope(w)
	at = w.arg(now)
	return t.exec(ctx, "open uptime interval", `INSERT INTO uptime_intervals (tenant_id, component_id, level, started_at)
		SELECT x.tenant_id, x.id, x.level, CASE WHEN x.last_end > `+at+` THEN x.last_end ELSE `+at+` END FROM (
			SELECT c.tenant_id, c.id, `+levelOf(tn, "c.id")+` AS level,
				(SELECT MAX(u.ended_at) FROM uptime_intervals u WHERE u.tenant_id = c.tenant_id AND u.component_id = c.id) AS last_end
			FROM components c WHERE `+cond+`
			AND NOT EXISTS (SELECT 1 FROM uptime_intervals u WHERE u.tenant_id = c.tenant_id AND u.component_id = c.id AND u.ended_at IS NULL)) x
		WHERE x.level <> `+w.arg(int(model.LevelOperational)), w.args...)
}

// uptimeLock is the SQL taking the uptime lock of the component row alias.
func uptimeLock(alias string) string {
	return `pg_advisory_xact_lock(hashtextextended('uptime:' || ` + alias + `.tenant_id || ':' || ` + alias + `.id, 0))`
}

// levelOf is the SQL of component col's level now: the worst impact of the
// open incidents affecting it, -1 (operational) when none.
func levelOf(tn, col string) string {
	return `(SELECT COALESCE(MAX(a.impact), -1) FROM incident_affects a JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE a.tenant_id = ` + tn + ` AND a.component_id = ` + col + ` AND ` + openIncident + `)`
}

// closeLevels ends a component's current interval, in the transaction
// that deletes it (before the component's row goes).
func (s *Store) closeLevels(ctx context.Context, t *txn, tenant, component string) error {
	if s.pg {
		if err := t.exec(ctx, "lock uptime", `SELECT `+uptimeLock("c")+` FROM components c WHERE c.tenant_id = $1 AND c.id = $2`, tenant, component); err != nil {
			return err
		}
	}
	return t.exec(ctx, "close uptime interval", `UPDATE uptime_intervals SET ended_at = CASE WHEN started_at > $1 THEN started_at ELSE $1 END
		WHERE tenant_id = $2 AND component_id = $3 AND ended_at IS NULL`, newDBTime(s.clock.Now()), tenant, component)
}

// keepMaintenance keeps what has elapsed of a maintenance window, in the
// transaction that deletes it (before its rows go): from when it was both
// begun and scheduled to its end or now.
func (s *Store) keepMaintenance(ctx context.Context, t *txn, tenant, window string) error {
	return t.exec(ctx, "keep maintenance", `INSERT INTO uptime_maintenance (tenant_id, component_id, started_at, ended_at)
		SELECT mc.tenant_id, mc.component_id, `+maintenanceStart+`, CASE WHEN m.ends_at < $3 THEN m.ends_at ELSE $3 END
		FROM maintenance_windows m JOIN maintenance_components mc ON mc.window_id = m.id AND mc.tenant_id = m.tenant_id
		WHERE m.tenant_id = $1 AND m.id = $2 AND m.starts_at < $3 AND m.created_at < $3 AND m.created_at < m.ends_at`,
		tenant, window, newDBTime(s.clock.Now()))
}

// maintenanceStart is when a window m began to count: once begun and scheduled.
const maintenanceStart = `CASE WHEN m.created_at > m.starts_at THEN m.created_at ELSE m.starts_at END`

// Uptime returns the uptime service.
func (s *Store) Uptime() model.UptimeService { return uptime{s} }

type uptime struct{ s *Store }

func (x uptime) PublicUptime(ctx context.Context, tenant string, ids []string) (map[string]*model.ComponentUptime, error) {
	if _, err := (status(x)).Publication(ctx, tenant); err != nil {
		return nil, err
	}
	return x.Uptime(model.WithPrincipal(ctx, publicReader(tenant)), ids)
}

// Uptime reads, in one round trip, the components, their intervals and
// maintenance within the horizon, and their resolved incidents.
func (x uptime) Uptime(ctx context.Context, ids []string) (map[string]*model.ComponentUptime, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, err
	}
	if ids, err = model.CheckUptimeComponents(ids); err != nil {
		return nil, err
	}
	now := model.NormalizeTime(x.s.clock.Now())
	from := newDBTime(now.Add(-model.UptimeHorizon))
	// of starts a statement's conditions: the tenant's rows (alias's)
	// among ids.
	of := func(alias string) (*where, string) {
		w := &where{}
		w.and(alias + "tenant_id = " + w.arg(p.TenantID))
		in(w, alias+"component_id", ids)
		return w, w.String()
	}
	var stmts []stmt
	{
		w := &where{}
		w.and("c.tenant_id = " + w.arg(p.TenantID))
		in(w, "c.id", ids)
		stmts = append(stmts, stmt{`SELECT c.id, c.created_at,
			(SELECT MAX(u.ended_at) FROM uptime_intervals u WHERE u.tenant_id = c.tenant_id AND u.component_id = c.id)
			FROM components c WHERE ` + w.String(), w.args})
	}
	{
		w, cond := of("")
		stmts = append(stmts, stmt{`SELECT component_id, level, started_at, ended_at FROM uptime_intervals
			WHERE ` + cond + ` AND (ended_at IS NULL OR ended_at > ` + w.arg(from) + `) ORDER BY component_id, started_at`, w.args})
	}
	{
		w, cond := of("mc.")
		f, n := w.arg(from), w.arg(newDBTime(now))
		stmts = append(stmts, stmt{`SELECT mc.component_id, ` + maintenanceStart + `, m.ends_at
			FROM maintenance_windows m JOIN maintenance_components mc ON mc.window_id = m.id AND mc.tenant_id = m.tenant_id
			WHERE ` + cond + ` AND m.ends_at > ` + f + ` AND m.starts_at <= ` + n + ` AND m.created_at < m.ends_at
			UNION ALL
			SELECT mc.component_id, mc.started_at, mc.ended_at FROM uptime_maintenance mc WHERE ` + cond + ` AND mc.ended_at > ` + f, w.args})
	}
	{
		w, cond := of("a.")
		stmts = append(stmts, stmt{`SELECT a.component_id, i.occurred_at, i.resolved_at
			FROM incident_affects a JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
			WHERE ` + cond + ` AND a.impact <> ` + w.arg(int(model.ImpactMaintenance)) + ` AND NOT i.is_deleted AND NOT ` + openStatusOf("i.") + `
			AND i.resolved_at >= ` + w.arg(from) + ` AND i.resolved_at <= ` + w.arg(newDBTime(now)), w.args})
	}
	inputs := map[string]*model.UptimeInput{}
	var order []string
	err = x.s.pipeline(ctx, func(i int, r rows) error {
		for r.Next() {
			var id string
			switch i {
			case 0:
				var created dbTime
				var last *dbTime
				if err := r.Scan(&id, &created, &last); err != nil {
					return err
				}
				in := &model.UptimeInput{ComponentID: id, Created: created.Time}
				if last != nil {
					in.LastEnd = last.Time
				}
				inputs[id] = in
				order = append(order, id)
			case 1:
				var level int
				var start dbTime
				var end *dbTime
				if err := r.Scan(&id, &level, &start, &end); err != nil {
					return err
				}
				if in := inputs[id]; in != nil {
					in.Levels = append(in.Levels, model.LevelInterval{Level: model.Level(level), Start: start.Time, End: end.ptr()})
				}
			case 2:
				var start, end dbTime
				if err := r.Scan(&id, &start, &end); err != nil {
					return err
				}
				if in := inputs[id]; in != nil {
					in.Maintenance = append(in.Maintenance, model.Span{Start: start.Time, End: end.Time})
				}
			case 3:
				var occurred, resolved dbTime
				if err := r.Scan(&id, &occurred, &resolved); err != nil {
					return err
				}
				if in := inputs[id]; in != nil {
					in.Resolved = append(in.Resolved, model.Resolution{OccurredAt: occurred.Time, ResolvedAt: resolved.Time})
				}
			}
		}
		return nil
	}, stmts...)
	if err != nil {
		return nil, model.Internal(err, "read uptime")
	}
	out := make(map[string]*model.ComponentUptime, len(order))
	for _, id := range order {
		out[id] = model.ComputeUptime(*inputs[id], now)
	}
	return out, nil
}
