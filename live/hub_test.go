package live

import (
	"errors"
	"sync"
	"testing"

	"github.com/incidentd/incidentd/model"
)

func ev(id int64, tenant string, sev model.Severity) *model.Event {
	svc := "api"
	return &model.Event{Pos: model.Position{Seq: id}, TenantID: tenant, Type: model.EventIncidentCreated,
		Incident: &model.Incident{TenantID: tenant, Severity: sev, Status: model.StatusOpen, Service: &svc}}
}

func TestPublishFiltersByTenantAndFilter(t *testing.T) {
	h := New(Options{})
	all, _ := h.Subscribe("a", model.EventFilter{})
	crit, _ := h.Subscribe("a", model.EventFilter{Severities: []model.Severity{model.SeverityCritical}})
	other, _ := h.Subscribe("b", model.EventFilter{})
	svc, _ := h.Subscribe("a", model.EventFilter{Services: []string{"web"}})
	h.Publish([]*model.Event{ev(1, "a", model.SeverityLow), ev(2, "a", model.SeverityCritical), ev(3, "b", model.SeverityLow)})
	want := map[*Sub][]int64{all: {1, 2}, crit: {2}, other: {3}, svc: nil}
	for s, ids := range want {
		var got []int64
		for len(s.C()) > 0 {
			got = append(got, (<-s.C()).Pos.Seq)
		}
		if len(got) != len(ids) || (len(ids) > 0 && got[len(got)-1] != ids[len(ids)-1]) {
			t.Errorf("%s got %v want %v", s.tenant, got, ids)
		}
	}
}

func TestSlowConsumerIsDropped(t *testing.T) {
	h := New(Options{Buffer: 2})
	slow, _ := h.Subscribe("a", model.EventFilter{})
	fast, _ := h.Subscribe("a", model.EventFilter{})
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
	a1, _ := h.Subscribe("a", model.EventFilter{})
	h.Subscribe("a", model.EventFilter{})
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
	for range 8 {
		wg.Go(func() {
			for range 200 {
				s, err := h.Subscribe("a", model.EventFilter{})
				if err == nil {
					s.Close()
				}
			}
		})
	}
	wg.Go(func() {
		for i := range int64(2000) {
			h.Publish([]*model.Event{ev(i, "a", model.SeverityLow)})
		}
	})
	wg.Wait()
	if h.Count() != 0 {
		t.Errorf("%d subscriptions leaked", h.Count())
	}
}

func TestSlowConsumerGetsNothingAfterTheLostEvent(t *testing.T) {
	h := New(Options{Buffer: 1})
	s, _ := h.Subscribe("a", model.EventFilter{})
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
	s, _ := h.Subscribe("a", model.EventFilter{Statuses: []model.Status{model.StatusInvestigating}})
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
