package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/incidentd/incidentd/model"
)

// Ingest returns the monitoring ingestion service.
func (s *Store) Ingest() model.IngestService { return ingest{s} }

type ingest struct{ s *Store }

// Report runs the monitoring protocol's rules. The common report ("still
// down") is answered by reads alone (fastPath). Any other is decided and
// carried out in one transaction that holds only what the rules look at
// (PostgreSQL advisory locks; SQLite's single writer holds everything):
// the reported component, so that it never ends up in two incidents; the
// impact level it reports, since the rules join "the newest open incident
// of that impact" (two reports that both find none would otherwise open
// two); and the level of the incident it is in now, which a move or a
// raise changes. Reports of other components at other levels go ahead in
// parallel, and the outcome is that of some serial order.
func (g ingest) Report(ctx context.Context, r model.ComponentReport) (*model.IngestResult, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsWrite)
	if err != nil {
		return nil, err
	}
	if !p.Has(model.ScopeIncidentsWrite) {
		return nil, model.Forbidden("this credential lacks the scope incidents:write")
	}
	if errs := r.Validate(); len(errs) > 0 {
		return nil, model.Invalid("Invalid request body", errs...)
	}
	if r.Text == "" {
		r.Text = "Incident"
	}
	res, comp, err := g.fastPath(ctx, p, r)
	if err != nil || res != nil {
		if err == nil {
			g.s.noteIngest(res, model.IngestNoChange)
		}
		return res, domainOrInternal(err, "ingest component status")
	}
	var target string
	var created bool
	var action model.IngestAction
	levels := map[model.Impact]bool{r.Impact: true}
	if comp.incident != "" {
		// The incident's level is its highest impact; monitoring groups
		// components by impact, so the component's own is the best guess
		// (a wrong one costs a second attempt).
		levels[comp.impact] = true
	}
	for attempt := 0; ; attempt++ {
		res, target, created, action, err = g.decide(ctx, p, r, comp.c, levels)
		var moved levelMoved
		switch {
		case attempt == maxDecisions:
			if errors.As(err, &moved) || isStale(err) {
				return nil, model.Conflict("the component's incidents kept changing; send the report again")
			}
		case errors.As(err, &moved):
			// The component's incident changed level since it was read:
			// decide again, holding that level too.
			levels[moved.level] = true
			continue
		case isStale(err):
			continue // an incident changed between the decision and the writes
		}
		break
	}
	if err != nil {
		return nil, domainOrInternal(err, "ingest component status")
	}
	if res != nil { // a maintenance answered under the lock
		g.s.noteIngest(res, action)
		return res, nil
	}
	// Read the answer after commit, outside the locks: it is the state just
	// after this report (or a moment later), and the locks stay short.
	res, err = g.result(ctx, g.s, p.TenantID, target)
	if err != nil {
		return nil, domainOrInternal(err, "ingest result")
	}
	res.Created = created
	g.s.noteIngest(res, action)
	return res, nil
}

// maxDecisions bounds the attempts of one report: one per impact level
// (each holds one more level lock), and a few for incidents an API write
// changed meanwhile.
const maxDecisions = 8

// isStale reports whether err is the write batch finding an incident
// changed since the decision read it (see work.lock).
func isStale(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "22012" && strings.Contains(err.Error(), staleIncidents)
}

// levelMoved: the incident the component is in is at a level not locked.
type levelMoved struct{ level model.Impact }

func (l levelMoved) Error() string {
	return fmt.Sprintf("the component's incident is now at level %s", l.level)
}

// ingestLocks are the advisory lock keys of a report, in one order for
// every transaction (so that none waits on another in a cycle).
func ingestLocks(tenant, component string, levels map[model.Impact]bool) []string {
	var keys []string
	for l := range levels {
		keys = append(keys, fmt.Sprintf("ingest:%s:level:%d", tenant, l))
	}
	keys = append(keys, "ingest:"+tenant+":component:"+component)
	slices.Sort(keys)
	return keys
}

