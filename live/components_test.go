package live

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// brokenRelations fails every AffectsOf, as a lost database would.
type brokenRelations struct{ model.RelationService }

func (brokenRelations) AffectsOf(context.Context, []string) (map[string][]model.Affect, error) {
	return nil, errors.New("connection refused")
}

// TestComponentStatusQueryFailureEndsWithError: a failed read ends the
// stream with an internal error, not with the silent end of a client leaving.
func TestComponentStatusQueryFailureEndsWithError(t *testing.T) {
	h := New(Options{})
	defer h.Close()
	ctx := model.WithPrincipal(t.Context(), &model.Principal{TenantID: "a", ActorID: "x",
		Scopes: []model.Scope{model.ScopeComponentsRead, model.ScopeIncidentsRead}})
	ended := make(chan error, 1)
	err := h.OpenComponentStatus(ctx, nil, brokenRelations{}, ComponentFilter{}, func(ComponentStatus) bool {
		t.Error("nothing should be emitted")
		return true
	}, func(why error) { ended <- why })
	if err != nil {
		t.Fatal(err)
	}
	h.Publish([]*model.Event{ev(1, "a", model.SeverityLow)})
	select {
	case why := <-ended:
		if model.ErrorCode(why) != model.CodeInternal || why == nil {
			t.Errorf("ended with %v, want an internal error", why)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the stream did not end")
	}
}
