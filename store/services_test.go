package store

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// sentinel is in every value this test writes or looks for, so that a
// statement text holding a value is found.
const sentinel = "zq7x"

type traced struct {
	mu   sync.Mutex
	stmt []string
}

func (tr *traced) add(q string) {
	tr.mu.Lock()
	tr.stmt = append(tr.stmt, q)
	tr.mu.Unlock()
}

func wantCode(t *testing.T, err error, code model.Code, what string) {
	t.Helper()
	var e *model.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Errorf("%s: %v, want code %s", what, err, code)
	}
}

// TestServices drives every service of the store directly, on both
// stores, and checks what each promises; meanwhile it records every
// statement the store sends and checks that none carries a value in its
// text (the values all contain the sentinel).
func TestServices(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		var tr traced
		s := openStore(t, url, Options{Trace: tr.add})
		ten, other := tenant(sentinel+"-svc"), tenant(sentinel+"-other")
		ctx, otherCtx := as(ten), as(other)
		at := time.Date(2026, 4, 1, 10, 0, 0, 123456789, time.UTC)
		var ids []string
		watch(t, s, ten)

		// Catalogue and components.
		comp, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some(sentinel + " API"),
			Labels: model.Some(map[string]string{sentinel + "-k": sentinel + "-v"})})
		if err != nil {
			t.Fatal(err)
		}
		typ, err := s.Catalogue().CreateImpactType(ctx, model.ImpactTypeInput{DisplayName: model.Some(sentinel + " slow"), Description: model.Some(sentinel)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Catalogue().CreateSeverity(ctx, model.SeverityInput{DisplayName: model.Some(sentinel + " sev"), Value: model.Some(60)}); err != nil {
			t.Fatal(err)
		}
		phases, err := s.Catalogue().ReplacePhases(ctx, []string{sentinel + " triage", sentinel + " fix"})
		if err != nil || phases.Generation != 1 {
			t.Fatalf("phases: %+v %v", phases, err)
		}
		if _, err := s.Components().Get(otherCtx, comp.ID); err == nil {
			t.Error("another tenant reads the component")
		}
		page, err := s.Components().List(ctx, model.ComponentQuery{NamePrefix: sentinel, Labels: map[string]string{sentinel + "-k": sentinel + "-v"}, Limit: 10})
		if err != nil || page.TotalCount != 1 || page.Items[0].ID != comp.ID {
			t.Errorf("component list: %+v %v", page, err)
		}

		// Incidents: create with affects and a phase, read, patch, timeline.
		desc := sentinel + " described"
		inc, created, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: sentinel + " Gateway down", Description: &desc, Severity: model.SeverityHigh,
			Service: ptr(sentinel + "-svc"), Tags: []string{sentinel + "-tag"}, OccurredAt: at, Phase: &model.PhaseRef{Generation: 1, Order: 0},
			Affects: []model.AffectInput{{ComponentID: comp.ID, TypeID: typ.ID, Severity: ptr(60)}}})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, inc.ID)
		if len(created) != 1 || created[0].ComponentID != comp.ID || created[0].Severity != 60 {
			t.Errorf("create returned affects %+v", created)
		}
		got, affects, err := s.Incidents().GetWithAffects(ctx, inc.ID)
		if err != nil || !got.OccurredAt.Equal(at.Truncate(time.Microsecond)) || len(affects) != 1 || affects[0].TypeID != typ.ID {
			t.Fatalf("get: %+v %+v %v", got, affects, err)
		}
		if _, err := s.Incidents().Get(otherCtx, inc.ID); err == nil {
			t.Error("another tenant reads the incident")
		}
		_, _, err = s.Incidents().Create(ctx, model.IncidentCreate{Title: sentinel, Severity: model.SeverityLow, OccurredAt: at,
			Affects: []model.AffectInput{{ComponentID: "cmp_" + sentinel, TypeID: "imp_minor"}}})
		wantCode(t, err, model.CodeBusinessRule, "unknown component")
		upd, kept, err := s.Incidents().Update(ctx, inc.ID, model.IncidentPatch{Status: model.Some(model.StatusInvestigating),
			Phase: model.Some(model.PhaseRef{Generation: 1, Order: 1}), Title: model.Some(sentinel + " GATEWAY slow")})
		if err != nil || upd.Status != model.StatusInvestigating || !upd.UpdatedAt.After(inc.UpdatedAt) || !slices.Equal(kept, affects) {
			t.Fatalf("update: %+v %+v %v", upd, kept, err)
		}
		if _, err := s.Incidents().AddUpdate(ctx, inc.ID, model.UpdateInput{DisplayName: sentinel + " note", Description: sentinel}); err != nil {
			t.Fatal(err)
		}
		timeline, err := s.Incidents().Updates(ctx, inc.ID)
		if err != nil || len(timeline) < 2 {
			t.Fatalf("timeline: %+v %v", timeline, err)
		}
		for i, u := range timeline {
			if u.Order != i {
				t.Errorf("timeline entry %d numbered %d", i, u.Order)
			}
		}
		_, _, err = s.Incidents().Update(otherCtx, inc.ID, model.IncidentPatch{Title: model.Some("x")})
		wantCode(t, err, model.CodeNotFound, "another tenant's update")
		wantCode(t, s.Incidents().Delete(otherCtx, inc.ID), model.CodeNotFound, "another tenant's delete")

		for i := range 4 {
			more, _, err := s.Incidents().Create(ctx, model.IncidentCreate{Title: sentinel + " second " + string(rune('a'+i)), Severity: model.SeverityLow, OccurredAt: at.Add(time.Duration(i) * time.Hour)})
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, more.ID)
		}
		// Lists: a keyword in another case, filters, cursors to the end.
		kw, err := s.Incidents().List(ctx, model.IncidentQuery{Filter: model.IncidentFilter{Keyword: strings.ToUpper(sentinel) + " GATEWAY"}, Sort: model.DefaultSort,
			Limit: 10, WithAffects: true})
		if err != nil || kw.TotalCount != 1 || kw.Items[0].ID != inc.ID || !slices.Equal(kw.Affects[inc.ID], affects) {
			t.Errorf("keyword list: %+v %v", kw, err)
		}
		if p, err := s.Incidents().List(ctx, model.IncidentQuery{Filter: model.IncidentFilter{Service: ptr(sentinel + "-svc"),
			Statuses: []model.Status{model.StatusInvestigating}}, Sort: model.DefaultSort, Limit: 10}); err != nil || p.TotalCount != 1 {
			t.Errorf("service list: %+v %v", p, err)
		}
		from := at.Add(-time.Hour)
		q := model.IncidentQuery{Filter: model.IncidentFilter{Service: nil, From: &from, Severities: []model.Severity{model.SeverityLow}}, Sort: model.Sort{Field: model.SortTitle}, Limit: 3}
		var walked []string
		for {
			p, err := s.Incidents().List(ctx, q)
			if err != nil {
				t.Fatal(err)
			}
			if p.TotalCount != 4 {
				t.Errorf("walk: totalCount %d, want 4", p.TotalCount)
			}
			for _, it := range p.Items {
				walked = append(walked, it.Title)
			}
			if p.NextCursor == "" {
				break
			}
			if q.After, err = model.DecodeCursor(p.NextCursor); err != nil {
				t.Fatal(err)
			}
		}
		if len(walked) != 4 || !slices.IsSorted(walked) {
			t.Errorf("walked %v", walked)
		}
		if p, err := s.Incidents().List(otherCtx, model.IncidentQuery{Sort: model.DefaultSort, Limit: 10}); err != nil || len(p.Items) != 0 {
			t.Errorf("another tenant lists %d incidents (%v)", len(p.Items), err)
		}
		if err := s.Incidents().Delete(ctx, ids[1]); err != nil {
			t.Fatal(err)
		}

		// Relations, status, maintenance, monitoring.
		rel := s.Relations()
		if m, err := rel.AffectingOf(ctx, []string{comp.ID}); err != nil || len(m[comp.ID]) != 1 || m[comp.ID][0].ID != inc.ID {
			t.Errorf("affecting: %+v %v", m, err)
		}
		if m, err := rel.AffectingOf(otherCtx, []string{comp.ID}); err != nil || len(m) != 0 {
			t.Errorf("another tenant sees affects: %+v %v", m, err)
		}
		if m, err := rel.UpdatesOf(ctx, []string{inc.ID}, 100); err != nil || len(m[inc.ID]) != len(timeline) {
			t.Errorf("updates of: %d, want %d (%v)", len(m[inc.ID]), len(timeline), err)
		}
		// latest bounds each timeline, keeping its newest entries in order.
		if m, err := rel.UpdatesOf(ctx, []string{inc.ID}, 1); err != nil || len(m[inc.ID]) != 1 || m[inc.ID][0].Order != timeline[len(timeline)-1].Order {
			t.Errorf("latest update of: %+v (%v)", m[inc.ID], err)
		}
		mon, err := s.Components().Create(ctx, model.ComponentInput{DisplayName: model.Some(sentinel + " db"), Labels: model.Some(map[string]string{"region": sentinel})})
		if err != nil {
			t.Fatal(err)
		}
		report := model.ComponentReport{Name: sentinel + " db", Attributes: map[string]string{"region": sentinel}, Impact: model.ImpactMinor, Text: sentinel + " opened"}
		res, err := s.Ingest().Report(ctx, report)
		if err != nil || !res.Created || res.Impact != model.ImpactMinor {
			t.Fatalf("report: %+v %v", res, err)
		}
		ids = append(ids, res.Incident.ID)
		again, err := s.Ingest().Report(ctx, report)
		if err != nil || again.Created || again.Incident.ID != res.Incident.ID {
			t.Errorf("repeated report: %+v %v", again, err)
		}
		mw, err := s.Maintenance().Create(ctx, model.MaintenanceInput{Description: sentinel + " window", StartsAt: time.Now().Add(-time.Minute),
			EndsAt: time.Now().Add(time.Hour), ComponentIDs: []string{mon.ID}})
		if err != nil {
			t.Fatal(err)
		}
		if sum, err := s.Status().Summary(ctx); err != nil || len(sum.Maintenance) != 1 || len(sum.OpenIncidents) != 5 {
			t.Errorf("summary: %+v %v", sum, err)
		}
		wantCode(t, s.Maintenance().Delete(otherCtx, mw.ID), model.CodeNotFound, "another tenant's maintenance delete")
		if err := s.Maintenance().Delete(ctx, mw.ID); err != nil {
			t.Fatal(err)
		}
		if err := s.Status().SetPublication(ctx, model.Publication{Public: true}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Status().PublicSummary(context.Background(), ten); err != nil {
			t.Error(err)
		}

		// API keys.
		key, secret, err := s.KeyAdmin().Create(ctx, model.APIKeyCreate{Name: sentinel + " key", Scopes: []model.Scope{model.ScopeIncidentsRead}, Tier: "default"})
		if err != nil || !strings.HasPrefix(secret, key.Prefix) {
			t.Fatalf("key: %+v %v", key, err)
		}
		if byPrefix, err := s.APIKeys().APIKeyByPrefix(context.Background(), key.Prefix); err != nil || byPrefix.ID != key.ID {
			t.Errorf("by prefix: %+v %v", byPrefix, err)
		}
		if _, err := s.KeyAdmin().Get(otherCtx, key.ID); err == nil {
			t.Error("another tenant reads the key")
		}
		// The authenticator's side: issue with an expiry, record a use, and
		// see both (to the microsecond) through the lookup it does per request.
		exp := at.Add(24 * time.Hour)
		issued, issuedSecret, err := s.APIKeys().IssueAPIKey(context.Background(), model.APIKeyIssue{TenantID: ten, Name: sentinel + " issued",
			Scopes: []model.Scope{model.ScopeIncidentsWrite}, Tier: "pro", ActorID: "actor-" + ten, ExpiresAt: &exp})
		if err != nil || !strings.HasPrefix(issuedSecret, issued.Prefix) || !bytes.Equal(issued.Hash, model.HashAPIKey(issuedSecret)) {
			t.Fatalf("issue: %+v %v", issued, err)
		}
		if err := s.APIKeys().TouchAPIKey(context.Background(), issued.ID, at.Add(time.Hour)); err != nil {
			t.Fatal(err)
		}
		read, err := s.APIKeys().APIKeyByPrefix(context.Background(), issued.Prefix)
		if got := read; err != nil || got.ID != issued.ID || got.TenantID != ten || got.Tier != "pro" || got.ActorID != "actor-"+ten ||
			!slices.Equal(got.Scopes, issued.Scopes) || !bytes.Equal(got.Hash, issued.Hash) || got.RevokedAt != nil ||
			got.ExpiresAt == nil || !got.ExpiresAt.Equal(exp.Truncate(time.Microsecond)) ||
			got.LastUsedAt == nil || !got.LastUsedAt.Equal(at.Add(time.Hour).Truncate(time.Microsecond)) {
			t.Errorf("issued key read back: %+v %v", read, err)
		}
		if _, err := s.APIKeys().APIKeyByPrefix(context.Background(), "nokey0000000"); model.ErrorCode(err) != model.CodeNotFound {
			t.Errorf("unknown prefix: %v", err)
		}
		if revoked, err := s.KeyAdmin().Revoke(ctx, key.ID); err != nil || revoked.RevokedAt == nil {
			t.Errorf("revoke: %+v %v", revoked, err)
		}
		if got, err := s.APIKeys().APIKeyByPrefix(context.Background(), key.Prefix); err != nil || got.RevokedAt == nil {
			t.Errorf("a revoked key reads back unrevoked: %+v %v", got, err)
		}

		// Audit: opaque ids, walked with its cursor, refused elsewhere.
		var audit []*model.AuditEvent
		aq := model.AuditQuery{Limit: 4, ActorID: "actor-" + ten}
		for {
			p, err := s.Audit().List(ctx, aq)
			if err != nil {
				t.Fatal(err)
			}
			audit = append(audit, p.Items...)
			if !p.HasMore {
				break
			}
			aq.After = p.NextCursor
		}
		if len(audit) < 10 {
			t.Errorf("%d audit events", len(audit))
		}
		seen := map[string]bool{}
		for _, e := range audit {
			if !strings.HasPrefix(e.ID, "aud_") || seen[e.ID] || strings.ContainsAny(e.ID[4:], ".") {
				t.Errorf("audit id %q", e.ID)
			}
			seen[e.ID] = true
		}
		_, err = s.Audit().List(otherCtx, model.AuditQuery{Limit: 4, After: audit[0].ID})
		wantCode(t, err, model.CodeInvalid, "another tenant's audit cursor")

		// Events: replayed from the start in order; another tenant's id refused.
		evs, err := s.Events().IncidentEvents(ctx, model.Position{}, model.MaxReplay)
		if err != nil || len(evs) < 7 {
			t.Fatalf("events: %d %v", len(evs), err)
		}
		for i := 1; i < len(evs); i++ {
			if evs[i].Pos.Compare(evs[i-1].Pos) <= 0 {
				t.Errorf("events out of order at %d", i)
			}
		}
		if _, err := s.Events().ParsePosition(otherCtx, evs[0].Cursor); err == nil {
			t.Error("another tenant resumes from this tenant's event id")
		}
		if oe, err := s.Events().IncidentEvents(otherCtx, model.Position{}, model.MaxReplay); err != nil || len(oe) != 0 {
			t.Errorf("another tenant replays %d events (%v)", len(oe), err)
		}

		// No statement text holds a value.
		tr.mu.Lock()
		defer tr.mu.Unlock()
		if len(tr.stmt) < 50 {
			t.Fatalf("only %d statements traced", len(tr.stmt))
		}
		values := append([]string{sentinel, strings.ToUpper(sentinel), "2026-04-01"}, ids...)
		for _, q := range tr.stmt {
			for _, v := range values {
				if strings.Contains(q, v) {
					t.Errorf("a statement holds the value %q: %s", v, q)
				}
			}
		}
	})
}
