package main

import (
	"bytes"
	"encoding/json"
	"slices"
	"testing"
	"time"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/webhook"
)

func TestReceiverClasses(t *testing.T) {
	if got := receiverClasses(2, true); !slices.Equal(got, []string{classHealthy, classHealthy}) {
		t.Fatalf("receiverClasses(2, true) = %v", got)
	}
	got := receiverClasses(4, false)
	want := []string{classHealthy, classHealthy, classSlow, classFailing}
	if len(got) != len(want) {
		t.Fatalf("receiverClasses(4) = %v", got)
	}
	for i := range want {
		if got[i] != want[i] {
			t.Fatalf("receiverClasses(4) = %v, want %v", got, want)
		}
	}
}

// TestWebhooksEndToEnd runs the mode against a real server: counts only,
// no timing.
func TestWebhooksEndToEnd(t *testing.T) {
	srv := apitest.Start(t, apitest.Backends(t)[0], apitest.Config{
		Webhooks: webhook.Options{AllowPrivateTargets: true, Poll: 20 * time.Millisecond}})
	scopes := []model.Scope{model.ScopeIncidentsRead, model.ScopeIncidentsWrite, model.ScopeWebhooksAdmin}
	key := srv.Key(apitest.Tenant("hooks"), scopes...)
	key2 := srv.Key(apitest.Tenant("nohooks"), scopes...)

	var stdout, stderr bytes.Buffer
	code := run([]string{"-url", srv.URL, "-key", key, "-key2", key2, "-webhooks", "-receivers", "4",
		"-mutation-rate", "50", "-requests", "6", "-json"}, &stdout, &stderr)
	t.Logf("stdout:\n%s\nstderr:\n%s", stdout.String(), stderr.String())
	if code != 0 {
		t.Fatalf("exit %d", code)
	}
	var r webhooksResult
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("output is not one JSON object: %v", err)
	}
	if r.Mode != "webhooks" || r.Creates.Requests != 6 || r.Creates.Errors != 0 ||
		r.Baseline == nil || r.Baseline.Requests != 6 || r.Baseline.Errors != 0 {
		t.Fatalf("creations: %+v", r)
	}
	if len(r.Classes) != 3 {
		t.Fatalf("classes: %+v", r.Classes)
	}
	for _, c := range r.Classes {
		want := map[string]int{classHealthy: 2, classSlow: 1, classFailing: 1}[c.Class]
		if c.Receivers != want || c.Expected != 6*want || c.Received+c.Missing != c.Expected ||
			c.Attempts < c.Received || c.Unmatched != 0 || c.Repeated != 0 || c.Bad != 0 {
			t.Errorf("%s: %+v", c.Class, c)
		}
		if c.Class == classHealthy && (c.Received != 12 || c.Attempts != 12) {
			t.Errorf("healthy receivers missed messages: %+v", c)
		}
		if c.Class != classHealthy && c.Received < 1 {
			t.Errorf("%s receiver never reached: %+v", c.Class, c)
		}
	}

	// The run's endpoints are gone; the baseline tenant never had any.
	for _, k := range []string{key, key2} {
		var list struct {
			Data []json.RawMessage `json:"data"`
		}
		srv.Do("GET", "/v1/webhooks", k, nil).Expect(t, 200).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Errorf("%d endpoints left after the run", len(list.Data))
		}
	}
}
