package graph

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"net/http"

	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// createOnce creates an incident once per idempotency key (the REST door's
// Idempotency-Key rule, model.IdempotencyStore): a retry with the same key
// and input answers the incident the first created. Its keys live apart
// from REST's (prefixed), so one key never names two kinds of request.
func (r *mutationResolver) createOnce(ctx context.Context, key string, input gqlmodel.CreateIncidentInput) (*model.Incident, error) {
	raw, err := json.Marshal(input)
	if err != nil {
		return nil, model.Internal(err, "encode input")
	}
	sum := sha256.Sum256(raw)
	key = "graphql:createIncident:" + key
	replay, claimed, err := r.Idempotency.Begin(ctx, key, hex.EncodeToString(sum[:]))
	if err != nil {
		return nil, err
	}
	if replay != nil {
		return r.IncidentService.Get(ctx, string(replay.Body))
	}
	if !claimed {
		return nil, model.Internal(nil, "idempotency key neither claimed nor kept")
	}
	inc, _, err := r.IncidentService.Create(ctx, createIn(input))
	done := context.WithoutCancel(ctx)
	if err != nil {
		_ = r.Idempotency.Abandon(done, key) // a retry runs (and is refused) again
		return nil, err
	}
	if err := r.Idempotency.Finish(done, key, model.StoredResponse{Status: http.StatusCreated, Body: []byte(inc.ID)}); err != nil {
		return nil, err
	}
	return inc, nil
}
