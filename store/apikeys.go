package store

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/incidentd/incidentd/model"
)

type apiKeyRow struct {
	ID         string
	TenantID   string
	Name       string
	Prefix     string
	Hash       []byte
	Scopes     string
	Tier       string
	ActorID    string
	CreatedAt  dbTime
	ExpiresAt  *dbTime
	RevokedAt  *dbTime
	LastUsedAt *dbTime
}

// apiKeyColumns are apiKeyRow's columns, in scan order.
const apiKeyColumns = "id, tenant_id, name, prefix, hash, scopes, tier, actor_id, created_at, expires_at, revoked_at, last_used_at"

func (r *apiKeyRow) columns() []any {
	return []any{&r.ID, &r.TenantID, &r.Name, &r.Prefix, &r.Hash, &r.Scopes, &r.Tier, &r.ActorID, &r.CreatedAt, &r.ExpiresAt, &r.RevokedAt, &r.LastUsedAt}
}

// insert queues the row's insert in t.
func (r *apiKeyRow) insert(ctx context.Context, t *txn) error {
	return t.exec(ctx, "insert api key", `INSERT INTO api_keys (`+apiKeyColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.ID, r.TenantID, r.Name, r.Prefix, r.Hash, r.Scopes, r.Tier, r.ActorID, r.CreatedAt, nullTime(r.ExpiresAt), nullTime(r.RevokedAt), nullTime(r.LastUsedAt))
}

// apiKeyRows reads key rows (rest: WHERE ...).
func (s *Store) apiKeyRows(ctx context.Context, db querier, rest string, args ...any) ([]*apiKeyRow, error) {
	rows, err := db.query(ctx, `SELECT `+apiKeyColumns+` FROM api_keys `+rest, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*apiKeyRow
	for rows.Next() {
		var r apiKeyRow
		if err := rows.Scan(r.columns()...); err != nil {
			return nil, err
		}
		out = append(out, &r)
	}
	return out, rows.Err()
}

func (r *apiKeyRow) toModel() *model.APIKey {
	var scopes []model.Scope
	for _, s := range strings.Fields(r.Scopes) {
		scopes = append(scopes, model.Scope(s))
	}
	return &model.APIKey{
		ID: r.ID, TenantID: r.TenantID, Name: r.Name, Prefix: r.Prefix, Hash: r.Hash,
		Scopes: scopes, Tier: r.Tier, ActorID: r.ActorID, CreatedAt: r.CreatedAt.Time,
		ExpiresAt: r.ExpiresAt.ptr(), RevokedAt: r.RevokedAt.ptr(), LastUsedAt: r.LastUsedAt.ptr(),
	}
}

// APIKeys returns the API key store.
func (s *Store) APIKeys() model.APIKeyStore { return apiKeys{s} }

type apiKeys struct{ s *Store }

func (x apiKeys) IssueAPIKey(ctx context.Context, in model.APIKeyIssue) (*model.APIKey, string, error) {
	if errs := in.Validate(); len(errs) > 0 {
		return nil, "", model.Invalid("invalid API key parameters", errs...)
	}
	scopes := make([]string, len(in.Scopes))
	for i, s := range in.Scopes {
		scopes[i] = string(s)
	}
	row, secret, _, err := newKeyRow(in, scopes, x.s.clock.Now())
	if err != nil {
		return nil, "", err
	}
	// The command line has no principal; the trail names it as the actor.
	cli := &model.Principal{TenantID: in.TenantID, ActorID: "cli"}
	err = x.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := row.insert(ctx, t); err != nil {
			return err
		}
		return x.s.audit(ctx, t, cli, model.AuditAPIKeyCreate, "apikey", row.ID, map[string]model.Change{
			"name": {After: row.Name}, "scopes": {After: scopes}, "tier": {After: row.Tier}, "prefix": {After: row.Prefix},
			"expiresAt": {After: timeOrNil(row.ExpiresAt)},
		})
	})
	if err != nil {
		return nil, "", model.Internal(err, "issue api key")
	}
	return row.toModel(), secret, nil
}

func newKeyRow(in model.APIKeyIssue, scopes []string, now time.Time) (*apiKeyRow, string, string, error) {
	if in.Tier == "" {
		in.Tier = "default"
	}
	secret, prefix, hash := model.NewAPIKeySecret()
	id := model.NewID("key", 12)
	if in.ActorID == "" {
		in.ActorID = id
	}
	return &apiKeyRow{
		ID: id, TenantID: in.TenantID, Name: in.Name, Prefix: prefix, Hash: hash,
		Scopes: strings.Join(scopes, " "), Tier: in.Tier, ActorID: in.ActorID,
		CreatedAt: newDBTime(now), ExpiresAt: newDBTimePtr(in.ExpiresAt),
	}, secret, prefix, nil
}

