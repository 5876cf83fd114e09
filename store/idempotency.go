package store

import (
	"context"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Idempotency returns the idempotency key store.
func (s *Store) Idempotency() model.IdempotencyStore { return idempotency{s} }

type idempotency struct{ s *Store }

func (x idempotency) scope(ctx context.Context, key string) (*model.Principal, error) {
	p := model.PrincipalFrom(ctx)
	if p == nil {
		return nil, model.Unauthorized("")
	}
	return p, model.CheckIdempotencyKey(key)
}

func (x idempotency) Begin(ctx context.Context, key, hash string) (*model.StoredResponse, bool, error) {
	p, err := x.scope(ctx, key)
	if err != nil {
		return nil, false, err
	}
	deadline := x.s.clock.Now().Add(model.IdempotencyWait)
	for wait := 10 * time.Millisecond; ; wait = min(wait*2, 200*time.Millisecond) {
		now := x.s.clock.Now()
		// Claim a new key, one past its lifetime, or one whose request
		// stopped without finishing (its lease ran out).
		n, err := x.s.exec(ctx, `INSERT INTO idempotency_keys (tenant_id, credential_id, key, request_hash, done, status, location, body, started_at)
			VALUES ($1, $2, $3, $4, $5, 0, '', $6, $7)
			ON CONFLICT (tenant_id, credential_id, key) DO UPDATE SET request_hash = excluded.request_hash, done = excluded.done,
				status = 0, location = '', body = excluded.body, started_at = excluded.started_at
			WHERE idempotency_keys.started_at < $8 OR (idempotency_keys.done = $5 AND idempotency_keys.started_at < $9)`,
			p.TenantID, p.CredentialID, key, hash, false, []byte{}, newDBTime(now),
			newDBTime(now.Add(-model.IdempotencyTTL)), newDBTime(now.Add(-model.IdempotencyLease)))
		if err != nil {
			return nil, false, model.Internal(err, "claim idempotency key")
		}
		if n == 1 {
			return nil, true, nil
		}
		var res model.StoredResponse
		var held string
		var done bool
		err = x.s.queryRow(ctx, `SELECT request_hash, done, status, location, body FROM idempotency_keys
			WHERE tenant_id = $1 AND credential_id = $2 AND key = $3`, p.TenantID, p.CredentialID, key).
			Scan(&held, &done, &res.Status, &res.Location, &res.Body)
		switch {
		case isNoRows(err):
			continue // abandoned meanwhile: claim it
		case err != nil:
			return nil, false, model.Internal(err, "read idempotency key")
		case held != hash:
			return nil, false, model.BusinessRule("this Idempotency-Key was used with another request; use a new key for a new request")
		case done:
			return &res, false, nil
		}
		if x.s.clock.Now().After(deadline) {
			return nil, false, model.Conflict("a request with this Idempotency-Key is still running; retry later with the same key")
		}
		select {
		case <-ctx.Done():
			return nil, false, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func (x idempotency) Finish(ctx context.Context, key string, res model.StoredResponse) error {
	p, err := x.scope(ctx, key)
	if err != nil {
		return err
	}
	if res.Body == nil {
		res.Body = []byte{}
	}
	_, err = x.s.exec(ctx, `UPDATE idempotency_keys SET done = $1, status = $2, location = $3, body = $4
		WHERE tenant_id = $5 AND credential_id = $6 AND key = $7`, true, res.Status, res.Location, res.Body, p.TenantID, p.CredentialID, key)
	if err != nil {
		return model.Internal(err, "keep idempotent answer")
	}
	return nil
}

func (x idempotency) Abandon(ctx context.Context, key string) error {
	p, err := x.scope(ctx, key)
	if err != nil {
		return err
	}
	_, err = x.s.exec(ctx, `DELETE FROM idempotency_keys WHERE tenant_id = $1 AND credential_id = $2 AND key = $3 AND done = $4`,
		p.TenantID, p.CredentialID, key, false)
	if err != nil {
		return model.Internal(err, "release idempotency key")
	}
	return nil
}

// PruneIdempotency deletes keys past their lifetime.
func (s *Store) PruneIdempotency(ctx context.Context) (int64, error) {
	return s.exec(ctx, `DELETE FROM idempotency_keys WHERE started_at < $1`, newDBTime(s.clock.Now().Add(-model.IdempotencyTTL)))
}
