package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The -fanout mode: many idle GraphQL subscribers, a steady trickle of REST
// creations, and how long each creation takes to reach every subscriber.

const (
	gqlSubprotocol    = "graphql-transport-ws"
	subscriptionQuery = "subscription { incidentChanged { id type at incident { id } } }"

	fanoutProgress = 5 * time.Second  // progress lines on stderr during the mutation phase
	fanoutWrite    = 10 * time.Second // bound on writing one pong or the final complete
	fanoutReadMax  = 1 << 20          // largest message accepted from the server

	maxFailureNotes = 5 // distinct failure messages kept per kind
)

// Variables only so tests can shorten them.
var (
	fanoutSettle = 2 * time.Second // idle time after the ramp-up, before measuring RSS and mutating
	fanoutDrain  = 5 * time.Second // longest wait for stragglers after the last mutation
)

var (
	msgSubscribe = mustJSON(map[string]any{"id": "1", "type": "subscribe",
		"payload": map[string]string{"query": subscriptionQuery}})
	msgPong     = []byte(`{"type":"pong"}`)
	msgComplete = []byte(`{"id":"1","type":"complete"}`)
)

// incoming is a graphql-transport-ws message from the server, shaped for
// the hot path: a `next` of incidentChanged decodes in one pass.
type incoming struct {
	Type    string `json:"type"`
	Payload struct {
		Data *struct {
			IncidentChanged *struct {
				At       string `json:"at"`
				Incident struct {
					ID string `json:"id"`
				} `json:"incident"`
			} `json:"incidentChanged"`
		} `json:"data"`
		Errors []struct {
			Message string `json:"message"`
		} `json:"errors"`
	} `json:"payload"`
}

// event is what loadgen keeps of one `next` message.
type event struct {
	incident uint64        // idHash of the incident's id
	latency  time.Duration // receipt time - event.at
}

func newEvent(at string, incident uint64, recv time.Time) (event, error) {
	t, err := time.Parse(time.RFC3339Nano, at)
	if err != nil {
		return event{}, fmt.Errorf("event at: %w", err)
	}
	return event{incident: incident, latency: recv.Sub(t)}, nil
}

// parseMessage decodes one server message and returns its type and, for a
// `next`, the event with its delivery latency from the receipt time. An
// unusable `next` is an error; other types are not inspected further.
func parseMessage(data []byte, recv time.Time) (string, event, error) {
	if at, id, ok := scanNext(data); ok { // the hot path
		ev, err := newEvent(string(at), idHash(id), recv)
		return "next", ev, err
	}
	return decodeMessage(data, recv)
}

// decodeMessage is parseMessage with encoding/json only.
func decodeMessage(data []byte, recv time.Time) (string, event, error) {
	var m incoming
	if err := json.Unmarshal(data, &m); err != nil {
		// A type mismatch inside the payload (such as the array payload of
		// an error message) still leaves the type decoded.
		var te *json.UnmarshalTypeError
		if !errors.As(err, &te) || m.Type == "" || m.Type == "next" {
			return m.Type, event{}, fmt.Errorf("undecodable message (%v): %s", err, preview(data))
		}
		return m.Type, event{}, nil
	}
	if m.Type != "next" {
		return m.Type, event{}, nil
	}
	p := &m.Payload
	if len(p.Errors) > 0 {
		return m.Type, event{}, fmt.Errorf("next carries GraphQL errors: %q", p.Errors[0].Message)
	}
	if p.Data == nil || p.Data.IncidentChanged == nil {
		return m.Type, event{}, fmt.Errorf("next without incidentChanged: %s", preview(data))
	}
	ev := p.Data.IncidentChanged
	if ev.Incident.ID == "" {
		return m.Type, event{}, fmt.Errorf("event without incident id: %s", preview(data))
	}
	e, err := newEvent(ev.At, idHash(ev.Incident.ID), recv)
	return m.Type, e, err
}

