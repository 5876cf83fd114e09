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

// createOnce runs a create mutation once per idempotencyKey, on the REST
// door's Idempotency-Key rule and keys (model.IdempotencyStore: per tenant
// and credential, 24 hours, a concurrent duplicate waits for the first):
// the first call with a key runs create and keeps its answer; a retry with
// the same key and the same arguments (args, fingerprinted) answers the
// kept answer again, as it was then, and never creates a second resource;
// the same key with other arguments is a BusinessRuleViolation. An error
// is not kept: a retry runs (and is refused) again. Without a key, create
// just runs. Keys live apart from REST's and per mutation (prefixed), so
// one key never names two kinds of request.
//
// kept, when not nil, is what is kept of an answer: answers that carry a
// secret shown once (createApiKey, createWebhook) keep it out, so that no
// secret is ever stored in plain text, and their replays answer "" for it.
func createOnce[T any](ctx context.Context, r *mutationResolver, mutation string, key *string, args any,
	create func(context.Context) (T, error), kept func(T) T) (T, error) {
	var zero T
	if key == nil || r.Idempotency == nil {
		return create(ctx)
	}
	if err := model.CheckIdempotencyKey(*key); err != nil {
		e := *model.AsError(err)
		e.Details = []model.FieldError{{Field: "idempotencyKey", Message: e.Details[0].Message}}
		return zero, &e
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return zero, model.Internal(err, "encode arguments")
	}
	sum := sha256.Sum256(raw)
	k := "graphql:" + mutation + ":" + *key
	if len(k) > model.MaxIdempotencyKey { // the client's key is within bounds: name it by its hash
		h := sha256.Sum256([]byte(*key))
		k = "graphql:" + mutation + ":sha256:" + hex.EncodeToString(h[:])
	}
	replay, claimed, err := r.Idempotency.Begin(ctx, k, hex.EncodeToString(sum[:]))
	if err != nil {
		return zero, err
	}
	if replay != nil {
		var out T
		if err := json.Unmarshal(replay.Body, &out); err != nil {
			return zero, model.Internal(err, "read the kept answer")
		}
		return out, nil
	}
	if !claimed {
		return zero, model.Internal(nil, "idempotency key neither claimed nor kept")
	}
	out, err := create(ctx)
	done := context.WithoutCancel(ctx) // kept even if the client went away meanwhile: the work is done
	if err != nil {
		_ = r.Idempotency.Abandon(done, k)
		return zero, err
	}
	keep := out
	if kept != nil {
		keep = kept(out)
	}
	body, err := json.Marshal(keep)
	if err != nil {
		_ = r.Idempotency.Abandon(done, k)
		return zero, model.Internal(err, "encode the answer")
	}
	if err := r.Idempotency.Finish(done, k, model.StoredResponse{Status: http.StatusCreated, Body: body}); err != nil {
		return zero, err
	}
	return out, nil
}

// withoutKey is what is kept of a created API key: not its secret (nor
// its hash).
func withoutKey(s *gqlmodel.APIKeySecret) *gqlmodel.APIKeySecret {
	k := *s.APIKey
	k.Hash = nil
	return &gqlmodel.APIKeySecret{APIKey: &k}
}

// withoutSecret is what is kept of a created webhook endpoint: not its secret.
func withoutSecret(s *gqlmodel.WebhookWithSecret) *gqlmodel.WebhookWithSecret {
	return &gqlmodel.WebhookWithSecret{Webhook: s.Webhook}
}
