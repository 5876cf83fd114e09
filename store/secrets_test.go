package store

import (
	"bytes"
	"context"
	"strings"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// Rule: with a key, webhook signing secrets are stored sealed (the column
// never holds the secret) and the claim opens them, the rotated-out one
// too; a store with another key, or none, claims nothing it cannot open
// and delivers the rest; a sealed value moved to another endpoint does
// not open; secrets stored before the key was set are sealed by
// SealWebhookSecrets, after which the keyed store signs with them.
func TestWebhookSecretsSealed(t *testing.T) {
	each(t, func(t *testing.T, url string) {
		key := bytes.Repeat([]byte{7}, WebhookSecretKeyLen)
		other := bytes.Repeat([]byte{9}, WebhookSecretKeyLen)
		plain := openStore(t, url, Options{})
		keyed := openStore(t, url, Options{WebhookSecretKey: key})
		wrong := openStore(t, url, Options{WebhookSecretKey: other})
		ten := tenant("seal")
		ctx := asHooks(ten)
		drainFanOut(t, keyed)

		stored := func(id string) (secret, prev string) {
			t.Helper()
			var p *string
			if err := keyed.queryRow(context.Background(), `SELECT secret, previous_secret FROM webhook_endpoints WHERE id = $1`, id).Scan(&secret, &p); err != nil {
				t.Fatal(err)
			}
			return secret, deref(p)
		}
		// signs claims every run of the tenant and returns each endpoint's
		// signing secrets, giving the runs back; what it cannot open stays
		// leased for lease.
		signs := func(s *Store, lease time.Duration) map[string][]string {
			t.Helper()
			if lease < time.Second {
				defer time.Sleep(2 * lease) // it has run out for the next claim
			}
			runs, err := s.ClaimWebhookRuns(context.Background(), 100, 10, lease, ten)
			if err != nil {
				t.Fatal(err)
			}
			out := map[string][]string{}
			for _, r := range runs {
				if len(r.Jobs) > 0 {
					out[r.EndpointID] = r.Jobs[0].Secrets
				}
				if err := s.EndWebhookRun(context.Background(), r); err != nil {
					t.Fatal(err)
				}
			}
			return out
		}

		sealedEP, secret, err := keyed.Webhooks(false).Create(ctx, hookInput("https://example.com/sealed", model.WebhookIncidentCreated))
		if err != nil {
			t.Fatal(err)
		}
		oldEP, oldSecret, err := plain.Webhooks(false).Create(ctx, hookInput("https://example.com/old", model.WebhookIncidentCreated))
		if err != nil {
			t.Fatal(err)
		}
		if col, _ := stored(sealedEP.ID); !strings.HasPrefix(col, sealedPrefix) || strings.Contains(col, strings.TrimPrefix(secret, "whsec_")) {
			t.Fatalf("stored %q for %q", col, secret)
		}
		if col, _ := stored(oldEP.ID); col != oldSecret {
			t.Fatalf("without a key, stored %q", col)
		}
		if _, _, err := keyed.Incidents().Create(ctx, model.IncidentCreate{Title: "signed", Severity: model.SeverityLow, OccurredAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		drainFanOut(t, keyed)

		got := signs(keyed, time.Minute)
		if len(got) != 2 || len(got[sealedEP.ID]) != 1 || got[sealedEP.ID][0] != secret || got[oldEP.ID][0] != oldSecret {
			t.Errorf("keyed store signs with %v", got)
		}
		if got := signs(wrong, time.Millisecond); len(got) != 1 || got[oldEP.ID][0] != oldSecret {
			t.Errorf("another key claims %v", got)
		}
		if got := signs(plain, time.Millisecond); len(got) != 1 {
			t.Errorf("no key claims %v", got)
		}

		// A rotation keeps the sealed old secret signing beside the new one.
		_, rotated, err := keyed.Webhooks(false).RotateSecret(ctx, sealedEP.ID)
		if err != nil {
			t.Fatal(err)
		}
		if col, prev := stored(sealedEP.ID); !strings.HasPrefix(col, sealedPrefix) || !strings.HasPrefix(prev, sealedPrefix) {
			t.Errorf("after the rotation: %q %q", col, prev)
		}
		if got := signs(keyed, time.Minute)[sealedEP.ID]; len(got) != 2 || got[0] != rotated || got[1] != secret {
			t.Errorf("after the rotation, signs with %v (new %s, old %s)", got, rotated, secret)
		}

		// Another endpoint's sealed value does not open here, nor does a
		// format this version does not know (it is not taken as plain).
		moved, _ := stored(sealedEP.ID)
		if _, err := keyed.box.open(oldEP.ID, moved); err == nil {
			t.Error("a sealed secret opened for another endpoint")
		}
		if _, err := keyed.box.open(sealedEP.ID, sealedMark+"v9:"+strings.TrimPrefix(moved, sealedPrefix)); err == nil {
			t.Error("an unknown sealing format was read as a plain secret")
		}
		// A previous secret that does not open leaves the current one signing.
		if _, err := keyed.exec(context.Background(), `UPDATE webhook_endpoints SET previous_secret = $1 WHERE id = $2`, sealedPrefix+"AAAA", sealedEP.ID); err != nil {
			t.Fatal(err)
		}
		if got := signs(keyed, time.Minute)[sealedEP.ID]; len(got) != 1 || got[0] != rotated {
			t.Errorf("with a broken previous secret, signs with %v", got)
		}

		n, err := keyed.SealWebhookSecrets(context.Background(), ten)
		if err != nil || n != 1 {
			t.Fatalf("sealed %d (%v), want the one stored before the key", n, err)
		}
		if col, _ := stored(oldEP.ID); !strings.HasPrefix(col, sealedPrefix) {
			t.Errorf("after sealing: %q", col)
		}
		if got := signs(keyed, time.Minute); got[oldEP.ID][0] != oldSecret {
			t.Errorf("the sealed old endpoint signs with %v", got[oldEP.ID])
		}
		if n, err := keyed.SealWebhookSecrets(context.Background(), ten); err != nil || n != 0 {
			t.Errorf("sealing again: %d %v", n, err)
		}
		if n, err := plain.SealWebhookSecrets(context.Background(), ten); err != nil || n != 0 {
			t.Errorf("sealing without a key: %d %v", n, err)
		}
		// What a store cannot open it leases without a run, so that it
		// does not come first in every claim (the lease, not the key,
		// keeps it from the keyed store here): endpoints' runs and test
		// sends alike.
		if _, err := keyed.Webhooks(false).SendTest(ctx, oldEP.ID); err != nil {
			t.Fatal(err)
		}
		if got := signs(wrong, time.Minute/2); len(got) != 0 {
			t.Errorf("another key claims %v", got)
		}
		if got := signs(keyed, time.Minute); len(got) != 0 {
			t.Errorf("claimed %v under another's lease", got)
		}
	})
}

// Rule: the key setting is the standard base64 of 32 bytes, or nothing.
func TestParseWebhookSecretKey(t *testing.T) {
	if k, err := ParseWebhookSecretKey(" "); err != nil || k != nil {
		t.Errorf("empty: %v %v", k, err)
	}
	if k, err := ParseWebhookSecretKey("BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwc="); err != nil || len(k) != 32 {
		t.Errorf("32 bytes: %d %v", len(k), err)
	}
	for _, bad := range []string{"short", "BwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcHBwcH", "not base64!"} {
		if _, err := ParseWebhookSecretKey(bad); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}