// idHash is 64-bit FNV-1a. Subscribers store it instead of the id string,
// which keeps millions of deliveries cheap to hold.
func idHash[T string | []byte](s T) uint64 {
	h := uint64(14695981039346656037)
	for i := 0; i < len(s); i++ {
		h ^= uint64(s[i])
		h *= 1099511628211
	}
	return h
}

// subscriber is one WebSocket connection with one subscription. Only its
// goroutine touches lat, hashes, pings and bad until fanout.goers is done.
type subscriber struct {
	conn     *websocket.Conn // nil until dialled
	lat      []float32       // delivery latency (ms) of each event received
	hashes   []uint64        // idHash of each event's incident, parallel to lat
	received atomic.Int64    // len(lat), readable while running
	pings    int64           // graphql-transport-ws pings answered
	bad      int64           // messages that were not usable events
	badErr   error           // the first of them
	closing  atomic.Bool     // loadgen is closing it: read errors are expected

	mu  sync.Mutex
	err error // first failure: setup, subscription error or lost connection
}

func (s *subscriber) fail(err error) {
	s.mu.Lock()
	if s.err == nil {
		s.err = err
	}
	s.mu.Unlock()
}

func (s *subscriber) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// fanoutResult is the -fanout report; with -json it is printed as is.
type fanoutResult struct {
	Mode string `json:"mode"` // always "fanout"

	Subscribers   int      `json:"subscribers"` // asked for
	Subscribed    int      `json:"subscribed"`  // healthy when mutations started
	Failed        int      `json:"failed"`      // the others
	Failures      []string `json:"failures,omitempty"`
	SubBatch      int      `json:"subBatch"`
	RampUpSeconds float64  `json:"rampUpSeconds"`

	ServerRSSBeforeKiB  *int64   `json:"serverRssBeforeKiB,omitempty"`
	ServerRSSAfterKiB   *int64   `json:"serverRssAfterKiB,omitempty"`
	RSSPerSubscriberKiB *float64 `json:"rssPerSubscriberKiB,omitempty"`

	Seconds          float64  `json:"seconds"`            // mutation phase
	TargetRate       float64  `json:"targetRatePerSec"`   // -mutation-rate
	Mutations        int      `json:"mutations"`          // created (2xx with an id)
	MutationErrors   int      `json:"mutationErrors"`     // failed POSTs
	MutationRate     float64  `json:"mutationRatePerSec"` // achieved
	PostP50          float64  `json:"postP50Ms"`
	PostP99          float64  `json:"postP99Ms"`
	Expected         int64    `json:"expectedDeliveries"` // mutations x subscribed
	Delivered        int64    `json:"deliveries"`         // distinct (subscriber, incident) pairs received
	Missing          int64    `json:"missing"`
	SubscribersShort int      `json:"subscribersShort"` // subscribers that missed at least one event
	Duplicates       int64    `json:"duplicates"`       // repeated events of one incident on one subscriber
	OtherEvents      int64    `json:"otherEvents"`      // events of incidents loadgen did not create
	BadMessages      int64    `json:"badMessages"`      // undecodable messages or events
	Dropped          int      `json:"dropped"`          // subscribers lost after mutations started
	Drops            []string `json:"drops,omitempty"`
	PingsAnswered    int64    `json:"pingsAnswered"`
	LatencyP50       float64  `json:"latencyP50Ms"`
	LatencyP95       float64  `json:"latencyP95Ms"`
	LatencyP99       float64  `json:"latencyP99Ms"`
	LatencyMax       float64  `json:"latencyMaxMs"`
}

// notes keeps the first few distinct messages of a kind of failure.
type notes struct {
	list []string
}

func (n *notes) add(msg string) {
	if len(n.list) < maxFailureNotes && !slices.Contains(n.list, msg) {
		n.list = append(n.list, msg)
	}
}

// fanout holds one -fanout run.
type fanout struct {
	lg      *loadgen
	wsURL   string
	dial    *websocket.DialOptions
	initMsg []byte
	subs    []*subscriber
	goers   sync.WaitGroup // one goroutine per subscriber
	capHint int            // initial capacity of each subscriber's samples
}

