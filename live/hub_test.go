package live

import (
	"context"
	"errors"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

func ev(id int64, tenant string, sev model.Severity) *model.Event {
	svc := "api"
	return &model.Event{Pos: model.Position{Seq: id}, TenantID: tenant, Type: model.EventIncidentCreated,
		Incident: &model.Incident{TenantID: tenant, Severity: sev, Status: model.StatusOpen, Service: &svc}}
}

// sub subscribes or fails the test.
func sub(t *testing.T, h *Hub, tenant string, f model.EventFilter) *Sub {
	t.Helper()
	s, err := h.Subscribe(tenant, f)
	if err != nil {
		t.Fatalf("subscribe %s: %v", tenant, err)
	}
	return s
}

func TestPublishFiltersByTenantAndFilter(t *testing.T) {
	h := New(Options{})
	all := sub(t, h, "a", model.EventFilter{})
	crit := sub(t, h, "a", model.EventFilter{Severities: []model.Severity{model.SeverityCritical}})
	other := sub(t, h, "b", model.EventFilter{})
	svc := sub(t, h, "a", model.EventFilter{Services: []string{"web"}})
	h.Publish([]*model.Event{ev(1, "a", model.SeverityLow), ev(2, "a", model.SeverityCritical), ev(3, "b", model.SeverityLow)})
	want := map[*Sub][]int64{all: {1, 2}, crit: {2}, other: {3}, svc: nil}
	for s, ids := range want {
		var got []int64
		for len(s.C()) > 0 {
			got = append(got, (<-s.C()).Pos.Seq)
		}
		if !slices.Equal(got, ids) {
			t.Errorf("%s got %v want %v", s.tenant, got, ids)
		}
	}
}

func TestSlowConsumerIsDropped(t *testing.T) {
	h := New(Options{Buffer: 2})
	slow := sub(t, h, "a", model.EventFilter{})
	fast := sub(t, h, "a", model.EventFilter{})
	for i := range int64(5) {
		h.Publish([]*model.Event{ev(i, "a", model.SeverityLow)})
		for len(fast.C()) > 0 {
			<-fast.C()
		}
	}
	n := 0
	for range slow.C() { // drains what was buffered, then sees the close
		n++
	}
	if n != 2 || !errors.Is(slow.Err(), ErrSlowConsumer) {
		t.Errorf("slow: %d buffered, err %v", n, slow.Err())
	}
	if h.Count() != 1 || fast.Err() != nil {
		t.Errorf("fast consumer affected: count %d err %v", h.Count(), fast.Err())
	}
}

func TestCapsAndClose(t *testing.T) {
	h := New(Options{MaxPerTenant: 2})
	a1 := sub(t, h, "a", model.EventFilter{})
	sub(t, h, "a", model.EventFilter{})
	if _, err := h.Subscribe("a", model.EventFilter{}); model.ErrorCode(err) != model.CodeRateLimited {
		t.Errorf("cap: %v", err)
	}
	if _, err := h.Subscribe("b", model.EventFilter{}); err != nil {
		t.Errorf("another tenant is capped separately: %v", err)
	}
	a1.Close()
	a1.Close() // idempotent
	if _, err := h.Subscribe("a", model.EventFilter{}); err != nil {
		t.Errorf("after close: %v", err)
	}
	h.Close()
	if h.Count() != 0 {
		t.Errorf("%d left after Close", h.Count())
	}
	if _, err := h.Subscribe("a", model.EventFilter{}); !errors.Is(err, ErrShutdown) {
		t.Errorf("subscribe after close: %v", err)
	}
}

func TestConcurrentPublishAndChurn(t *testing.T) {
	h := New(Options{Buffer: 1024})
	var wg sync.WaitGroup
	var failed atomic.Int64
	for range 8 {
		wg.Go(func() {
			for range 200 {
				s, err := h.Subscribe("a", model.EventFilter{})
				if err != nil {
					failed.Add(1)
					continue
				}
				s.Close()
			}
		})
	}
	wg.Go(func() {
		for i := range int64(2000) {
			h.Publish([]*model.Event{ev(i, "a", model.SeverityLow)})
		}
	})
	wg.Wait()
	if h.Count() != 0 || failed.Load() != 0 {
		t.Errorf("%d subscriptions leaked, %d refused", h.Count(), failed.Load())
	}
}

func TestSlowConsumerGetsNothingAfterTheLostEvent(t *testing.T) {
	h := New(Options{Buffer: 1})
	s := sub(t, h, "a", model.EventFilter{})
	h.Publish([]*model.Event{ev(1, "a", model.SeverityLow), ev(2, "a", model.SeverityLow), ev(3, "a", model.SeverityLow)})
	var got []int64
	for e := range s.C() {
		got = append(got, e.Pos.Seq)
	}
	if len(got) != 1 || got[0] != 1 || !errors.Is(s.Err(), ErrSlowConsumer) {
		t.Errorf("got %v, err %v: a resume after the last id must not skip event 2", got, s.Err())
	}
}

func TestFilterSeesIncidentsLeaveTheFilter(t *testing.T) {
	h := New(Options{})
	s := sub(t, h, "a", model.EventFilter{Statuses: []model.Status{model.StatusInvestigating}})
	before := ev(1, "a", model.SeverityLow).Incident
	before.Status = model.StatusInvestigating
	e := ev(1, "a", model.SeverityLow)
	e.Type, e.Before = model.EventIncidentUpdated, before
	e.Incident.Status = model.StatusResolved
	h.Publish([]*model.Event{e})
	if len(s.C()) != 1 {
		t.Error("an incident leaving the filtered status was not delivered")
	}
}

// replayless is an event log for streams that never resume.
type replayless struct{ model.EventLog }

func TestWaitHoldsCloseUntilCallersFinish(t *testing.T) {
	h := New(Options{})
	ctx, finish := context.WithCancel(model.WithPrincipal(context.Background(),
		&model.Principal{TenantID: "a", Scopes: []model.Scope{model.ScopeIncidentsRead}}))
	defer finish()
	ended := make(chan error, 1)
	if err := h.Open(ctx, replayless{}, model.EventFilter{}, "", func(*model.Event) bool { return true },
		func(why error) { ended <- why }); err != nil {
		t.Fatal(err)
	}
	h.Close()
	if why := <-ended; !errors.Is(why, ErrShutdown) {
		t.Fatalf("ended with %v, want the shutdown", why)
	}
	// The stream has ended but its caller is still telling its client:
	// Wait must not return yet.
	short, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	if err := h.Wait(short); err == nil {
		t.Fatal("Wait returned while a caller was still finishing")
	}
	finish()
	if err := h.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
	// Plain subscriptions have no caller to wait for.
	h2 := New(Options{})
	sub(t, h2, "a", model.EventFilter{})
	h2.Close()
	if err := h2.Wait(context.Background()); err != nil {
		t.Fatal(err)
	}
}