// decide runs one report's decision and writes under the locks of levels
// and the component: levelMoved when the component's incident turns out
// to be at a level not held. It returns the maintenance answer, or the
// incident the component ends in, whether it was created and the decision.
func (g ingest) decide(ctx context.Context, p *model.Principal, r model.ComponentReport, comp *model.Component, levels map[model.Impact]bool) (
	res *model.IngestResult, target string, created bool, action model.IngestAction, err error) {
	err = g.s.write(ctx, func(ctx context.Context, t *txn) error {
		// What follows, maintenance included, is decided again under the
		// locks, from the current state.
		open, cur, inMaintenance, read, err := g.openIncidents(ctx, t, ingestLocks(p.TenantID, comp.ID, levels), p.TenantID, comp.ID, r.Impact)
		if err != nil {
			return err
		}
		if cur != nil && !levels[cur.level] {
			return levelMoved{cur.level}
		}
		if inMaintenance { // a window began or was created since the fast path looked: change nothing
			m, err := (maintenance(g)).activeFor(ctx, t, p.TenantID, comp.ID)
			if err != nil {
				return err
			}
			// A window that ended or was deleted between the two reads holds
			// nothing: decide as outside maintenance (it used to answer an
			// empty conflict and drop the report).
			if m != nil {
				res = &model.IngestResult{Maintenance: m, Impact: model.ImpactMaintenance, AffectCount: 1,
					Affects: []model.Affect{model.MonitoringAffect(comp.ID, model.ImpactMaintenance)}}
				return nil
			}
		}
		if g.s.afterDecisionRead != nil {
			g.s.afterDecisionRead()
		}
		d := model.DecideIngest(open, comp.ID, r.Impact)
		target, action = d.Target, d.Action
		if d.Action == model.IngestNoChange {
			return nil
		}
		w := newWork(g, t, p, read)
		// Lock the incidents this decision writes, in id order, before any
		// write: the events lock and the bookkeeping rows come after row locks
		// in every transaction, so none can wait on another in a cycle.
		if err := w.lock(ctx, d.Source, d.Target); err != nil {
			return err
		}
		label := fmt.Sprintf("%s %s", comp.DisplayName, describeLabels(comp.Labels))
		switch d.Action {
		case model.IngestCreate, model.IngestMoveToNew:
			if d.Source != "" {
				if err := w.detach(ctx, d.Source, comp, r.Impact, false); err != nil {
					return err
				}
			}
			created, err := w.create(ctx, model.IncidentCreate{Title: r.Text, Severity: r.Impact.Severity(),
				Tags: []string{"monitoring"}, OccurredAt: g.s.clock.Now()})
			if err != nil {
				return err
			}
			target = created.ID
			if err := w.attach(ctx, target, comp, r.Impact, "Incident opened by monitoring", label); err != nil {
				return err
			}
		case model.IngestAdd:
			if err := w.attach(ctx, target, comp, r.Impact, "Component added by monitoring", label); err != nil {
				return err
			}
		case model.IngestMove:
			if err := w.detach(ctx, d.Source, comp, r.Impact, d.CloseSource); err != nil {
				return err
			}
			if err := w.attach(ctx, target, comp, r.Impact, "Component moved here by monitoring", label); err != nil {
				return err
			}
		case model.IngestRaise:
			raised := model.AffectsDiff{Changed: []model.Affect{model.MonitoringAffect(comp.ID, r.Impact)}}
			if err := g.s.writeAffects(ctx, t, p.TenantID, target, raised); err != nil {
				return fmt.Errorf("raise impact: %w", err)
			}
			w.touched(target, comp.ID)
			w.affected(target, &model.Affect{ComponentID: comp.ID}, &raised.Changed[0])
			// The severity follows the impact up, never down (a person may have set it higher).
			if r.Impact.Severity().Rank() > w.cur[target].Severity.Rank() {
				if err := w.patch(ctx, target, model.IncidentPatch{Severity: model.Some(r.Impact.Severity())}); err != nil {
					return err
				}
			}
			w.note(target, "Impact raised by monitoring", fmt.Sprintf("%s is now at impact %s", comp.DisplayName, r.Impact))
		}
		if err := w.finish(ctx); err != nil {
			return err
		}
		created = d.Action == model.IngestCreate || d.Action == model.IngestMoveToNew
		return nil
	})
	return res, target, created, action, err
}