// wsURLFor maps the REST base URL to the GraphQL WebSocket endpoint.
func wsURLFor(base string) (string, error) {
	u, err := url.Parse(base)
	if err != nil {
		return "", err
	}
	switch u.Scheme {
	case "http":
		u.Scheme = "ws"
	case "https":
		u.Scheme = "wss"
	default:
		return "", fmt.Errorf("unsupported scheme %q", u.Scheme)
	}
	u.Path = strings.TrimRight(u.Path, "/") + graphqlPath
	u.RawQuery = ""
	return u.String(), nil
}

func newFanout(lg *loadgen) (*fanout, error) {
	wsURL, err := wsURLFor(lg.cfg.baseURL)
	if err != nil {
		return nil, err
	}
	// A transport of its own: the REST client caps connections per host,
	// and every WebSocket holds one for good.
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 5 * time.Second,
	}
	expected := lg.cfg.mutationRate * lg.cfg.duration.Seconds()
	if lg.cfg.requests > 0 {
		expected = float64(lg.cfg.requests)
	}
	return &fanout{
		lg:    lg,
		wsURL: wsURL,
		dial: &websocket.DialOptions{
			HTTPClient:   &http.Client{Transport: tr},
			Subprotocols: []string{gqlSubprotocol},
		},
		initMsg: mustJSON(map[string]any{"type": "connection_init",
			"payload": map[string]string{"X-API-Key": lg.cfg.key}}),
		subs:    make([]*subscriber, lg.cfg.subscribers),
		capHint: int(min(expected+16, 1024)), // append grows beyond; this only spares most runs the regrowth
	}, nil
}

// runFanout is the whole -fanout session.
func (lg *loadgen) runFanout(ctx context.Context) error {
	cfg := lg.cfg
	if lim, err := raiseFileLimit(); err != nil {
		lg.logf("fanout: could not raise the open files limit (now %d): %v", lim, err)
	} else if lim < uint64(cfg.subscribers)+64 {
		lg.logf("fanout: open files limit %d is too low for %d subscribers", lim, cfg.subscribers)
	}
	if _, err := lg.c.preflight(ctx); err != nil {
		return err
	}
	f, err := newFanout(lg)
	if err != nil {
		return err
	}
	res := fanoutResult{Mode: "fanout", Subscribers: cfg.subscribers, SubBatch: cfg.subBatch,
		TargetRate: cfg.mutationRate}

	if cfg.serverPID > 0 {
		kib, err := readVmRSS(cfg.serverPID)
		if err != nil {
			return fmt.Errorf("-server-pid: %w", err)
		}
		res.ServerRSSBeforeKiB = &kib
	}

	lg.logf("fanout: opening %d subscriptions at %s, %d at a time", cfg.subscribers, f.wsURL, cfg.subBatch)
	res.RampUpSeconds = f.rampUp(ctx).Seconds()
	if ctx.Err() == nil {
		lg.logf("fanout: ramp-up took %.3fs; idling %s", res.RampUpSeconds, fanoutSettle)
		sleep(ctx, fanoutSettle)
	}
	if ctx.Err() != nil {
		f.closeAll()
		return ctx.Err()
	}

	// Whoever is healthy now is expected to receive every event.
	var failures notes
	var live []*subscriber
	for _, s := range f.subs {
		if err := s.failure(); err != nil {
			failures.add(err.Error())
			continue
		}
		live = append(live, s)
	}
	res.Subscribed, res.Failed, res.Failures = len(live), cfg.subscribers-len(live), failures.list
	for _, msg := range failures.list {
		lg.logf("fanout: subscriber failed: %s", msg)
	}
	if cfg.serverPID > 0 {
		kib, err := readVmRSS(cfg.serverPID)
		if err != nil {
			lg.logf("fanout: -server-pid: %v", err)
		} else {
			res.ServerRSSAfterKiB = &kib
			if len(live) > 0 {
				per := float64(kib-*res.ServerRSSBeforeKiB) / float64(len(live))
				res.RSSPerSubscriberKiB = &per
			}
		}
	}
	if len(live) == 0 {
		f.closeAll()
		lg.printFanout(res)
		return fmt.Errorf("none of the %d subscriptions succeeded", cfg.subscribers)
	}

	lg.logf("fanout: %d subscribed (%d failed); creating %g incidents/s for %s",
		len(live), res.Failed, cfg.mutationRate, cfg.duration)
	mut := f.mutate(ctx, live)
	if ctx.Err() == nil {
		f.drain(ctx, live, int64(len(mut.ids)))
	}
	f.closeAll()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	res.Seconds = mut.window.Seconds()
	res.Mutations, res.MutationErrors = len(mut.ids), mut.posts.errors
	if mut.window > 0 {
		res.MutationRate = float64(len(mut.ids)) / mut.window.Seconds()
	}
	posts := summarize("fanout", 0, mut.posts, mut.window)
	res.PostP50, res.PostP99 = posts.P50, posts.P99
	d := tally(live, mut.ids)
	res.Expected, res.Delivered, res.Missing = d.expected, d.delivered, d.expected-d.delivered
	res.SubscribersShort, res.Duplicates, res.OtherEvents = d.short, d.duplicates, d.other
	res.BadMessages, res.Dropped, res.Drops, res.PingsAnswered = d.bad, d.dropped, d.drops, d.pings
	res.LatencyP50 = usRound(percentile(d.latencies, 50))
	res.LatencyP95 = usRound(percentile(d.latencies, 95))
	res.LatencyP99 = usRound(percentile(d.latencies, 99))
	res.LatencyMax = usRound(percentile(d.latencies, 100))
	for _, msg := range d.drops {
		lg.logf("fanout: subscriber dropped: %s", msg)
	}
	for _, msg := range d.badNotes {
		lg.logf("fanout: bad message: %s", msg)
	}
	lg.printFanout(res)
	return nil
}

