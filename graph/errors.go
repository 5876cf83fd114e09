package graph

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/handler/transport"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/incidentd/incidentd/model"
)

// presentError is the one place where domain errors become GraphQL errors:
// extensions.code carries the same name as REST's `error` member, and
// extensions.details the same field details. Internal errors are logged and
// never echoed.
func presentError(ctx context.Context, err error) *gqlerror.Error {
	var gqlErr *gqlerror.Error
	var domain *model.Error
	if !errors.As(err, &domain) && errors.As(err, &gqlErr) {
		// gqlgen's own parse, validation and input-coercion errors: their
		// messages are about the request, safe to show.
		if gqlErr.Extensions == nil {
			gqlErr.Extensions = map[string]any{}
		}
		if _, ok := gqlErr.Extensions["code"]; !ok {
			gqlErr.Extensions["code"] = model.CodeInvalid.WireName()
		}
		return gqlErr
	}
	e := toGQLError(ctx, err)
	if gqlErr != nil {
		e.Path = gqlErr.Path
		e.Locations = gqlErr.Locations
	} else {
		e.Path = graphql.GetPath(ctx)
	}
	return e
}

func toGQLError(ctx context.Context, err error) *gqlerror.Error {
	d := model.AsError(err)
	msg := d.Message
	if d.Code == model.CodeInternal {
		slog.ErrorContext(ctx, "graphql internal error", "err", err)
		msg = "An internal error occurred"
	}
	ext := map[string]any{"code": d.Code.WireName()}
	if len(d.Details) > 0 {
		ext["details"] = d.Details
	}
	return &gqlerror.Error{Message: msg, Extensions: ext}
}

// recoverPanic turns a resolver panic into an internal error.
func recoverPanic(ctx context.Context, v any) error {
	slog.ErrorContext(ctx, "graphql panic", "panic", fmt.Sprint(v))
	return model.Internal(fmt.Errorf("panic: %v", v), "graphql resolver")
}

type wsKey struct{}

// endSubscription tells a WebSocket client why its subscription ended
// (slow consumer, shutdown) before the stream completes.
func endSubscription(ctx context.Context, err error) {
	if ctx.Value(wsKey{}) == nil {
		return // SSE has no per-subscription error frame; the stream just ends
	}
	transport.AddSubscriptionError(ctx, toGQLError(ctx, err))
}

// subscribe claims a subscription slot and opens a hub stream with open,
// forwarding what it emits (converted by conv) to the returned channel while
// the operation lives. When the stream ends, a live client is told why.
func subscribe[T, V any](ctx context.Context, r *Resolver, open func(emit func(T) bool, end func(error)) error, conv func(T) V) (<-chan V, error) {
	release, err := r.claimSubscription(ctx)
	if err != nil {
		return nil, err
	}
	out := make(chan V)
	err = open(func(v T) bool {
		select {
		case out <- conv(v):
			return true
		case <-ctx.Done():
			return false
		}
	}, func(why error) {
		// gqlgen reads the subscription's errors once its operation context
		// ends: only a live subscription may still be told why it ends.
		if why != nil && ctx.Err() == nil {
			endSubscription(ctx, why)
		}
		release()
		close(out)
	})
	if err != nil {
		release()
		return nil, err
	}
	return out, nil
}