// found is the component a report names, with what the fast path needs to
// know of it, read in the same statement: whether a maintenance window
// covers it now, and the open incident affecting it at the highest impact,
// with the component's impact there.
type found struct {
	c             *model.Component
	inMaintenance bool
	incident      string // "" when none
	impact        model.Impact
}

// findComponent returns the one component with the report's name whose
// labels include every attribute.
func (g ingest) findComponent(ctx context.Context, db querier, tenant string, r model.ComponentReport) (*found, error) {
	now := newDBTime(g.s.clock.Now())
	open := `FROM incident_affects a JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
		WHERE a.tenant_id = c.tenant_id AND a.component_id = c.id AND ` + openIncident + `
		ORDER BY a.impact DESC, a.incident_id LIMIT 1`
	rows, err := db.query(ctx, `SELECT c.id, c.tenant_id, c.display_name, c.name_key, c.labels, c.created_at, c.updated_at, c.created_by, c.updated_by,
			EXISTS (SELECT 1 FROM maintenance_components mc JOIN maintenance_windows m ON m.id = mc.window_id AND m.tenant_id = mc.tenant_id
				WHERE mc.tenant_id = c.tenant_id AND mc.component_id = c.id AND m.starts_at <= $1 AND m.ends_at > $1),
			(SELECT a.incident_id `+open+`), (SELECT a.impact `+open+`)
		FROM components c WHERE c.tenant_id = $2 AND c.name_key = $3`, now, tenant, model.NameKey(r.Name))
	if err != nil {
		return nil, fmt.Errorf("find component: %w", err)
	}
	defer rows.Close()
	var matches []*found
	for rows.Next() {
		var row componentRow
		var f found
		var incident sql.NullString
		var impact sql.NullInt64
		if err := rows.Scan(&row.ID, &row.TenantID, &row.DisplayName, &row.NameKey, &row.Labels, &row.CreatedAt, &row.UpdatedAt, &row.CreatedBy, &row.UpdatedBy,
			&f.inMaintenance, &incident, &impact); err != nil {
			return nil, fmt.Errorf("find component: %w", err)
		}
		f.c, f.incident, f.impact = row.toModel(), incident.String, model.Impact(impact.Int64)
		if f.c.DisplayName != r.Name {
			continue
		}
		match := true
		for k, v := range r.Attributes {
			if got, ok := f.c.Labels[k]; !ok || got != v {
				match = false
			}
		}
		if match {
			matches = append(matches, &f)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("find component: %w", err)
	}
	switch len(matches) {
	case 0:
		return nil, model.Invalid("Invalid request body", model.FieldError{Field: "name",
			Message: fmt.Sprintf("no component named %q with attributes %s", r.Name, describeLabels(r.Attributes))})
	case 1:
		return matches[0], nil
	}
	return nil, model.Invalid("Invalid request body", model.FieldError{Field: "attributes",
		Message: fmt.Sprintf("%d components are named %q with these attributes: give more attributes", len(matches), r.Name)})
}

func describeLabels(m map[string]string) string {
	if len(m) == 0 {
		return "(none)"
	}
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(m)) {
		parts = append(parts, k+"="+m[k])
	}
	return strings.Join(parts, ", ")
}

// openIncidents gathers what the decision looks at in one statement rather
// than every open incident's components: the open incident affecting the
// component (with its size), the newest open incident whose impact is the
// requested one, and whether a maintenance window covers the component.
// curIncident is the open incident a component is in, as the decision
// and the locks see it.
type curIncident struct {
	model.OpenIncident
	level model.Impact // its highest impact
}