// usRound turns a float32 of milliseconds into a float64 rounded to the
// microsecond, the precision of event.at, dropping float32 noise digits.
func usRound(ms float32) float64 { return math.Round(float64(ms)*1000) / 1000 }

func sleep(ctx context.Context, d time.Duration) {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
	case <-t.C:
	}
}

// rampUp opens every subscription, -sub-batch at a time, and returns once
// each has been acknowledged and subscribed, or has failed.
func (f *fanout) rampUp(ctx context.Context) time.Duration {
	for i := range f.subs {
		f.subs[i] = &subscriber{}
	}
	return openAll(ctx, len(f.subs), f.lg.cfg.subBatch, &f.goers,
		func(ctx context.Context, i int) error {
			s := f.subs[i]
			err := f.connect(ctx, s)
			if err != nil && s.conn != nil {
				s.conn.CloseNow()
				s.conn = nil
			}
			return err
		},
		func(i int, err error) {
			if err != nil {
				f.subs[i].fail(err)
				return
			}
			f.read(f.subs[i])
		})
}

// openAll sets up n connections, batch at a time, each in a goroutine of
// its own counted in goers, and returns once every set-up has ended, with
// the time that took. Connection i's goroutine runs connect(i) (a
// connection still waiting for its turn gets the cancellation instead); a
// failure is handed to serve(i, err) before openAll returns, a success to
// serve(i, nil) afterwards, which reads the connection until it ends.
func openAll(ctx context.Context, n, batch int, goers *sync.WaitGroup,
	connect func(ctx context.Context, i int) error, serve func(i int, err error)) time.Duration {
	sem := make(chan struct{}, batch)
	var setup sync.WaitGroup
	start := time.Now()
	for i := range n {
		setup.Add(1)
		goers.Go(func() {
			var err error
			select {
			case sem <- struct{}{}:
				err = connect(ctx, i)
				<-sem
			case <-ctx.Done():
				err = ctx.Err()
			}
			if err != nil {
				serve(i, err) // the failure is recorded before rampUp returns
			}
			setup.Done()
			if err == nil {
				serve(i, nil)
			}
		})
	}
	setup.Wait()
	return time.Since(start)
}

