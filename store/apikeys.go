package store

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strings"

	"github.com/uptrace/bun"

	"github.com/incidentd/incidentd/model"
)

type apiKeyRow struct {
	bun.BaseModel `bun:"table:api_keys"`

	ID         string  `bun:"id,pk"`
	TenantID   string  `bun:"tenant_id"`
	Name       string  `bun:"name"`
	Prefix     string  `bun:"prefix"`
	Hash       []byte  `bun:"hash"`
	Scopes     string  `bun:"scopes"`
	Tier       string  `bun:"tier"`
	ActorID    string  `bun:"actor_id"`
	CreatedAt  dbTime  `bun:"created_at"`
	ExpiresAt  *dbTime `bun:"expires_at"`
	RevokedAt  *dbTime `bun:"revoked_at"`
	LastUsedAt *dbTime `bun:"last_used_at"`
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
	if in.Tier == "" {
		in.Tier = "default"
	}
	secret, prefix, hash := model.NewAPIKeySecret()
	id := model.NewID("key", 12)
	if in.ActorID == "" {
		in.ActorID = id
	}
	scopes := make([]string, len(in.Scopes))
	for i, s := range in.Scopes {
		scopes[i] = string(s)
	}
	row := &apiKeyRow{
		ID: id, TenantID: in.TenantID, Name: in.Name, Prefix: prefix, Hash: hash,
		Scopes: strings.Join(scopes, " "), Tier: in.Tier, ActorID: in.ActorID,
		CreatedAt: newDBTime(x.s.clock.Now()), ExpiresAt: newDBTimePtr(in.ExpiresAt),
	}
	if _, err := x.s.db.NewInsert().Model(row).Exec(ctx); err != nil {
		return nil, "", model.Internal(err, "issue api key")
	}
	return row.toModel(), secret, nil
}

func (x apiKeys) APIKeyByPrefix(ctx context.Context, prefix string) (*model.APIKey, error) {
	var row apiKeyRow
	err := x.s.db.NewSelect().Model(&row).Where("prefix = ?", prefix).Scan(ctx)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, model.NotFound("API key", prefix)
	}
	if err != nil {
		return nil, model.Internal(fmt.Errorf("api key by prefix: %w", err), "authenticate")
	}
	return row.toModel(), nil
}