// openIncidents takes the locks (keys) and gathers what the decision looks
// at, in one round trip and one statement: the open incident affecting
// the component ('c', with its size and level), the two newest of the
// requested impact ('t'; one may be the current one), and any maintenance
// window covering the component now ('m'); not every open incident's
// components.
func (g ingest) openIncidents(ctx context.Context, t *txn, keys []string, tenant, component string, impact model.Impact) (
	[]model.OpenIncident, *curIncident, bool, map[string]*incidentRow, error) {
	now := newDBTime(g.s.clock.Now())
	// The incidents' rows come along ('c' and 't'), so that the writes
	// need no second read (see work.lock).
	rows, err := t.queryUnderLocks(ctx, keys, `SELECT d.kind, d.id, d.impact, d.size, d.rank, d.level, `+outerIncidentColumns("r")+` FROM (
		SELECT kind, id, impact, size, rank, level FROM (
			SELECT 'c' AS kind, a.incident_id AS id, a.impact AS impact,
				(SELECT count(*) FROM incident_affects b WHERE b.incident_id = a.incident_id AND b.tenant_id = a.tenant_id) AS size, 0 AS rank,
				(SELECT MAX(b.impact) FROM incident_affects b WHERE b.incident_id = a.incident_id AND b.tenant_id = a.tenant_id) AS level
			FROM incident_affects a JOIN incidents i ON i.id = a.incident_id AND i.tenant_id = a.tenant_id
			WHERE a.tenant_id = $1 AND a.component_id = $2 AND `+openIncident+`
			ORDER BY a.impact DESC, a.incident_id LIMIT 1) cur
		UNION ALL
		SELECT kind, id, impact, size, rank, level FROM (
			SELECT 't' AS kind, i.id AS id, MAX(a.impact) AS impact, 0 AS size,
				ROW_NUMBER() OVER (ORDER BY i.created_at DESC, i.id DESC) AS rank, 0 AS level
			FROM incidents i JOIN incident_affects a ON a.incident_id = i.id AND a.tenant_id = i.tenant_id
			WHERE i.tenant_id = $1 AND `+openIncident+`
			GROUP BY i.id, i.created_at HAVING MAX(a.impact) = $3 ORDER BY i.created_at DESC, i.id DESC LIMIT 2) tgt
		UNION ALL
		SELECT 'm', m.id, 0, 0, 0, 0 FROM maintenance_windows m JOIN maintenance_components mc ON mc.window_id = m.id AND mc.tenant_id = m.tenant_id
		WHERE mc.tenant_id = $1 AND mc.component_id = $2 AND m.starts_at <= $4 AND m.ends_at > $4) d
		LEFT JOIN incidents r ON r.id = d.id AND r.tenant_id = $1 AND d.kind <> 'm'`,
		tenant, component, int(impact), now)
	if err != nil {
		return nil, nil, false, nil, fmt.Errorf("open incidents: %w", err)
	}
	defer rows.Close()
	var cur *curIncident
	inMaintenance := false
	targets := make([]string, 3) // by rank, newest first (1 and 2)
	read := map[string]*incidentRow{}
	for rows.Next() {
		var kind, id string
		var imp, size, rank, level int
		var r incidentRow
		if err := rows.Scan(append([]any{&kind, &id, &imp, &size, &rank, &level}, r.columns()...)...); err != nil {
			return nil, nil, false, nil, fmt.Errorf("open incidents: %w", err)
		}
		if kind != "m" {
			read[r.ID] = &r
		}
		switch {
		case kind == "m":
			inMaintenance = true
		case kind == "c":
			cur = &curIncident{OpenIncident: model.OpenIncident{ID: id, Size: size, Components: map[string]model.Impact{component: model.Impact(imp)}},
				level: model.Impact(level)}
		case rank >= 1 && rank <= 2:
			targets[rank] = id
		}
	}
	if err := rows.Err(); err != nil {
		return nil, nil, false, nil, fmt.Errorf("open incidents: %w", err)
	}
	targets = slices.DeleteFunc(targets, func(id string) bool { return id == "" })
	var open []model.OpenIncident
	for _, id := range targets {
		if cur == nil || id != cur.ID {
			// The decision takes the first incident of the impact it meets: put it first.
			open = append(open, model.OpenIncident{ID: id, Components: map[string]model.Impact{"": impact}})
			break
		}
	}
	if cur != nil {
		open = append(open, cur.OpenIncident)
	}
	return open, cur, inMaintenance, read, nil
}