// connect dials, authenticates with connection_init, waits for the ack and
// subscribes, all within -timeout.
func (f *fanout) connect(ctx context.Context, s *subscriber) error {
	ctx, cancel := context.WithTimeout(ctx, f.lg.cfg.timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, f.wsURL, f.dial)
	if err != nil {
		if resp != nil && resp.Body != nil {
			if b, _ := io.ReadAll(resp.Body); len(b) > 0 {
				err = fmt.Errorf("%w: %s", err, preview(b))
			}
		}
		return err
	}
	s.conn = c
	if c.Subprotocol() != gqlSubprotocol {
		return fmt.Errorf("server did not accept subprotocol %s", gqlSubprotocol)
	}
	c.SetReadLimit(fanoutReadMax)
	if err := c.Write(ctx, websocket.MessageText, f.initMsg); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	for acked := false; !acked; {
		_, data, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for connection_ack: %w", err)
		}
		typ, _, err := parseMessage(data, time.Time{})
		if err != nil {
			return fmt.Errorf("waiting for connection_ack: %w", err)
		}
		switch typ {
		case "connection_ack":
			acked = true
		case "ping":
			if err := c.Write(ctx, websocket.MessageText, msgPong); err != nil {
				return fmt.Errorf("pong: %w", err)
			}
			s.pings++
		case "pong":
		default:
			return fmt.Errorf("waiting for connection_ack: got %s", preview(data))
		}
	}
	if err := c.Write(ctx, websocket.MessageText, msgSubscribe); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	s.lat = make([]float32, 0, f.capHint)
	s.hashes = make([]uint64, 0, f.capHint)
	return nil
}

// read consumes the connection until it ends, never blocking on anything
// but the socket so the server never sees a slow consumer.
func (f *fanout) read(s *subscriber) {
	ctx := context.Background() // a cancellable context would cost a timer per Read; closeAll ends us instead
	for {
		_, data, err := s.conn.Read(ctx)
		recv := time.Now()
		if err != nil {
			if !s.closing.Load() {
				s.fail(fmt.Errorf("connection lost: %w", err))
			}
			return
		}
		typ, ev, err := parseMessage(data, recv)
		if err != nil {
			s.noteBad(err)
			continue
		}
		switch typ {
		case "next":
			s.lat = append(s.lat, float32(float64(ev.latency)/float64(time.Millisecond)))
			s.hashes = append(s.hashes, ev.incident)
			s.received.Add(1)
		case "ping":
			s.pings++
			wctx, cancel := context.WithTimeout(ctx, fanoutWrite)
			if err := s.conn.Write(wctx, websocket.MessageText, msgPong); err != nil && !s.closing.Load() {
				s.fail(fmt.Errorf("pong: %w", err))
			}
			cancel()
		case "pong":
		case "error":
			s.fail(fmt.Errorf("subscription error: %s", preview(data)))
		case "complete":
			if !s.closing.Load() {
				s.fail(errors.New("the server completed the subscription"))
			}
		default:
			s.noteBad(fmt.Errorf("unexpected message %s", preview(data)))
		}
	}
}

func (s *subscriber) noteBad(err error) {
	s.bad++
	if s.badErr == nil {
		s.badErr = err
	}
}

// mutations is what the mutation phase did.
type mutations struct {
	ids    []string // of the incidents created
	posts  stats    // the creating POSTs
	window time.Duration
}

