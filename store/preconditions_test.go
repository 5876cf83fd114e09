package store

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// versionedResource is one kind of single resource under test: made
// fresh, its current version read, and a change made to it (the i-th of
// several concurrent writers), answering the version it leaves.
type versionedResource struct {
	name    string
	setup   func(t *testing.T, ctx context.Context) (id string)
	version func(ctx context.Context, id string) (string, error)
	change  func(ctx context.Context, id string, i int) (string, error)
	// requires: a tenant requiring preconditions refuses the change without one.
	requires bool
}

func versionedResources(s *Store) []versionedResource {
	cat, keys, hooks, set := s.Catalogue(), s.KeyAdmin(), s.Webhooks(true), s.Settings()
	must := func(t *testing.T, err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	return []versionedResource{
		{name: "api key revoke", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				k, _, err := keys.Create(ctx, model.APIKeyCreate{Name: "k", Scopes: []model.Scope{model.ScopeIncidentsRead}})
				must(t, err)
				return k.ID
			},
			version: func(ctx context.Context, id string) (string, error) {
				k, err := keys.Get(ctx, id)
				if err != nil {
					return "", err
				}
				return k.Version(), nil
			},
			change: func(ctx context.Context, id string, _ int) (string, error) {
				k, err := keys.Revoke(ctx, id)
				if err != nil {
					return "", err
				}
				return k.Version(), nil
			}},
		{name: "api key rotate", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				k, _, err := keys.Create(ctx, model.APIKeyCreate{Name: "r", Scopes: []model.Scope{model.ScopeIncidentsRead}})
				must(t, err)
				return k.ID
			},
			version: func(ctx context.Context, id string) (string, error) {
				k, err := keys.Get(ctx, id)
				if err != nil {
					return "", err
				}
				return k.Version(), nil
			},
			change: func(ctx context.Context, id string, _ int) (string, error) {
				if _, _, err := keys.Rotate(ctx, id, time.Hour); err != nil {
					return "", err
				}
				k, err := keys.Get(ctx, id) // the rotated key, its life shortened
				if err != nil {
					return "", err
				}
				return k.Version(), nil
			}},
		{name: "impact type", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				it, err := cat.CreateImpactType(ctx, model.ImpactTypeInput{DisplayName: model.Some("Slow")})
				must(t, err)
				return it.ID
			},
			version: func(ctx context.Context, id string) (string, error) {
				it, err := cat.ImpactType(ctx, id)
				if err != nil {
					return "", err
				}
				return it.Version(), nil
			},
			change: func(ctx context.Context, id string, i int) (string, error) {
				it, err := cat.UpdateImpactType(ctx, id, model.ImpactTypeInput{Description: model.Some(fmt.Sprint("writer ", i))})
				if err != nil {
					return "", err
				}
				return it.Version(), nil
			}},
		{name: "severity", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				l, err := cat.CreateSeverity(ctx, model.SeverityInput{DisplayName: model.Some("Sev"), Value: model.Some(60)})
				must(t, err)
				return l.DisplayName
			},
			version: func(ctx context.Context, name string) (string, error) {
				l, err := cat.Severity(ctx, name)
				if err != nil {
					return "", err
				}
				return l.Version(), nil
			},
			change: func(ctx context.Context, name string, i int) (string, error) {
				l, err := cat.UpdateSeverity(ctx, name, model.SeverityInput{Value: model.Some(30 + i)})
				if err != nil {
					return "", err
				}
				return l.Version(), nil
			}},
		{name: "phases", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				_, err := cat.ReplacePhases(ctx, []string{"triage"})
				must(t, err)
				return ""
			},
			version: func(ctx context.Context, _ string) (string, error) {
				l, err := cat.Phases(ctx, 0)
				if err != nil {
					return "", err
				}
				return l.Version(), nil
			},
			change: func(ctx context.Context, _ string, i int) (string, error) {
				l, err := cat.ReplacePhases(ctx, []string{"triage", fmt.Sprint("writer ", i)})
				if err != nil {
					return "", err
				}
				return l.Version(), nil
			}},
		{name: "webhook endpoint", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				ep, _, err := hooks.Create(ctx, hookInput("https://hooks.example.com/p", model.WebhookIncidentCreated))
				must(t, err)
				return ep.ID
			},
			version: func(ctx context.Context, id string) (string, error) {
				ep, err := hooks.Get(ctx, id)
				if err != nil {
					return "", err
				}
				return ep.Version(), nil
			},
			change: func(ctx context.Context, id string, i int) (string, error) {
				ep, err := hooks.Update(ctx, id, model.WebhookEndpointInput{Description: model.Some(fmt.Sprint("writer ", i))})
				if err != nil {
					return "", err
				}
				return ep.Version(), nil
			}},
		{name: "webhook secret rotation", requires: true,
			setup: func(t *testing.T, ctx context.Context) string {
				ep, _, err := hooks.Create(ctx, hookInput("https://hooks.example.com/r", model.WebhookIncidentCreated))
				must(t, err)
				return ep.ID
			},
			version: func(ctx context.Context, id string) (string, error) {
				ep, err := hooks.Get(ctx, id)
				if err != nil {
					return "", err
				}
				return ep.Version(), nil
			},
			change: func(ctx context.Context, id string, _ int) (string, error) {
				ep, _, err := hooks.RotateSecret(ctx, id)
				if err != nil {
					return "", err
				}
				return ep.Version(), nil
			}},
		{name: "settings", requires: false,
			setup: func(*testing.T, context.Context) string { return "" },
			version: func(ctx context.Context, _ string) (string, error) {
				st, err := set.Get(ctx)
				if err != nil {
					return "", err
				}
				return st.Version(), nil
			},
			change: func(ctx context.Context, _ string, i int) (string, error) {
				st, err := set.SetRequirePreconditions(ctx, i%2 == 0)
				if err != nil {
					return "", err
				}
				return st.Version(), nil
			}},
	}
}

