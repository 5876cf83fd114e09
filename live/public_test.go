package live

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/incidentd/incidentd/model"
)

// fakeStatus is a published tenant whose status the test sets.
type fakeStatus struct {
	mu        sync.Mutex
	title     string
	published bool
	reads     atomic.Int64
}

func (f *fakeStatus) fetch(_ context.Context, tenant string) (*model.StatusSummary, error) {
	f.reads.Add(1)
	f.mu.Lock()
	defer f.mu.Unlock()
	if !f.published {
		return nil, model.NotFound("Status page", tenant)
	}
	return &model.StatusSummary{OpenIncidents: []*model.Incident{{ID: "i", Title: f.title}}, GeneratedAt: time.Now()}, nil
}

func (f *fakeStatus) set(title string, published bool) {
	f.mu.Lock()
	f.title, f.published = title, published
	f.mu.Unlock()
}

func version(s *model.StatusSummary) string {
	if len(s.OpenIncidents) == 0 {
		return ""
	}
	return s.OpenIncidents[0].Title
}

// TestPublicRendersOncePerChange: a thousand viewers of one rendering cost
// one read and one render per change, and all get the very same bytes; a
// second rendering is rendered once more; a change that alters nothing
// public sends nothing.
func TestPublicRendersOncePerChange(t *testing.T) {
	hub := New(Options{})
	st := &fakeStatus{}
	st.set("v1", true)
	p := NewPublic(hub, st.fetch, version, PublicOptions{Refresh: time.Hour, MaxPerIP: 2000})
	defer p.Close()
	var renders [2]atomic.Int64
	render := func(i int) Render {
		return func(s *model.StatusSummary, v string) ([]byte, error) {
			renders[i].Add(1)
			return fmt.Appendf(nil, "%d:%s", i, v), nil
		}
	}
	ctx := context.Background()
	var viewers []*Viewer
	for n := range 1000 {
		v, err := p.Watch(ctx, "t", "ip", "a", render(0), "")
		if err != nil {
			t.Fatal(n, err)
		}
		viewers = append(viewers, v)
	}
	other, err := p.Watch(ctx, "t", "ip", "b", render(1), "")
	if err != nil {
		t.Fatal(err)
	}
	if r := st.reads.Load(); r != 1 {
		t.Errorf("1001 viewers read the status %d times", r)
	}
	next := func(v *Viewer) string {
		t.Helper()
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		defer cancel()
		b, err := v.Next(c)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	var first []byte
	for i, v := range viewers {
		b, _ := v.Take()
		if string(b) != "0:v1" || (i > 0 && &b[0] != &first[0]) {
			t.Fatalf("viewer %d got %q (not the shared bytes)", i, b)
		}
		first = b
	}
	if got := next(other); got != "1:v1" {
		t.Fatalf("second rendering: %q", got)
	}

	st.set("v2", true)
	reads := st.reads.Load()
	hub.Publish([]*model.Event{{TenantID: "t", Incident: &model.Incident{ID: "i"}}})
	for _, v := range viewers {
		if got := next(v); got != "0:v2" {
			t.Fatalf("after the change: %q", got)
		}
	}
	if got := next(other); got != "1:v2" {
		t.Fatalf("second rendering after the change: %q", got)
	}
	if r := st.reads.Load() - reads; r != 1 {
		t.Errorf("one change read the status %d times", r)
	}
	if a, b := renders[0].Load(), renders[1].Load(); a != 2 || b != 2 {
		t.Errorf("renders: %d and %d, want 2 each (the first state and the change)", a, b)
	}
	// Another tenant's event reads nothing; an event that changes nothing
	// public reads once and sends nothing.
	hub.Publish([]*model.Event{{TenantID: "u", Incident: &model.Incident{ID: "x"}}})
	hub.Publish([]*model.Event{{TenantID: "t", Incident: &model.Incident{ID: "i"}}})
	deadline := time.Now().Add(10 * time.Second)
	for st.reads.Load()-reads < 2 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if b, err := viewers[0].Take(); b != nil || err != nil {
		t.Errorf("an unchanged status was sent again: %q %v", b, err)
	}

	// Unpublishing ends them all; their slots are free.
	st.set("v2", false)
	p.Changed("t")
	for _, v := range append(viewers, other) {
		c, cancel := context.WithTimeout(ctx, 10*time.Second)
		_, err := v.Next(c)
		cancel()
		if err != ErrUnpublished {
			t.Fatalf("after unpublishing: %v", err)
		}
	}
	if n := p.Count(); n != 0 {
		t.Errorf("%d viewers counted after the end", n)
	}
	if _, err := p.Watch(ctx, "t", "ip", "a", render(0), ""); err == nil || model.AsError(err).Code != model.CodeNotFound {
		t.Errorf("watching an unpublished tenant: %v", err)
	}
}

// TestPublicSlowViewerGetsTheNewest: a viewer that does not read keeps one
// message, the newest, however many changes pass.
func TestPublicSlowViewerGetsTheNewest(t *testing.T) {
	hub := New(Options{})
	st := &fakeStatus{}
	st.set("v0", true)
	p := NewPublic(hub, st.fetch, version, PublicOptions{Refresh: time.Hour})
	defer p.Close()
	render := func(s *model.StatusSummary, v string) ([]byte, error) { return []byte(v), nil }
	slow, err := p.Watch(context.Background(), "t", "ip", "k", render, "")
	if err != nil {
		t.Fatal(err)
	}
	fast, err := p.Watch(context.Background(), "t", "ip", "k", render, "")
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= 50; i++ {
		st.set(fmt.Sprint("v", i), true)
		p.Changed("t")
		for {
			b, err := fast.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			if string(b) == fmt.Sprint("v", i) {
				break
			}
		}
	}
	if b, _ := slow.Take(); string(b) != "v50" {
		t.Errorf("the slow viewer holds %q", b)
	}
	if b, _ := slow.Take(); b != nil {
		t.Errorf("and then %q", b)
	}
}

// TestPublicPerIPCap: an address's viewers are capped; closing one frees it.
func TestPublicPerIPCap(t *testing.T) {
	st := &fakeStatus{}
	st.set("v", true)
	p := NewPublic(New(Options{}), st.fetch, version, PublicOptions{Refresh: time.Hour, MaxPerIP: 2, Max: 3})
	defer p.Close()
	render := func(s *model.StatusSummary, v string) ([]byte, error) { return []byte(v), nil }
	ctx := context.Background()
	a, _ := p.Watch(ctx, "t", "1.1.1.1", "k", render, "")
	if _, err := p.Watch(ctx, "t", "1.1.1.1", "k", render, ""); err != nil {
		t.Fatal(err)
	}
	if _, err := p.Watch(ctx, "t", "1.1.1.1", "k", render, ""); err != ErrTooManyFromIP {
		t.Errorf("third from one address: %v", err)
	}
	if _, err := p.Watch(ctx, "t", "2.2.2.2", "k", render, ""); err != nil {
		t.Errorf("another address: %v", err)
	}
	if _, err := p.Watch(ctx, "t", "3.3.3.3", "k", render, ""); err != ErrTooManyViewers {
		t.Errorf("beyond the instance's cap: %v", err)
	}
	a.Close()
	if _, err := p.Watch(ctx, "t", "1.1.1.1", "k", render, ""); err != nil {
		t.Errorf("after one closed: %v", err)
	}
}

// TestPublicRenderingsCap: a tenant's distinct renderings are capped; a
// refused viewer holds nothing, and a shared rendering still admits more.
func TestPublicRenderingsCap(t *testing.T) {
	st := &fakeStatus{}
	st.set("v", true)
	p := NewPublic(New(Options{}), st.fetch, version, PublicOptions{Refresh: time.Hour, MaxRenderings: 2})
	defer p.Close()
	render := func(s *model.StatusSummary, v string) ([]byte, error) { return []byte(v), nil }
	ctx := context.Background()
	for _, key := range []string{"a", "b"} {
		if _, err := p.Watch(ctx, "t", "ip", key, render, ""); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := p.Watch(ctx, "t", "ip", "c", render, ""); err != ErrTooManyRenderings {
		t.Errorf("a third rendering: %v", err)
	}
	if n, r := p.Count(), p.Renderings("t"); n != 2 || r != 2 {
		t.Errorf("after the refusal: %d viewers, %d renderings", n, r)
	}
	if _, err := p.Watch(ctx, "t", "ip", "a", render, ""); err != nil {
		t.Errorf("joining an existing rendering: %v", err)
	}
	// Another tenant has its own.
	if _, err := p.Watch(ctx, "u", "ip", "c", render, ""); err != nil {
		t.Errorf("another tenant: %v", err)
	}
}