// work is one report's writes to incidents: each incident is locked once,
// gets its timeline entries in one statement and one event at the end.
type work struct {
	g ingest
	t *txn
	// read are the incidents as the decision read them.
	read map[string]*incidentRow
	p    *model.Principal
	// before is each incident as locked (nil: created here); cur as it is now.
	before  map[string]*model.Incident
	cur     map[string]*model.Incident
	fresh   map[string]bool
	entries map[string][]model.UpdateInput
	comps   map[string][]string
	// patched incidents had their row written (updatedAt moved, audited)
	// by a patch; moved holds, per incident, the components monitoring
	// took off it (Before) and put on it (After), for its audit row.
	patched map[string]bool
	moved   map[string]*model.Change
}

func newWork(g ingest, t *txn, p *model.Principal, read map[string]*incidentRow) *work {
	return &work{g: g, t: t, read: read, p: p, before: map[string]*model.Incident{}, cur: map[string]*model.Incident{},
		fresh: map[string]bool{}, entries: map[string][]model.UpdateInput{}, comps: map[string][]string{},
		patched: map[string]bool{}, moved: map[string]*model.Change{}}
}

// lock locks the given incidents (REST writes lock them too, so timeline
// numbering and status checks cannot race) in id order, and checks that
// they are still open.
func (w *work) lock(ctx context.Context, ids ...string) error {
	ids = slices.DeleteFunc(slices.Compact(slices.Sorted(slices.Values(ids))), func(id string) bool { return id == "" })
	if len(ids) == 0 {
		return nil
	}
	// The rows were read with the decision, under the report's locks, which
	// keep other reports off them; only an API write could have changed
	// one since. The first statement of the write batch locks them and
	// fails the batch if one did (then the report is decided again): the
	// rows stay locked for one round trip, not two.
	lw := &where{}
	lw.and("tenant_id = " + lw.arg(w.p.TenantID))
	lw.and("NOT is_deleted")
	lw.and(openStatusOf(""))
	var pairs []string
	for _, id := range ids {
		row := w.read[id]
		if row == nil {
			return model.Conflict("incident " + id + " was closed or deleted meanwhile; send the report again")
		}
		inc := row.toModel()
		w.before[inc.ID], w.cur[inc.ID] = inc, inc
		pairs = append(pairs, "("+lw.arg(id)+", "+lw.arg(row.UpdatedAt)+")")
	}
	if !w.g.s.pg {
		return nil // one writer: the rows cannot have changed within this transaction
	}
	lw.and("(id, updated_at) IN (" + strings.Join(pairs, ", ") + ")")
	// 1/0 when a row is missing or changed: the batch fails with SQLSTATE
	// 22012, which Report turns into a second decision.
	return w.t.exec(ctx, staleIncidents, `SELECT 1 / (CASE WHEN count(*) = `+lw.arg(len(ids))+` THEN 1 ELSE 0 END)
		FROM (SELECT id FROM incidents WHERE `+lw.String()+` ORDER BY id FOR UPDATE) locked`, lw.args...)
}

// staleIncidents labels the statement that locks a report's incidents
// and checks that they are as read.
const staleIncidents = "lock incidents as read"

func (w *work) note(id, title, text string) {
	w.entries[id] = append(w.entries[id], model.UpdateInput{DisplayName: title, Description: text})
}

func (w *work) touched(id, component string) { w.comps[id] = append(w.comps[id], component) }

// affected records a component monitoring took off (removed) or put on
// (added) an incident, for the incident's audit row.
func (w *work) affected(id string, removed, added *model.Affect) {
	c := w.moved[id]
	if c == nil {
		c = &model.Change{Before: []map[string]any{}, After: []map[string]any{}}
		w.moved[id] = c
	}
	if removed != nil {
		c.Before = append(c.Before.([]map[string]any), map[string]any{"reference": removed.ComponentID})
	}
	if added != nil {
		c.After = append(c.After.([]map[string]any), model.AffectsChange([]model.Affect{*added})...)
	}
}

func (w *work) create(ctx context.Context, in model.IncidentCreate) (*model.Incident, error) {
	inc, _, err := incidents(w.g).insertTx(ctx, w.t, w.p, in)
	if err != nil {
		return nil, err
	}
	w.cur[inc.ID], w.fresh[inc.ID] = inc, true
	return inc, nil
}

