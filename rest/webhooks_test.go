package rest_test

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	standardwebhooks "github.com/standard-webhooks/standard-webhooks/libraries/go"

	"github.com/incidentd/incidentd/internal/apitest"
	"github.com/incidentd/incidentd/model"
	"github.com/incidentd/incidentd/webhook"
)

// receiver is a real HTTP receiver: it answers from a script, then 200.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	got     []http.Header
	bodies  [][]byte
	answers []int
	more    chan struct{}
}

func newReceiver(t *testing.T, answers ...int) *receiver {
	rc := &receiver{answers: answers, more: make(chan struct{}, 64)}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		rc.mu.Lock()
		rc.got = append(rc.got, r.Header.Clone())
		rc.bodies = append(rc.bodies, body)
		status := http.StatusOK
		if len(rc.answers) > 0 {
			status, rc.answers = rc.answers[0], rc.answers[1:]
		}
		rc.mu.Unlock()
		w.WriteHeader(status)
		_, _ = io.WriteString(w, rc.answer(status))
		rc.more <- struct{}{}
	}))
	t.Cleanup(rc.Close)
	return rc
}

// answer is the body the receiver answers with a status.
func (rc *receiver) answer(status int) string { return "answered " + strconv.Itoa(status) }

func (rc *receiver) wait(t *testing.T, n int) ([]http.Header, [][]byte) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		rc.mu.Lock()
		if len(rc.got) >= n {
			defer rc.mu.Unlock()
			return append([]http.Header(nil), rc.got...), append([][]byte(nil), rc.bodies...)
		}
		rc.mu.Unlock()
		select {
		case <-rc.more:
		case <-deadline:
			t.Fatalf("the receiver got %d requests, want %d", len(rc.got), n)
		}
	}
}