// mutate creates -mutation-rate incidents per second for -duration (or
// -requests of them at that pace). The clock paces the creations and
// workers send them, enough to keep the pace with POSTs of up to a second;
// when every worker is busy a beat is dropped rather than sent late in a
// burst, and the achieved rate shows it.
func (f *fanout) mutate(ctx context.Context, live []*subscriber) mutations {
	lg := f.lg
	rate := lg.cfg.mutationRate
	workers := min(max(4, int(math.Ceil(rate))), 64)
	done := make(chan struct{})
	defer close(done)
	go func() {
		progress := time.NewTicker(fanoutProgress)
		defer progress.Stop()
		for {
			select {
			case <-done:
				return
			case <-progress.C:
				var got int64
				for _, s := range live {
					got += s.received.Load()
				}
				lg.logf("fanout: %d events received so far", got)
			}
		}
	}()
	now := time.Now()
	var m mutations
	rows, window := lg.attack(ctx, phase{name: "fanout", jobs: lg.cfg.requests, duration: lg.cfg.duration, keep: -1,
		workers: workers, every: max(time.Duration(float64(time.Second)/rate), time.Microsecond),
		gen:   func(rng *rand.Rand, _ int) request { return postRequest(newIncident(rng, now, postAge)) },
		judge: judgeCreated(func(id string) { m.ids = append(m.ids, id) })})
	m.posts, m.window = rows[0], window
	if want := rate * window.Seconds(); ctx.Err() == nil && float64(m.posts.requests) < 0.95*want {
		lg.logf("fanout: sent only %d of %.0f creations: %d workers could not keep up with the POST latency",
			m.posts.requests, want, workers)
	}
	return m
}

// drain waits until every healthy subscriber has received as many events
// as there were creations, or fanoutDrain has passed.
func (f *fanout) drain(ctx context.Context, live []*subscriber, perSub int64) {
	deadline := time.Now().Add(fanoutDrain)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		done := true
		for _, s := range live {
			if s.received.Load() < perSub && s.failure() == nil {
				done = false
				break
			}
		}
		if done {
			return
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if ctx.Err() != nil {
		return
	}
	f.lg.logf("fanout: some events still missing %s after the last creation", fanoutDrain)
}

// closeAll completes every subscription, closes its connection with 1000
// and waits for every subscriber goroutine to end. It runs after rampUp has
// returned, so no subscriber's conn changes any more.
func (f *fanout) closeAll() {
	var wg sync.WaitGroup
	for _, s := range f.subs {
		if s == nil {
			continue
		}
		s.closing.Store(true)
		if s.conn == nil {
			continue
		}
		wg.Go(func() {
			ctx, cancel := context.WithTimeout(context.Background(), fanoutWrite)
			_ = s.conn.Write(ctx, websocket.MessageText, msgComplete)
			cancel()
			_ = s.conn.Close(websocket.StatusNormalClosure, "loadgen done")
		})
	}
	wg.Wait()
	f.goers.Wait()
}

// deliveries is the tally of what the healthy subscribers received.
type deliveries struct {
	expected, delivered, duplicates, other, bad, pings int64
	short, dropped                                     int
	drops, badNotes                                    []string
	latencies                                          []float32 // ms, sorted
}

// tally matches every event received against the incidents created. It
// must run after the subscriber goroutines ended, and frees their samples.
func tally(live []*subscriber, ids []string) deliveries {
	index := make(map[uint64]int, len(ids))
	for i, id := range ids {
		index[idHash(id)] = i
	}
	m := len(index)
	var d deliveries
	var drops, badNotes notes
	total := 0
	for _, s := range live {
		total += len(s.lat)
	}
	d.latencies = make([]float32, 0, total)
	seen := make([]bool, len(ids))
	for _, s := range live {
		unique := 0
		for i, h := range s.hashes {
			k, ok := index[h]
			if !ok {
				d.other++
				continue
			}
			d.latencies = append(d.latencies, s.lat[i])
			if seen[k] {
				d.duplicates++
				continue
			}
			seen[k] = true
			unique++
		}
		clear(seen)
		d.delivered += int64(unique)
		if unique < m {
			d.short++
		}
		if err := s.failure(); err != nil {
			d.dropped++
			drops.add(err.Error())
		}
		d.bad += s.bad
		if s.badErr != nil {
			badNotes.add(s.badErr.Error())
		}
		d.pings += s.pings
		s.lat, s.hashes = nil, nil
	}
	d.expected = int64(m) * int64(len(live))
	d.drops, d.badNotes = drops.list, badNotes.list
	slices.Sort(d.latencies)
	return d
}

// readVmRSS returns the resident set size of a process in KiB.
func readVmRSS(pid int) (int64, error) {
	fh, err := os.Open("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, err
	}
	defer fh.Close()
	return parseVmRSS(fh)
}

// parseVmRSS finds the "VmRSS:   1234 kB" line of a /proc/PID/status file.
func parseVmRSS(r io.Reader) (int64, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		rest, ok := strings.CutPrefix(sc.Text(), "VmRSS:")
		if !ok {
			continue
		}
		fields := strings.Fields(rest)
		if len(fields) != 2 || fields[1] != "kB" {
			return 0, fmt.Errorf("unexpected VmRSS line %q", sc.Text())
		}
		return strconv.ParseInt(fields[0], 10, 64)
	}
	if err := sc.Err(); err != nil {
		return 0, err
	}
	return 0, errors.New("no VmRSS line (a kernel thread, or not Linux?)")
}