// TestConcurrentEditsFromOneVersion: writers that all expect one version
// race; the store checks it under the row's lock, so exactly one applies
// and every other fails with precondition_failed naming the version the
// winner left, which is what a read then finds. A stale version changes
// nothing; the current one, or *, applies.
func TestConcurrentEditsFromOneVersion(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		for _, r := range versionedResources(s) {
			t.Run(r.name, func(t *testing.T) {
				ctx := asHooks(tenant("race"))
				id := r.setup(t, ctx)
				v0, err := r.version(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				const writers = 6
				var wg sync.WaitGroup
				versions, errs := make([]string, writers), make([]error, writers)
				for i := range writers {
					wg.Go(func() {
						// Settings start off: every writer turns them on, so that
						// a loser would leave the winner's version if it applied.
						n := i
						if r.name == "settings" {
							n = 0
						}
						versions[i], errs[i] = r.change(model.WithExpectedVersion(ctx, v0), id, n)
					})
				}
				wg.Wait()
				now, err := r.version(ctx, id)
				if err != nil {
					t.Fatal(err)
				}
				won := 0
				for i := range writers {
					switch {
					case errs[i] == nil:
						won++
						if versions[i] != now {
							t.Errorf("the winner left %s, a read finds %s", versions[i], now)
						}
					case codeOf(errs[i]) != model.CodePreconditionFailed:
						t.Errorf("writer %d: %v", i, errs[i])
					case model.AsError(errs[i]).Version != now:
						t.Errorf("writer %d was told the current version is %s, it is %s", i, model.AsError(errs[i]).Version, now)
					}
				}
				if won != 1 || now == v0 {
					t.Fatalf("%d of %d writers from one version applied (version %s, was %s)", won, writers, now, v0)
				}
				if _, err := r.change(model.WithExpectedVersion(ctx, v0), id, 0); codeOf(err) != model.CodePreconditionFailed {
					t.Errorf("stale: %v", err)
				}
				if after, _ := r.version(ctx, id); after != now {
					t.Errorf("a refused change moved the version: %s, was %s", after, now)
				}
				if r.name != "api key revoke" && r.name != "api key rotate" { // a revoked key is not rotated again
					if _, err := r.change(model.WithExpectedVersion(ctx, "other,"+now), id, 1); err != nil {
						t.Errorf("current among others: %v", err)
					}
					if _, err := r.change(model.WithExpectedVersion(ctx, "*"), id, 2); err != nil {
						t.Errorf("*: %v", err)
					}
				}
			})
		}
	})
}

// TestRequiredPreconditions: a tenant that requires preconditions gets
// precondition_required for a change without one, of every resource but
// its settings (the switch can always be turned off); * satisfies it.
func TestRequiredPreconditions(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		s := openStore(t, url, Options{})
		ten := tenant("strict")
		ctx := asHooks(ten)
		resources := versionedResources(s)
		ids := make([]string, len(resources))
		for i, r := range resources {
			ids[i] = r.setup(t, ctx)
		}
		if _, err := s.Settings().SetRequirePreconditions(ctx, true); err != nil {
			t.Fatal(err)
		}
		for i, r := range resources {
			if r.name == "settings" {
				continue
			}
			before, _ := r.version(ctx, ids[i])
			if _, err := r.change(ctx, ids[i], 1); codeOf(err) != model.CodePreconditionRequired {
				t.Errorf("%s without a precondition: %v", r.name, err)
			}
			if after, _ := r.version(ctx, ids[i]); after != before {
				t.Errorf("%s changed though refused", r.name)
			}
			if _, err := r.change(model.WithExpectedVersion(ctx, "*"), ids[i], 1); err != nil {
				t.Errorf("%s with *: %v", r.name, err)
			}
		}
		// Another tenant is not bound.
		other := asHooks(tenant("lax"))
		if _, err := s.Catalogue().CreateImpactType(other, model.ImpactTypeInput{DisplayName: model.Some("x")}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Catalogue().ReplacePhases(other, []string{"a"}); err != nil {
			t.Errorf("another tenant: %v", err)
		}
		// The switch itself: a stale version is refused, none is not.
		cur, _ := s.Settings().Get(ctx)
		stale := (&model.TenantSettings{}).Version()
		if _, err := s.Settings().SetRequirePreconditions(model.WithExpectedVersion(ctx, stale), false); codeOf(err) != model.CodePreconditionFailed ||
			model.AsError(err).Version != cur.Version() {
			t.Errorf("settings from a stale version: %v", err)
		}
		if st, err := s.Settings().SetRequirePreconditions(ctx, false); err != nil || st.RequirePreconditions {
			t.Fatalf("turning it off without a precondition: %+v %v", st, err)
		}
		if _, err := s.Catalogue().ReplacePhases(ctx, []string{"free"}); err != nil {
			t.Errorf("after turning it off: %v", err)
		}
	})
}