// patch applies a patch to a locked incident.
func (w *work) patch(ctx context.Context, id string, patch model.IncidentPatch) error {
	a, err := incidents(w.g).applyTx(ctx, w.t, w.p, w.cur[id], nil, patch)
	if err != nil {
		return err
	}
	w.cur[id] = a.next
	w.entries[id] = append(w.entries[id], a.entries...)
	w.patched[id] = w.patched[id] || a.changed
	return nil
}

func (w *work) attach(ctx context.Context, incident string, c *model.Component, impact model.Impact, title, label string) error {
	if err := w.g.s.insertAffects(ctx, w.t, w.p.TenantID, incident, []model.Affect{model.MonitoringAffect(c.ID, impact)}); err != nil {
		return fmt.Errorf("attach component: %w", err)
	}
	w.touched(incident, c.ID)
	added := model.MonitoringAffect(c.ID, impact)
	w.affected(incident, nil, &added)
	w.note(incident, title, fmt.Sprintf("%s at impact %s", label, impact))
	return nil
}

func (w *work) detach(ctx context.Context, incident string, c *model.Component, impact model.Impact, closeIt bool) error {
	if err := w.g.s.writeAffects(ctx, w.t, w.p.TenantID, incident, model.AffectsDiff{Removed: []model.Affect{{ComponentID: c.ID}}}); err != nil {
		return fmt.Errorf("detach component: %w", err)
	}
	w.touched(incident, c.ID)
	w.affected(incident, &model.Affect{ComponentID: c.ID}, nil)
	w.note(incident, "Component moved by monitoring", fmt.Sprintf("%s moved to an incident of impact %s", c.DisplayName, impact))
	if !closeIt {
		return nil
	}
	if err := w.patch(ctx, incident, model.IncidentPatch{Status: model.Some(model.StatusClosed)}); err != nil {
		return err
	}
	w.note(incident, "Closed by system", "its last component moved to another incident")
	return nil
}

// finish appends each incident's timeline entries and records one event per
// incident, in id order. An incident whose components monitoring changed
// is updated like one whose affects a PATCH changed: updatedAt and
// updatedBy move (unless a patch here moved them already) and an audit row
// names the components.
func (w *work) finish(ctx context.Context) error {
	now := model.NormalizeTime(w.g.s.clock.Now())
	for _, id := range slices.Sorted(maps.Keys(w.cur)) {
		if ch := w.moved[id]; ch != nil && !w.fresh[id] {
			if !w.patched[id] {
				next := *w.cur[id]
				next.UpdatedAt, next.UpdatedBy = now, w.p.ActorID
				if err := w.t.exec(ctx, "touch incident", `UPDATE incidents SET updated_at = $1, updated_by = $2 WHERE id = $3 AND tenant_id = $4`,
					newDBTime(now), w.p.ActorID, id, w.p.TenantID); err != nil {
					return err
				}
				w.cur[id] = &next
			}
			if err := w.g.s.audit(ctx, w.t, w.p, model.AuditIncidentUpdate, "incident", id, map[string]model.Change{"affects": *ch}); err != nil {
				return err
			}
		}
		if err := w.g.s.appendUpdates(ctx, w.t, w.p, id, w.fresh[id], w.entries[id]); err != nil {
			return err
		}
		typ := model.EventIncidentUpdated
		if w.fresh[id] {
			typ = model.EventIncidentCreated
		}
		if err := w.g.s.appendChange(ctx, w.t, typ, w.before[id], w.cur[id], w.comps[id]); err != nil {
			return err
		}
	}
	return nil
}

// Answers carry at most this many components and the latest this many
// updates (with the full counts); a report about one component should not
// ship an incident of a thousand.
const (
	reportComponents = 100
	reportUpdates    = 20
)