// TestWebhooksOverREST: an endpoint registered over REST receives a
// committed change signed by the Standard Webhooks rules (verified with
// the library); a receiver failing twice gets the message three times
// with one webhook-id; the delivery log says so; other tenants and
// credentials without the scope see nothing; private targets are refused
// unless the server allows them.
func TestWebhooksOverREST(t *testing.T) {
	apitest.Each(t, func(t *testing.T, b apitest.Backend) {
		s := apitest.Start(t, b, apitest.Config{Webhooks: webhook.Options{AllowPrivateTargets: true,
			Schedule: []time.Duration{10 * time.Millisecond, 10 * time.Millisecond}, Jitter: -1, Poll: 20 * time.Millisecond}})
		ten := apitest.Tenant("hooks")
		admin := s.Key(ten, model.ScopeWebhooksAdmin)
		writer := s.Key(ten, model.ScopeIncidentsWrite)
		rc := newReceiver(t, 500, 500)

		wantProblem(t, s.Do("POST", "/v1/webhooks", writer, map[string]any{"url": rc.URL}), 403, "Forbidden")
		wantProblem(t, s.Do("POST", "/v1/webhooks", admin, map[string]any{"url": rc.URL, "events": []string{"nope"}}), 400, "ValidationError")
		var ep struct{ ID, Secret, URL string }
		s.Do("POST", "/v1/webhooks", admin, map[string]any{"url": rc.URL, "events": []string{"incident.created"}}).Expect(t, 201).JSON(t, &ep)
		if !strings.HasPrefix(ep.Secret, "whsec_") || ep.ID == "" {
			t.Fatalf("created %+v", ep)
		}
		var again struct{ Secret string }
		s.Do("GET", "/v1/webhooks/"+ep.ID, admin, nil).Expect(t, 200).JSON(t, &again)
		if again.Secret != "" {
			t.Error("the secret was shown twice")
		}
		inc := s.Do("POST", "/v1/incidents", writer, map[string]any{"title": "hooked", "severity": "high", "occurredAt": "2024-01-15T14:30:00Z"}).
			Expect(t, 201).Map(t)["id"].(string)

		headers, bodies := rc.wait(t, 3)
		wh, err := standardwebhooks.NewWebhook(ep.Secret)
		if err != nil {
			t.Fatal(err)
		}
		for i := range 3 {
			if err := wh.Verify(bodies[i], headers[i]); err != nil {
				t.Errorf("attempt %d: the signature does not verify: %v", i, err)
			}
			if headers[i].Get("webhook-id") != headers[0].Get("webhook-id") || headers[i].Get("webhook-id") == "" {
				t.Errorf("attempt %d: webhook-id %q, first %q", i, headers[i].Get("webhook-id"), headers[0].Get("webhook-id"))
			}
		}
		var msg struct {
			Type string
			Data struct{ ID, Title string }
		}
		if err := json.Unmarshal(bodies[2], &msg); err != nil || msg.Type != "incident.created" || msg.Data.ID != inc || msg.Data.Title != "hooked" {
			t.Errorf("message %s %v", bodies[2], err)
		}
		// The log says it took three attempts and ended delivered.
		var log struct {
			Data []struct {
				State      string
				Attempts   int
				LastStatus int
				MessageID  string
			}
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			s.Do("GET", "/v1/webhooks/"+ep.ID+"/deliveries", admin, nil).Expect(t, 200).JSON(t, &log)
			if len(log.Data) == 1 && log.Data[0].State == "delivered" || time.Now().After(deadline) {
				break
			}
			time.Sleep(20 * time.Millisecond) // the attempt is recorded after the answer
		}
		if len(log.Data) != 1 || log.Data[0].State != "delivered" || log.Data[0].Attempts != 3 || log.Data[0].LastStatus != 200 ||
			log.Data[0].MessageID != headers[0].Get("webhook-id") {
			t.Errorf("delivery log %+v", log.Data)
		}
		// The delivery read alone: its body and each attempt.
		var one struct {
			ID         string
			Payload    json.RawMessage
			AttemptLog []struct {
				Number, Status  int
				At              time.Time
				LatencyMs       float64
				ResponseExcerpt string
			}
		}
		var ids struct{ Data []struct{ ID string } }
		s.Do("GET", "/v1/webhooks/"+ep.ID+"/deliveries", admin, nil).JSON(t, &ids)
		path := "/v1/webhooks/" + ep.ID + "/deliveries/" + ids.Data[0].ID
		s.Do("GET", path, admin, nil).Expect(t, 200).JSON(t, &one)
		if string(one.Payload) != string(bodies[0]) || len(one.AttemptLog) != 3 {
			t.Fatalf("one delivery: %s, %d attempts", one.Payload, len(one.AttemptLog))
		}
		for i, a := range one.AttemptLog {
			want := []int{500, 500, 200}[i]
			if a.Number != i+1 || a.Status != want || a.At.IsZero() || a.LatencyMs <= 0 || a.ResponseExcerpt != rc.answer(want) ||
				i > 0 && a.At.Before(one.AttemptLog[i-1].At) {
				t.Errorf("attempt %d: %+v", i+1, a)
			}
		}
		wantProblem(t, s.Do("GET", path+"?x=1", admin, nil), 400, "ValidationError")
		wantProblem(t, s.Do("GET", "/v1/webhooks/"+ep.ID+"/deliveries/whd_nope", admin, nil), 404, "NotFound")

		// Another tenant sees nothing of it.
		stranger := s.Key(apitest.Tenant("hooks-other"), model.ScopeWebhooksAdmin)
		wantProblem(t, s.Do("GET", path, stranger, nil), 404, "NotFound")
		wantProblem(t, s.Do("GET", "/v1/webhooks/"+ep.ID, stranger, nil), 404, "NotFound")
		wantProblem(t, s.Do("DELETE", "/v1/webhooks/"+ep.ID, stranger, nil), 404, "NotFound")
		var list struct{ Data []any }
		s.Do("GET", "/v1/webhooks", stranger, nil).JSON(t, &list)
		if len(list.Data) != 0 {
			t.Errorf("another tenant lists %d endpoints", len(list.Data))
		}
		s.Do("DELETE", "/v1/webhooks/"+ep.ID, admin, nil).Expect(t, 204)

		// Without the development setting, private targets are refused.
		strict := apitest.Start(t, b, apitest.Config{})
		p := wantProblem(t, strict.Do("POST", "/v1/webhooks", strict.Key(ten, model.ScopeWebhooksAdmin), map[string]any{"url": "https://127.0.0.1/hook"}), 400, "ValidationError")
		if len(p.Details) == 0 || p.Details[0].Field != "url" {
			t.Errorf("a loopback target: %+v", p)
		}
	})
}