// printFanout writes the report: a few labelled lines, or one JSON object.
func (lg *loadgen) printFanout(r fanoutResult) {
	w := lg.out.w
	if lg.out.json {
		fmt.Fprintf(w, "%s\n", mustJSON(r))
		return
	}
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	fmt.Fprintf(w, "subscribers:  %d of %d subscribed, %d failed; ramp-up %.3fs (%d at a time)\n",
		r.Subscribed, r.Subscribers, r.Failed, r.RampUpSeconds, r.SubBatch)
	if r.ServerRSSBeforeKiB != nil {
		after, per := "?", "?"
		if r.ServerRSSAfterKiB != nil {
			after = strconv.FormatInt(*r.ServerRSSAfterKiB, 10)
		}
		if r.RSSPerSubscriberKiB != nil {
			per = f1(*r.RSSPerSubscriberKiB)
		}
		fmt.Fprintf(w, "server RSS:   %d -> %s KiB, %s KiB per subscriber\n", *r.ServerRSSBeforeKiB, after, per)
	}
	if r.Subscribed == 0 {
		return
	}
	fmt.Fprintf(w, "mutations:    %d created, %d failed in %.1fs (%s/s, target %s/s); POST p50 %sms p99 %sms\n",
		r.Mutations, r.MutationErrors, r.Seconds, f1(r.MutationRate), f1(r.TargetRate), f2(r.PostP50), f2(r.PostP99))
	fmt.Fprintf(w, "deliveries:   %d expected, %d delivered, %d missing (%d subscribers short); "+
		"%d duplicates, %d other events, %d bad messages, %d subscribers dropped\n",
		r.Expected, r.Delivered, r.Missing, r.SubscribersShort, r.Duplicates, r.OtherEvents, r.BadMessages, r.Dropped)
	fmt.Fprintf(w, "latency (ms): p50 %s  p95 %s  p99 %s  max %s  (receipt - event.at, over all deliveries)\n",
		f2(r.LatencyP50), f2(r.LatencyP95), f2(r.LatencyP99), f2(r.LatencyMax))
}

// judgeCreated judges a creation's answer and hands record the new
// incident's id (the judge runs on one goroutine, in order).
func judgeCreated(record func(id string)) func(int, *vegeta.Result) (int, string, string) {
	return func(job int, res *vegeta.Result) (int, string, string) {
		_, kind, detail := judgeStatus(job, res)
		var created struct {
			ID string `json:"id"`
		}
		switch {
		case kind != "":
			return 0, kind, detail
		case json.Unmarshal(res.Body, &created) != nil || created.ID == "":
			return 0, "transport", "created incident without id: " + preview(res.Body)
		}
		record(created.ID)
		return 0, "", ""
	}
}