func (x apiKeys) APIKeyByPrefix(ctx context.Context, prefix string) (*model.APIKey, error) {
	rows, err := x.s.apiKeyRows(ctx, x.s, `WHERE prefix = $1`, prefix)
	if err != nil {
		return nil, model.Internal(fmt.Errorf("api key by prefix: %w", err), "authenticate")
	}
	if len(rows) == 0 {
		return nil, model.NotFound("API key", prefix)
	}
	return rows[0].toModel(), nil
}

func (x apiKeys) TouchAPIKey(ctx context.Context, id string, at time.Time) error {
	if _, err := x.s.exec(ctx, `UPDATE api_keys SET last_used_at = $1 WHERE id = $2`, newDBTime(at), id); err != nil {
		return fmt.Errorf("touch api key: %w", err)
	}
	return nil
}

// KeyAdmin returns the API key management service.
func (s *Store) KeyAdmin() model.APIKeyService { return keyAdmin{s} }

type keyAdmin struct{ s *Store }

const keysChannel = "incidentd_keys"

// Key notifications are "r:<prefix>" (revoked: end its streams too) or
// "c:<prefix>" (changed: forget the cached copy).
const (
	KeyRevoked = "r:"
	KeyChanged = "c:"
)

func (k keyAdmin) Create(ctx context.Context, in model.APIKeyCreate) (*model.APIKey, string, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, "", err
	}
	if errs := in.Validate(p, k.s.clock.Now()); len(errs) > 0 {
		return nil, "", model.Invalid("Invalid request body", errs...)
	}
	// A key made over the API runs in its creator's tier: only the command
	// line, which bootstraps, chooses tiers freely.
	if in.Tier != "" && in.Tier != p.Tier {
		return nil, "", model.Forbidden("a key can only be given this credential's own tier (" + p.Tier + ")")
	}
	scopes := make([]string, len(in.Scopes))
	for i, s := range in.Scopes {
		scopes[i] = string(s)
	}
	row, secret, _, err := newKeyRow(model.APIKeyIssue{TenantID: p.TenantID, Name: in.Name, Tier: p.Tier,
		ActorID: p.ActorID, ExpiresAt: in.ExpiresAt}, scopes, k.s.clock.Now())
	if err != nil {
		return nil, "", err
	}
	err = k.s.write(ctx, func(ctx context.Context, t *txn) error {
		if err := row.insert(ctx, t); err != nil {
			return err
		}
		return k.s.audit(ctx, t, p, model.AuditAPIKeyCreate, "apikey", row.ID, map[string]model.Change{
			"name": {After: row.Name}, "scopes": {After: scopes}, "tier": {After: row.Tier}, "prefix": {After: row.Prefix},
			"expiresAt": {After: timeOrNil(row.ExpiresAt)},
		})
	})
	if err != nil {
		return nil, "", model.Internal(err, "create api key")
	}
	return row.toModel(), secret, nil
}

func timeOrNil(t *dbTime) any {
	if t == nil {
		return nil
	}
	return t.UTC().Format(time.RFC3339Nano)
}

func (k keyAdmin) List(ctx context.Context) ([]*model.APIKey, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, err
	}
	rows, err := k.s.apiKeyRows(ctx, k.s, `WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`, p.TenantID, model.MaxAPIKeysListed)
	if err != nil {
		return nil, model.Internal(err, "list api keys")
	}
	out := make([]*model.APIKey, len(rows))
	for i := range rows {
		out[i] = rows[i].toModel()
	}
	return out, nil
}

func (k keyAdmin) load(ctx context.Context, db querier, tenant, id string, lock bool) (*apiKeyRow, error) {
	q := `WHERE id = $1 AND tenant_id = $2`
	if lock && k.s.pg {
		q += " FOR UPDATE"
	}
	rows, err := k.s.apiKeyRows(ctx, db, q, id, tenant)
	if err != nil {
		return nil, model.Internal(err, "load api key")
	}
	if len(rows) == 0 {
		return nil, model.NotFound("API key", id)
	}
	return rows[0], nil
}

func (k keyAdmin) Get(ctx context.Context, id string) (*model.APIKey, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, err
	}
	row, err := k.load(ctx, k.s, p.TenantID, id, false)
	if err != nil {
		return nil, err
	}
	return row.toModel(), nil
}

func (k keyAdmin) Revoke(ctx context.Context, id string) (*model.APIKey, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, err
	}
	var out *model.APIKey
	err = k.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := k.load(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := k.s.checkVersion(ctx, t, p.TenantID, row.toModel().Version()); err != nil {
			return err
		}
		if row.RevokedAt == nil {
			now := newDBTime(k.s.clock.Now())
			row.RevokedAt = &now
			if err := t.exec(ctx, "revoke api key", `UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND tenant_id = $3`, now, row.ID, row.TenantID); err != nil {
				return err
			}
			if err := k.s.keyChanged(ctx, t, KeyRevoked+row.Prefix); err != nil {
				return err
			}
			if err := k.s.audit(ctx, t, p, model.AuditAPIKeyRevoke, "apikey", row.ID,
				map[string]model.Change{"revokedAt": {After: timeOrNil(row.RevokedAt)}}); err != nil {
				return err
			}
		}
		out = row.toModel()
		return nil
	})
	if err != nil {
		return nil, domainOrInternal(err, "revoke api key")
	}
	return out, nil
}

