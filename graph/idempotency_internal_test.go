package graph

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/incidentd/incidentd/graph/gqlmodel"
	"github.com/incidentd/incidentd/model"
)

// memKeys is an IdempotencyStore in memory (one credential), recording
// what it was asked to keep.
type memKeys struct {
	hashes    map[string]string
	kept      map[string]model.StoredResponse
	abandoned []string
}

func newMemKeys() *memKeys {
	return &memKeys{hashes: map[string]string{}, kept: map[string]model.StoredResponse{}}
}

func (m *memKeys) Begin(_ context.Context, key, hash string) (*model.StoredResponse, bool, error) {
	if err := model.CheckIdempotencyKey(key); err != nil {
		return nil, false, err
	}
	if h, ok := m.hashes[key]; ok {
		if h != hash {
			return nil, false, model.BusinessRule("another request")
		}
		res := m.kept[key]
		return &res, false, nil
	}
	m.hashes[key] = hash
	return nil, true, nil
}

func (m *memKeys) Finish(_ context.Context, key string, res model.StoredResponse) error {
	m.kept[key] = res
	return nil
}

func (m *memKeys) Abandon(_ context.Context, key string) error {
	delete(m.hashes, key)
	m.abandoned = append(m.abandoned, key)
	return nil
}

// TestCreateOnceKeepsNoSecret: what createOnce keeps of a secret-bearing
// answer has neither the secret nor the key's hash; the replay answers the
// resource with the secret empty; the first caller got it.
func TestCreateOnceKeepsNoSecret(t *testing.T) {
	keys := newMemKeys()
	r := &mutationResolver{&Resolver{Idempotency: keys}}
	ctx, key := context.Background(), "k1"
	calls := 0
	create := func(context.Context) (*gqlmodel.APIKeySecret, error) {
		calls++
		return &gqlmodel.APIKeySecret{APIKey: &model.APIKey{ID: "key_1", Name: "ci", Hash: []byte("HASHBYTES")}, Key: "ik_secret_SECRETSECRET"}, nil
	}
	first, err := createOnce(ctx, r, "createApiKey", &key, "input", create, withoutKey)
	if err != nil || first.Key != "ik_secret_SECRETSECRET" || first.APIKey.Hash == nil {
		t.Fatalf("first: %+v %v", first, err)
	}
	body := string(keys.kept["graphql:createApiKey:k1"].Body)
	if body == "" || strings.Contains(body, "SECRET") || strings.Contains(body, "HASH") || strings.Contains(body, "SEFTSEJZ") {
		t.Errorf("kept: %s", body)
	}
	again, err := createOnce(ctx, r, "createApiKey", &key, "input", create, withoutKey)
	if err != nil || calls != 1 || again.Key != "" || again.APIKey.ID != "key_1" || again.APIKey.Name != "ci" {
		t.Errorf("replay: %+v %v (%d calls)", again, err, calls)
	}
	if _, err := createOnce(ctx, r, "createApiKey", &key, "other input", create, withoutKey); model.ErrorCode(err) != model.CodeBusinessRule {
		t.Errorf("another input: %v", err)
	}

	hook := func(context.Context) (*gqlmodel.WebhookWithSecret, error) {
		return &gqlmodel.WebhookWithSecret{Webhook: &model.WebhookEndpoint{ID: "whe_1"}, Secret: "whsec_SECRET"}, nil
	}
	if got, _ := createOnce(ctx, r, "createWebhook", &key, "input", hook, withoutSecret); got.Secret != "whsec_SECRET" {
		t.Errorf("first webhook answer: %+v", got)
	}
	if body := string(keys.kept["graphql:createWebhook:k1"].Body); strings.Contains(body, "SECRET") || !strings.Contains(body, "whe_1") {
		t.Errorf("kept: %s", body)
	}
}

// TestCreateOnceKeys: no key, no keeping; an error is not kept (the key
// is released); keys are per mutation; a key valid on REST is valid here
// however long its prefix makes it; an invalid one names idempotencyKey.
func TestCreateOnceKeys(t *testing.T) {
	keys := newMemKeys()
	r := &mutationResolver{&Resolver{Idempotency: keys}}
	ctx := context.Background()
	n := 0
	create := func(context.Context) (*model.Component, error) {
		n++
		return &model.Component{ID: "cmp_" + strings.Repeat("x", n)}, nil
	}
	a, _ := createOnce(ctx, r, "createComponent", nil, "in", create, nil)
	b, _ := createOnce(ctx, r, "createComponent", nil, "in", create, nil)
	if a.ID == b.ID || len(keys.hashes) != 0 {
		t.Errorf("without a key: %s %s, %d keys", a.ID, b.ID, len(keys.hashes))
	}

	key := "refused"
	fail := func(context.Context) (*model.Component, error) { return nil, model.Conflict("taken") }
	if _, err := createOnce(ctx, r, "createComponent", &key, "in", fail, nil); model.ErrorCode(err) != model.CodeConflict {
		t.Fatal(err)
	}
	if len(keys.abandoned) != 1 {
		t.Errorf("a failed create keeps its key: %v", keys.abandoned)
	}
	if c, err := createOnce(ctx, r, "createComponent", &key, "in", create, nil); err != nil || c == nil {
		t.Errorf("the retry after a refusal runs again: %+v %v", c, err)
	}
	if _, err := createOnce(ctx, r, "createImpactType", &key, "in", create, nil); err != nil || n != 4 {
		t.Errorf("one key on another mutation: %v (%d creates)", err, n)
	}

	long := strings.Repeat("k", model.MaxIdempotencyKey)
	x, err := createOnce(ctx, r, "createComponent", &long, "in", create, nil)
	y, err2 := createOnce(ctx, r, "createComponent", &long, "in", create, nil)
	if err != nil || err2 != nil || x.ID != y.ID {
		t.Errorf("a 255-character key: %v %v %+v %+v", err, err2, x, y)
	}
	tooLong := long + "k"
	if _, err := createOnce(ctx, r, "createComponent", &tooLong, "in", create, nil); model.ErrorCode(err) != model.CodeInvalid ||
		model.AsError(err).Details[0].Field != "idempotencyKey" {
		t.Errorf("a 256-character key: %v", err)
	}
	if _, err := createOnce(ctx, r, "createComponent", new(string), "in", create, nil); model.ErrorCode(err) != model.CodeInvalid {
		t.Errorf("an empty key: %v", err)
	}
	var e *model.Error
	if _, err := createOnce(ctx, r, "createComponent", &tooLong, "in", create, nil); !errors.As(err, &e) || e.Message == "" {
		t.Errorf("the refusal: %v", err)
	}
}