func (g ingest) result(ctx context.Context, db *Store, tenant, id string) (*model.IngestResult, error) {
	res := &model.IngestResult{Impact: -1}
	var incs []incidentRow
	var updates map[string][]model.IncidentUpdate
	// The incident, its first components (in key order, so the index stops
	// at the page), their full count and worst impact, and its latest
	// updates, in one round trip.
	err := db.pipeline(ctx, func(i int, r rows) error {
		var err error
		switch i {
		case 0:
			incs, err = scanIncidents(r)
		case 1:
			for r.Next() {
				var a model.Affect
				var impact int
				if err := r.Scan(&a.ComponentID, &impact, &a.TypeID, &a.Severity); err != nil {
					return err
				}
				a.Impact = model.Impact(impact)
				res.Affects = append(res.Affects, a)
			}
		case 2:
			var worst *int
			if r.Next() {
				if err := r.Scan(&res.AffectCount, &worst); err != nil {
					return err
				}
			}
			if worst != nil {
				res.Impact = model.Impact(*worst)
			}
		default:
			updates, err = scanUpdates(r, true)
		}
		return err
	}, stmt{"SELECT " + incidentColumns + " FROM incidents WHERE id = $1 AND tenant_id = $2 AND NOT is_deleted", []any{id, tenant}},
		stmt{`SELECT component_id, impact, impact_type_id, severity FROM incident_affects
			WHERE incident_id = $1 AND tenant_id = $2 ORDER BY incident_id, component_id LIMIT $3`, []any{id, tenant, reportComponents}},
		stmt{`SELECT count(*), MAX(impact) FROM incident_affects WHERE incident_id = $1 AND tenant_id = $2`, []any{id, tenant}},
		updatesStmt(tenant, []string{id}, reportUpdates))
	if err != nil {
		return nil, fmt.Errorf("ingest result: %w", err)
	}
	if len(incs) == 0 {
		// Deleted meanwhile (a racing maintenance or API delete).
		return nil, model.Conflict("incident " + id + " was deleted meanwhile; send the report again")
	}
	res.Incident = incs[0].toModel()
	res.Updates = updates[id]
	if n := len(res.Updates); n > 0 {
		res.UpdateCount = res.Updates[n-1].Order + 1 // orders run 0, 1, 2, ...
	}
	return res, nil
}

// fastPath answers the common report, "still down at the same impact", with
// reads only and no lock: maintenance covering the component, or an open
// incident already affecting it at the same or a higher impact. Anything else
// goes to the locked path, which decides again from scratch.
func (g ingest) fastPath(ctx context.Context, p *model.Principal, r model.ComponentReport) (*model.IngestResult, *found, error) {
	f, err := g.findComponent(ctx, g.s, p.TenantID, r)
	if err != nil {
		return nil, nil, err
	}
	if f.inMaintenance {
		m, err := (maintenance(g)).activeFor(ctx, g.s, p.TenantID, f.c.ID)
		if err != nil || m == nil { // nil: the window ended meanwhile; decide under the locks
			return nil, f, err
		}
		return &model.IngestResult{Maintenance: m, Impact: model.ImpactMaintenance, AffectCount: 1,
			Affects: []model.Affect{model.MonitoringAffect(f.c.ID, model.ImpactMaintenance)}}, f, nil
	}
	if f.incident == "" || f.impact < r.Impact {
		return nil, f, nil
	}
	res, err := g.result(ctx, g.s, p.TenantID, f.incident)
	if isConflict(err) { // closed or deleted since it was read: decide under the locks
		return nil, f, nil
	}
	return res, f, err
}

func isConflict(err error) bool {
	var e *model.Error
	return errors.As(err, &e) && e.Code == model.CodeConflict
}

func (g ingest) Status(ctx context.Context, q model.ComponentQuery) ([]model.ComponentState, int, error) {
	p, err := model.Authorize(ctx, model.ScopeComponentsRead)
	if err != nil {
		return nil, 0, err
	}
	if !p.Has(model.ScopeIncidentsRead) { // the answer names incidents
		return nil, 0, model.Forbidden("this credential lacks the scope incidents:read")
	}
	page, err := components(g).List(ctx, q)
	if err != nil {
		return nil, 0, err
	}
	out := make([]model.ComponentState, len(page.Items))
	if len(page.Items) == 0 {
		return out, page.TotalCount, nil
	}
	ids := make([]string, len(page.Items))
	for i, c := range page.Items {
		out[i].Component = c
		ids[i] = c.ID
	}
	affecting, err := g.s.affectingOf(ctx, p.TenantID, ids)
	if err != nil {
		return nil, 0, model.Internal(err, "component status")
	}
	for i := range out {
		out[i].Incidents = affecting[out[i].Component.ID]
	}
	return out, page.TotalCount, nil
}