func (k keyAdmin) Rotate(ctx context.Context, id string, overlap time.Duration) (*model.APIKey, string, error) {
	p, err := model.Authorize(ctx, model.ScopeAPIKeysAdmin)
	if err != nil {
		return nil, "", err
	}
	// The doors bound the seconds before they become a duration; the
	// service checks the duration against the same rule.
	secs := int64(overlap / time.Second)
	if overlap < 0 {
		secs = -1 // -500ms divides to 0
	}
	if _, err := model.RotationOverlap(secs); err != nil {
		return nil, "", err
	}
	now := k.s.clock.Now()
	var created *model.APIKey
	var secret string
	err = k.s.write(ctx, func(ctx context.Context, t *txn) error {
		row, err := k.load(ctx, t, p.TenantID, id, true)
		if err != nil {
			return err
		}
		if err := k.s.checkVersion(ctx, t, p.TenantID, row.toModel().Version()); err != nil {
			return err
		}
		if row.RevokedAt != nil || (row.ExpiresAt != nil && !now.Before(row.ExpiresAt.Time)) {
			return model.BusinessRule("a revoked or expired key cannot be rotated; create a new one")
		}
		// Rotation hands out a new secret: the caller must hold everything it grants.
		for _, sc := range strings.Fields(row.Scopes) {
			if !p.Has(model.Scope(sc)) {
				return model.Forbidden("rotating this key would grant " + sc + ", which this credential lacks")
			}
		}
		// Tiers are compared by name, not ranked: tiers are configurable and
		// "default" (200/minute) outranks free, pro and enterprise (per hour).
		if row.Tier != p.Tier {
			return model.Forbidden("rotating this key would grant the " + row.Tier + " tier, which this credential lacks")
		}
		// The successor acts as the key's actor (its audit trail and budget):
		// only that actor may hand it out, as Create makes keys for the caller.
		if row.ActorID != p.ActorID {
			return model.Forbidden("rotating this key would let this credential act as another actor; its own actor (or the command line) must rotate it")
		}
		key, sec, _, err := newKeyRow(model.APIKeyIssue{TenantID: row.TenantID, Name: row.Name, Tier: row.Tier, ActorID: row.ActorID,
			ExpiresAt: row.ExpiresAt.ptr()}, strings.Fields(row.Scopes), now)
		if err != nil {
			return err
		}
		if err := key.insert(ctx, t); err != nil {
			return err
		}
		until := newDBTime(now.Add(overlap))
		if row.ExpiresAt == nil || until.Before(row.ExpiresAt.Time) {
			row.ExpiresAt = &until
			if err := t.exec(ctx, "expire rotated key", `UPDATE api_keys SET expires_at = $1 WHERE id = $2 AND tenant_id = $3`, until, row.ID, row.TenantID); err != nil {
				return err
			}
		}
		created, secret = key.toModel(), sec
		if err := k.s.audit(ctx, t, p, model.AuditAPIKeyRotate, "apikey", row.ID, map[string]model.Change{
			"expiresAt": {After: timeOrNil(row.ExpiresAt)}, "successor": {After: key.ID}}); err != nil {
			return err
		}
		if err := k.s.audit(ctx, t, p, model.AuditAPIKeyCreate, "apikey", key.ID, map[string]model.Change{
			"name": {After: key.Name}, "scopes": {After: strings.Fields(key.Scopes)}, "tier": {After: key.Tier},
			"prefix": {After: key.Prefix}, "predecessor": {After: row.ID}}); err != nil {
			return err
		}
		return k.s.keyChanged(ctx, t, KeyChanged+row.Prefix)
	})
	if err != nil {
		return nil, "", domainOrInternal(err, "rotate api key")
	}
	return created, secret, nil
}

// keyChanged tells, once t commits, this instance at once (before the
// revoking request is answered) and every other through NOTIFY
// (PostgreSQL; SQLite serves one instance) that a key changed.
func (s *Store) keyChanged(ctx context.Context, t *txn, note string) error {
	t.onCommit(func() {
		if f := s.onKeyChange.Load(); f != nil {
			(*f)(note)
		}
	})
	if !s.pg {
		return nil
	}
	return t.exec(ctx, "notify key change", `SELECT pg_notify($1, $2)`, keysChannel, note)
}

// OnKeyChange registers what this instance does when one of its own writes
// changes a key ("r:<prefix>" revoked, "c:<prefix>" changed): called after
// commit, before the write returns. Other instances' changes arrive
// through the watcher's keys callback.
func (s *Store) OnKeyChange(f func(note string)) { s.onKeyChange.Store(&f) }
