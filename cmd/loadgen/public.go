package main

import (
	"bufio"
	"bytes"
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
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/coder/websocket"
	vegeta "github.com/tsenart/vegeta/v12/lib"
)

// The -public mode: anonymous viewers of one published tenant's status, over
// server-sent events (GET /v1/public/{tenant}/status/events) and the public
// GraphQL door (/graphql/public, the publicStatus subscription), while one
// writer changes what that status shows; how long each change takes to
// reach each viewer, and what the viewers cost the server.
//
// Each change renames the one incident loadgen keeps open for the run, so
// every change alters the public status and the state a viewer reads names
// the change it contains: "loadgen public <run> change <k>", k = 0 before
// the first change. The status's size stays the same however long the run.

const (
	publicWSPath = "/graphql/public"
	// publicQuery is the widget's kind of document, plus the incidents'
	// updatedAt.
	publicQuery = "subscription($t: ID!) { publicStatus(tenant: $t) { version components { displayName status } " +
		"openIncidents { title updatedAt } } }"

	sseBuffer      = 4 << 10 // read buffer of an SSE viewer; longer lines are gathered
	addrsPerOctet  = 250     // source addresses 127.0.x.2 .. 127.0.x.251
	maxSourceAddrs = addrsPerOctet * 256
)

var (
	msgPublicInit = []byte(`{"type":"connection_init"}`)
	wsNextPrefix  = []byte(`{"id":"1","type":"next","payload":`)
)

// viewer is one public viewer: an SSE stream or a WebSocket with one
// subscription. Only its goroutine touches its samples until the run's
// goroutines are done.
type viewer struct {
	subscriber // conn (WebSocket), pings, bad messages, failure, closing; received counts states

	ws   bool
	src  int                // index of its source address
	stop context.CancelFunc // ends an SSE viewer's request
	sse  *bufio.Reader
	line []byte // an SSE line longer than sse's buffer, gathered
	data []byte // the data of the SSE event being read

	states   []int32      // the change number of each state received
	recv     []int64      // when each was read (Unix ns), parallel to states
	last     atomic.Int64 // the change number of the latest state, -1 before the first
	unmarked int64        // states without loadgen's incident
	size     int          // bytes of the latest state
}

// change is one change the writer made.
type change struct {
	committed time.Time // the incident's updatedAt in the answer: the server's clock, in the transaction
	answered  time.Time // when loadgen had the answer
}

// publicRun holds one -public run.
type publicRun struct {
	lg       *loadgen
	marker   []byte // "loadgen public <run> change "
	incident string // the id of the incident the changes rename
	sseURL   string
	wsURL    string
	statusP  string // path of the public summary
	clients  []*http.Client
	wsDial   []*websocket.DialOptions
	subMsg   []byte
	addrs    int // source addresses in use (0: the system's choice)
	viewers  []*viewer
	goers    sync.WaitGroup
	capHint  int
}

// publicResult is the -public report; with -json it is printed as is.
type publicResult struct {
	Mode string `json:"mode"` // always "public"

	Tenant        string   `json:"tenant"`
	Viewers       int      `json:"viewers"`    // asked for
	SSEViewers    int      `json:"sseViewers"` // of them, over SSE
	WSViewers     int      `json:"wsViewers"`  // and over /graphql/public
	Addresses     int      `json:"sourceAddresses"`
	PerAddress    int      `json:"viewersPerAddress"`
	Open          int      `json:"open"`   // healthy, with a first state, when the changes started
	Failed        int      `json:"failed"` // the others
	Failures      []string `json:"failures,omitempty"`
	SubBatch      int      `json:"subBatch"`
	RampUpSeconds float64  `json:"rampUpSeconds"`
	SSEStateBytes int      `json:"sseStateBytes"` // the latest state's data line
	WSStateBytes  int      `json:"wsStateBytes"`  // the latest state's `next` message

	ServerRSSBeforeKiB  *int64   `json:"serverRssBeforeKiB,omitempty"`
	ServerRSSViewersKiB *int64   `json:"serverRssViewersKiB,omitempty"` // with the viewers open, before the changes
	ServerRSSAfterKiB   *int64   `json:"serverRssAfterKiB,omitempty"`   // after the changes, viewers still open
	RSSPerViewerBytes   *float64 `json:"rssPerViewerBytes,omitempty"`   // (viewers - before) / open

	Seconds      float64 `json:"seconds"` // the changes' phase
	TargetRate   float64 `json:"targetRatePerSec"`
	Changes      int     `json:"changes"` // made (2xx with updatedAt)
	ChangeErrors int     `json:"changeErrors"`
	ChangeRate   float64 `json:"changeRatePerSec"`
	WriteP50     float64 `json:"writeP50Ms"`
	WriteP99     float64 `json:"writeP99Ms"`

	LatestExpected int      `json:"latestExpected"` // open viewers: each must reach the latest state
	LatestReached  int      `json:"latestReached"`
	States         int64    `json:"statesDelivered"` // distinct changed states received, summed over viewers
	Skipped        int64    `json:"statesSkipped"`   // changes a viewer never saw, by design superseded
	Repeated       int64    `json:"repeated"`        // a state received again
	OutOfOrder     int64    `json:"outOfOrder"`      // a state older than one already received
	Unmatched      int64    `json:"unmatched"`       // a change number the writer did not make
	Unmarked       int64    `json:"unmarked"`        // states without loadgen's incident
	BadMessages    int64    `json:"badMessages"`
	Dropped        int      `json:"dropped"` // viewers lost after the changes started
	Drops          []string `json:"drops,omitempty"`
	PingsAnswered  int64    `json:"pingsAnswered"`
	LatencyP50     float64  `json:"latencyP50Ms"`
	LatencyP95     float64  `json:"latencyP95Ms"`
	LatencyP99     float64  `json:"latencyP99Ms"`
	LatencyMax     float64  `json:"latencyMaxMs"`
	AnswerP50      float64  `json:"afterAnswerP50Ms"` // receipt - the write's answer (negative: the state came first)
	AnswerP99      float64  `json:"afterAnswerP99Ms"`
	SSELatencyP50  float64  `json:"sseLatencyP50Ms"`
	SSELatencyP99  float64  `json:"sseLatencyP99Ms"`
	WSLatencyP50   float64  `json:"wsLatencyP50Ms"`
	WSLatencyP99   float64  `json:"wsLatencyP99Ms"`
}

// sourceAddr is the i-th loopback source address: 127.0.x.y, y in 2..251.
func sourceAddr(i int) net.IP {
	return net.IPv4(127, 0, byte(i/addrsPerOctet), byte(i%addrsPerOctet+2))
}

// spreadable reports whether the server is reached over IPv4 loopback,
// where any 127.x.y.z is a source address of this machine.
func spreadable(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.To4() != nil && ip.IsLoopback()
}

// isWS tells whether viewer i of a run with share s of WebSockets uses
// one: spread evenly, floor(n*s) of n viewers.
func isWS(i int, s float64) bool {
	return math.Floor(float64(i+1)*s) > math.Floor(float64(i)*s)
}

func newPublicRun(lg *loadgen) (*publicRun, error) {
	cfg := lg.cfg
	u, err := url.Parse(cfg.baseURL)
	if err != nil {
		return nil, err
	}
	wsURL, err := wsURLFor(cfg.baseURL)
	if err != nil {
		return nil, err
	}
	tenant := url.PathEscape(cfg.tenant)
	p := &publicRun{
		lg:      lg,
		marker:  fmt.Appendf(nil, "loadgen public %08x change ", rand.Uint32()),
		sseURL:  cfg.baseURL + "/v1/public/" + tenant + "/status/events",
		wsURL:   strings.TrimSuffix(wsURL, graphqlPath) + publicWSPath,
		statusP: "/v1/public/" + tenant + "/status",
		subMsg: mustJSON(map[string]any{"id": "1", "type": "subscribe",
			"payload": map[string]any{"query": publicQuery, "variables": map[string]string{"t": cfg.tenant}}}),
		viewers: make([]*viewer, cfg.viewers),
	}
	expected := cfg.mutationRate * cfg.duration.Seconds()
	if cfg.requests > 0 {
		expected = float64(cfg.requests)
	}
	p.capHint = int(min(expected+4, 1024))

	var locals []net.Addr
	switch {
	case cfg.perAddress == 0:
	case !spreadable(u.Hostname()):
		lg.logf("public: %s is not an IPv4 loopback address: every viewer comes from one address, "+
			"so the server's INCIDENTD_PUBLIC_MAX_PER_IP bounds them", u.Hostname())
	default:
		p.addrs = (cfg.viewers + cfg.perAddress - 1) / cfg.perAddress
		if p.addrs > maxSourceAddrs {
			return nil, fmt.Errorf("-viewers %d at -per-address %d needs %d source addresses; at most %d",
				cfg.viewers, cfg.perAddress, p.addrs, maxSourceAddrs)
		}
		for i := range p.addrs {
			locals = append(locals, &net.TCPAddr{IP: sourceAddr(i)})
		}
	}
	if len(locals) == 0 {
		locals = []net.Addr{nil}
	}
	for _, la := range locals {
		tr := &http.Transport{
			Proxy:               http.ProxyFromEnvironment,
			DialContext:         (&net.Dialer{Timeout: 5 * time.Second, KeepAlive: 30 * time.Second, LocalAddr: la}).DialContext,
			TLSHandshakeTimeout: 5 * time.Second,
			DisableCompression:  true, // a stream is read as it comes
		}
		hc := &http.Client{Transport: tr}
		p.clients = append(p.clients, hc)
		p.wsDial = append(p.wsDial, &websocket.DialOptions{HTTPClient: hc, Subprotocols: []string{gqlSubprotocol}})
	}
	return p, nil
}

// src is the source address of viewer i.
func (p *publicRun) src(i int) int {
	if len(p.clients) == 1 {
		return 0
	}
	return i / p.lg.cfg.perAddress
}

// runPublic is the whole -public session.
func (lg *loadgen) runPublic(ctx context.Context) error {
	cfg := lg.cfg
	if lim, err := raiseFileLimit(); err != nil {
		lg.logf("public: could not raise the open files limit (now %d): %v", lim, err)
	} else if lim < uint64(cfg.viewers)+64 {
		lg.logf("public: open files limit %d is too low for %d viewers", lim, cfg.viewers)
	}
	if _, err := lg.c.preflight(ctx); err != nil {
		return err
	}
	p, err := newPublicRun(lg)
	if err != nil {
		return err
	}
	res := publicResult{Mode: "public", Tenant: cfg.tenant, Viewers: cfg.viewers, Addresses: p.addrs,
		SubBatch: cfg.subBatch, TargetRate: cfg.mutationRate}
	if p.addrs > 0 {
		res.PerAddress = cfg.perAddress
	}
	for i := range cfg.viewers {
		if isWS(i, cfg.wsShare) {
			res.WSViewers++
		}
	}
	res.SSEViewers = cfg.viewers - res.WSViewers
	if err := p.prepare(ctx); err != nil {
		return err
	}
	defer p.resolve()

	rss := func(what string) *int64 {
		if cfg.serverPID <= 0 {
			return nil
		}
		kib, err := readVmRSS(cfg.serverPID)
		if err != nil {
			lg.logf("public: -server-pid: %v (%s)", err, what)
			return nil
		}
		return &kib
	}
	if res.ServerRSSBeforeKiB = rss("before the viewers"); cfg.serverPID > 0 && res.ServerRSSBeforeKiB == nil {
		return fmt.Errorf("-server-pid %d: cannot read its memory", cfg.serverPID)
	}

	lg.logf("public: opening %d viewers of %s (%d SSE, %d WebSocket) from %d source addresses, %d at a time",
		cfg.viewers, cfg.tenant, res.SSEViewers, res.WSViewers, max(p.addrs, 1), cfg.subBatch)
	res.RampUpSeconds = p.rampUp(ctx).Seconds()
	if ctx.Err() == nil {
		lg.logf("public: ramp-up took %.3fs; idling %s", res.RampUpSeconds, fanoutSettle)
		sleep(ctx, fanoutSettle)
	}
	if ctx.Err() != nil {
		p.closeAll()
		return ctx.Err()
	}

	var failures notes
	var live []*viewer
	for _, v := range p.viewers {
		if err := v.failure(); err != nil {
			failures.add(err.Error())
			continue
		}
		live = append(live, v)
	}
	res.Open, res.Failed, res.Failures = len(live), cfg.viewers-len(live), failures.list
	for _, msg := range failures.list {
		lg.logf("public: viewer failed: %s", msg)
	}
	res.ServerRSSViewersKiB = rss("with the viewers")
	if res.ServerRSSBeforeKiB != nil && res.ServerRSSViewersKiB != nil && len(live) > 0 {
		per := float64(*res.ServerRSSViewersKiB-*res.ServerRSSBeforeKiB) * 1024 / float64(len(live))
		res.RSSPerViewerBytes = &per
	}
	if len(live) == 0 {
		p.closeAll()
		lg.printPublic(res)
		return fmt.Errorf("none of the %d viewers opened", cfg.viewers)
	}

	lg.logf("public: %d viewers open (%d failed); changing the status %g times/s, %s", len(live), res.Failed, cfg.mutationRate, cfg.describe())
	changes, final, writes, window := p.mutate(ctx, live)
	if ctx.Err() == nil {
		p.drain(ctx, live, final)
	}
	res.ServerRSSAfterKiB = rss("after the changes")
	p.closeAll()
	if ctx.Err() != nil {
		return ctx.Err()
	}

	res.Seconds = window.Seconds()
	res.Changes, res.ChangeErrors = len(changes), writes.errors
	if window > 0 {
		res.ChangeRate = float64(len(changes)) / window.Seconds()
	}
	w := summarize("public", 0, writes, window)
	res.WriteP50, res.WriteP99 = w.P50, w.P99
	t := tallyPublic(live, changes, final)
	res.LatestExpected, res.LatestReached = len(live), t.reached
	res.States, res.Skipped, res.Repeated, res.OutOfOrder = t.states, t.skipped, t.repeated, t.outOfOrder
	res.Unmatched, res.Unmarked, res.BadMessages = t.unmatched, t.unmarked, t.bad
	res.Dropped, res.Drops, res.PingsAnswered = t.dropped, t.drops, t.pings
	res.SSEStateBytes, res.WSStateBytes = t.sseSize, t.wsSize
	res.LatencyP50 = usRound(percentile(t.all, 50))
	res.LatencyP95 = usRound(percentile(t.all, 95))
	res.LatencyP99 = usRound(percentile(t.all, 99))
	res.LatencyMax = usRound(percentile(t.all, 100))
	res.AnswerP50, res.AnswerP99 = usRound(percentile(t.answer, 50)), usRound(percentile(t.answer, 99))
	res.SSELatencyP50, res.SSELatencyP99 = usRound(percentile(t.sse, 50)), usRound(percentile(t.sse, 99))
	res.WSLatencyP50, res.WSLatencyP99 = usRound(percentile(t.ws, 50)), usRound(percentile(t.ws, 99))
	for _, msg := range t.drops {
		lg.logf("public: viewer dropped: %s", msg)
	}
	for _, msg := range t.badNotes {
		lg.logf("public: bad message: %s", msg)
	}
	lg.printPublic(res)
	return nil
}

// prepare publishes the tenant when it is not yet (a tenant already
// published keeps its allowed origins), creates the incident the changes
// rename, and checks that the public status shows it.
func (p *publicRun) prepare(ctx context.Context) error {
	c, tenant := p.lg.c, p.lg.cfg.tenant
	status, body, err := c.do(ctx, request{method: http.MethodGet, path: p.statusP})
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: %w", p.statusP, err)
	case status == http.StatusNotFound:
		p.lg.logf("public: publishing %s (PUT /v1/status/publication)", tenant)
		status, body, err = c.do(ctx, request{method: http.MethodPut, path: "/v1/status/publication", body: []byte(`{"public":true}`)})
		switch {
		case err != nil:
			return fmt.Errorf("publish: %w", err)
		case status == http.StatusForbidden:
			return fmt.Errorf("publish: the key lacks components:write (HTTP 403); publish %s beforehand or use another key", tenant)
		case !is2xx(status):
			return fmt.Errorf("publish: HTTP %d: %s", status, preview(body))
		}
	case !is2xx(status):
		return fmt.Errorf("GET %s: HTTP %d: %s", p.statusP, status, preview(body))
	}

	inc := map[string]any{"title": string(p.marker) + "0", "severity": "low", "status": "investigating",
		"description": "Renamed by loadgen -public on every change, to time how fast public viewers see it; resolved at the end of the run.",
		"occurredAt":  time.Now().UTC().Format(time.RFC3339), "service": "loadgen", "tags": []string{}}
	status, body, err = c.do(ctx, request{method: http.MethodPost, path: "/v1/incidents", body: mustJSON(inc)})
	var created struct {
		ID string `json:"id"`
	}
	switch {
	case err != nil:
		return fmt.Errorf("create the incident: %w", err)
	case !is2xx(status) || json.Unmarshal(body, &created) != nil || created.ID == "":
		return fmt.Errorf("create the incident: HTTP %d: %s", status, preview(body))
	}
	p.incident = created.ID

	status, body, err = c.do(ctx, request{method: http.MethodGet, path: p.statusP})
	switch {
	case err != nil:
		return fmt.Errorf("GET %s: %w", p.statusP, err)
	case status == http.StatusNotFound:
		return fmt.Errorf("%s is not published: is -tenant the key's tenant?", tenant)
	case !is2xx(status):
		return fmt.Errorf("GET %s: HTTP %d: %s", p.statusP, status, preview(body))
	case changeNumber(body, p.marker) != 0:
		return fmt.Errorf("the public status of %s does not show incident %s among its open incidents: "+
			"is -tenant the key's tenant, or are 100 newer incidents open?", tenant, p.incident)
	}
	return nil
}

// resolve ends the run's incident, so that runs do not pile up open
// incidents on the status page.
func (p *publicRun) resolve() {
	if p.incident == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), p.lg.cfg.timeout)
	defer cancel()
	status, body, err := p.lg.c.do(ctx, request{method: http.MethodPatch, path: "/v1/incidents/" + url.PathEscape(p.incident),
		body: []byte(`{"status":"resolved"}`)})
	if err == nil && !is2xx(status) {
		err = fmt.Errorf("HTTP %d: %s", status, preview(body))
	}
	if err != nil {
		p.lg.logf("public: could not resolve incident %s: %v", p.incident, err)
	}
}

// rampUp opens every viewer, -sub-batch at a time, and returns once each
// has read its first state or has failed.
func (p *publicRun) rampUp(ctx context.Context) time.Duration {
	for i := range p.viewers {
		v := &viewer{ws: isWS(i, p.lg.cfg.wsShare), src: p.src(i)}
		v.last.Store(-1)
		p.viewers[i] = v
	}
	return openAll(ctx, len(p.viewers), p.lg.cfg.subBatch, &p.goers,
		func(ctx context.Context, i int) error {
			v := p.viewers[i]
			connect := p.connectSSE
			if v.ws {
				connect = p.connectWS
			}
			err := connect(ctx, v)
			if err != nil {
				if v.conn != nil {
					v.conn.CloseNow()
					v.conn = nil
				}
				if v.stop != nil {
					v.stop()
					v.stop = nil
				}
			}
			return err
		},
		func(i int, err error) {
			v := p.viewers[i]
			if err != nil {
				v.fail(err)
				return
			}
			p.read(v)
		})
}

// connectSSE opens the stream and reads its first state, within -timeout.
func (p *publicRun) connectSSE(ctx context.Context, v *viewer) error {
	setup, cancel := context.WithTimeout(ctx, p.lg.cfg.timeout)
	defer cancel()
	rctx, stop := context.WithCancel(context.Background()) // the stream's life, ended by closeAll
	v.stop = stop
	detach := context.AfterFunc(setup, stop)
	err := func() error {
		req, err := http.NewRequestWithContext(rctx, http.MethodGet, p.sseURL, nil)
		if err != nil {
			return err
		}
		req.Header.Set("Accept", "text/event-stream")
		resp, err := p.clients[v.src].Do(req)
		if err != nil {
			return err
		}
		if resp.StatusCode != http.StatusOK {
			b, _ := io.ReadAll(io.LimitReader(resp.Body, errBodyPreview))
			resp.Body.Close()
			return fmt.Errorf("HTTP %d: %s", resp.StatusCode, preview(b))
		}
		v.sse = bufio.NewReaderSize(resp.Body, sseBuffer)
		data, err := v.nextSSE()
		if err != nil {
			return fmt.Errorf("waiting for the first state: %w", err)
		}
		v.record(data, time.Now(), p.marker)
		return nil
	}()
	if !detach() && err != nil && setup.Err() != nil {
		err = fmt.Errorf("%w (-timeout %s or the run's end)", err, p.lg.cfg.timeout)
	}
	return err
}

// connectWS opens the WebSocket, subscribes and reads the first state,
// within -timeout.
func (p *publicRun) connectWS(ctx context.Context, v *viewer) error {
	ctx, cancel := context.WithTimeout(ctx, p.lg.cfg.timeout)
	defer cancel()
	c, resp, err := websocket.Dial(ctx, p.wsURL, p.wsDial[v.src])
	if err != nil {
		if resp != nil && resp.Body != nil {
			if b, _ := io.ReadAll(resp.Body); len(b) > 0 {
				err = fmt.Errorf("%w: %s", err, preview(b))
			}
		}
		return err
	}
	v.conn = c
	if c.Subprotocol() != gqlSubprotocol {
		return fmt.Errorf("server did not accept subprotocol %s", gqlSubprotocol)
	}
	c.SetReadLimit(fanoutReadMax)
	if err := c.Write(ctx, websocket.MessageText, msgPublicInit); err != nil {
		return fmt.Errorf("connection_init: %w", err)
	}
	for acked := false; !acked; {
		_, data, err := c.Read(ctx)
		if err != nil {
			return fmt.Errorf("waiting for connection_ack: %w", err)
		}
		switch typ := messageType(data); typ {
		case "connection_ack":
			acked = true
		case "ping":
			if err := c.Write(ctx, websocket.MessageText, msgPong); err != nil {
				return fmt.Errorf("pong: %w", err)
			}
			v.pings++
		case "pong":
		default:
			return fmt.Errorf("waiting for connection_ack: got %s", preview(data))
		}
	}
	if err := c.Write(ctx, websocket.MessageText, p.subMsg); err != nil {
		return fmt.Errorf("subscribe: %w", err)
	}
	data, err := v.nextWS(ctx)
	if err != nil {
		return fmt.Errorf("waiting for the first state: %w", err)
	}
	v.record(data, time.Now(), p.marker)
	return nil
}

// read consumes a viewer's states until its connection ends.
func (p *publicRun) read(v *viewer) {
	v.states = slices.Grow(v.states, p.capHint)
	v.recv = slices.Grow(v.recv, p.capHint)
	ctx := context.Background() // closeAll ends us
	for {
		var data []byte
		var err error
		if v.ws {
			data, err = v.nextWS(ctx)
		} else {
			data, err = v.nextSSE()
		}
		recv := time.Now()
		if err != nil {
			if !v.closing.Load() {
				v.fail(fmt.Errorf("connection lost: %w", err))
			}
			return
		}
		v.record(data, recv, p.marker)
	}
}

// record keeps a state read at recv.
func (v *viewer) record(data []byte, recv time.Time, marker []byte) {
	v.size = len(data)
	k := changeNumber(data, marker)
	if k < 0 {
		v.unmarked++
		return
	}
	v.states = append(v.states, int32(k))
	v.recv = append(v.recv, recv.UnixNano())
	v.received.Add(1)
	v.last.Store(k)
}

// changeNumber finds marker followed by digits in a state and returns the
// number, or -1 when the state does not hold it.
func changeNumber(data, marker []byte) int64 {
	i := bytes.Index(data, marker)
	if i < 0 {
		return -1
	}
	rest := data[i+len(marker):]
	n, digits := int64(0), 0
	for ; digits < len(rest) && digits < 9 && rest[digits] >= '0' && rest[digits] <= '9'; digits++ {
		n = n*10 + int64(rest[digits]-'0')
	}
	if digits == 0 {
		return -1
	}
	return n
}

// SSE events loadgen tells apart.
const (
	sseOther = iota
	sseStatus
	sseEnd
)

// nextSSE reads up to the end of the stream's next status event and returns
// its data (valid until the next call). An end event is an error.
func (v *viewer) nextSSE() ([]byte, error) {
	kind, hasData := sseOther, false
	v.data = v.data[:0]
	for {
		line, err := v.readLine()
		if err != nil {
			return nil, err
		}
		if len(line) == 0 { // the event is complete
			switch {
			case !hasData: // the retry: preamble
			case kind == sseStatus:
				return v.data, nil
			case kind == sseEnd:
				return nil, fmt.Errorf("the server ended the stream: %s", preview(v.data))
			default:
				v.noteBad(fmt.Errorf("unexpected event: %s", preview(v.data)))
			}
			kind, hasData, v.data = sseOther, false, v.data[:0]
			continue
		}
		field, value, _ := bytes.Cut(line, []byte(":"))
		value = bytes.TrimPrefix(value, []byte(" "))
		switch string(field) {
		case "data":
			if hasData {
				v.data = append(v.data, '\n')
			}
			v.data, hasData = append(v.data, value...), true
		case "event":
			switch string(value) {
			case "status":
				kind = sseStatus
			case "end":
				kind = sseEnd
			default:
				kind = sseOther
			}
		}
	}
}

// readLine returns the stream's next line without its end (valid until the
// next read); a line longer than the buffer is gathered in v.line.
func (v *viewer) readLine() ([]byte, error) {
	line, err := v.sse.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		v.line = append(v.line[:0], line...)
		for errors.Is(err, bufio.ErrBufferFull) {
			line, err = v.sse.ReadSlice('\n')
			v.line = append(v.line, line...)
		}
		line = v.line
	}
	if err != nil {
		return nil, err
	}
	line = line[:len(line)-1]
	return bytes.TrimSuffix(line, []byte("\r")), nil
}

// nextWS reads up to the next `next` message of the subscription and
// returns it whole, answering pings on the way.
func (v *viewer) nextWS(ctx context.Context) ([]byte, error) {
	for {
		_, data, err := v.conn.Read(ctx)
		if err != nil {
			return nil, err
		}
		if bytes.HasPrefix(data, wsNextPrefix) { // the hot path: the server's own framing
			if bytes.Contains(data, []byte(`"errors":[`)) {
				v.noteBad(fmt.Errorf("next carries GraphQL errors: %s", preview(data)))
				continue
			}
			return data, nil
		}
		switch typ := messageType(data); typ {
		case "next":
			return data, nil
		case "ping":
			v.pings++
			wctx, cancel := context.WithTimeout(ctx, fanoutWrite)
			err := v.conn.Write(wctx, websocket.MessageText, msgPong)
			cancel()
			if err != nil {
				return nil, fmt.Errorf("pong: %w", err)
			}
		case "pong":
		case "error":
			return nil, fmt.Errorf("subscription error: %s", preview(data))
		case "complete":
			return nil, errors.New("the server completed the subscription")
		default:
			v.noteBad(fmt.Errorf("unexpected message %s", preview(data)))
		}
	}
}

// messageType is the type of a graphql-transport-ws message, "" when it
// has none.
func messageType(data []byte) string {
	var m struct {
		Type string `json:"type"`
	}
	_ = json.Unmarshal(data, &m) // a payload of another shape still leaves the type
	return m.Type
}

// mutate makes -mutation-rate changes per second for -duration (or
// -requests of them), one at a time so that the states have one order: a
// beat that comes while a change is still in flight is dropped. It returns
// the changes made by number, the number of the latest, and the writes'
// latencies.
func (p *publicRun) mutate(ctx context.Context, live []*viewer) (map[int64]change, int64, stats, time.Duration) {
	lg := p.lg
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
				for _, v := range live {
					got += v.received.Load()
				}
				lg.logf("public: %d states received so far", got)
			}
		}
	}()
	path := "/v1/incidents/" + url.PathEscape(p.incident)
	changes := map[int64]change{}
	var final int64
	rows, window := lg.attack(ctx, phase{name: "public", jobs: lg.cfg.requests, duration: lg.cfg.duration, keep: -1,
		workers: 1, every: max(time.Duration(float64(time.Second)/lg.cfg.mutationRate), time.Microsecond),
		gen: func(_ *rand.Rand, job int) request {
			title := string(p.marker) + strconv.Itoa(job+1)
			return request{method: http.MethodPatch, path: path, body: mustJSON(map[string]string{"title": title})}
		},
		judge: func(job int, res *vegeta.Result) (int, string, string) {
			_, kind, detail := judgeStatus(job, res)
			if kind != "" {
				return 0, kind, detail
			}
			var inc struct {
				UpdatedAt string `json:"updatedAt"`
			}
			at, err := time.Time{}, json.Unmarshal(res.Body, &inc)
			if err == nil {
				at, err = time.Parse(time.RFC3339Nano, inc.UpdatedAt)
			}
			if err != nil {
				return 0, "transport", "changed incident without updatedAt: " + preview(res.Body)
			}
			k := int64(job + 1)
			changes[k] = change{committed: at, answered: res.Timestamp.Add(res.Latency)}
			final = max(final, k)
			return 0, "", ""
		}})
	if want := lg.cfg.mutationRate * window.Seconds(); ctx.Err() == nil && lg.cfg.requests == 0 && float64(rows[0].requests) < 0.95*want {
		lg.logf("public: sent only %d of %.0f changes: a change took longer than the interval", rows[0].requests, want)
	}
	return changes, final, rows[0], window
}

// drain waits until every healthy viewer has the latest state, or
// fanoutDrain has passed.
func (p *publicRun) drain(ctx context.Context, live []*viewer, final int64) {
	deadline := time.Now().Add(fanoutDrain)
	for ctx.Err() == nil && time.Now().Before(deadline) {
		done := true
		for _, v := range live {
			if v.last.Load() != final && v.failure() == nil {
				done = false
				break
			}
		}
		if done {
			return
		}
		sleep(ctx, 20*time.Millisecond)
	}
	if ctx.Err() == nil {
		p.lg.logf("public: some viewers still lack the latest state %s after the last change", fanoutDrain)
	}
}

// closeAll ends every viewer (a WebSocket completes its subscription and
// closes with 1000; a stream's request is cancelled) and waits for their
// goroutines. It runs after rampUp has returned.
func (p *publicRun) closeAll() {
	var wg sync.WaitGroup
	for _, v := range p.viewers {
		if v == nil {
			continue
		}
		v.closing.Store(true)
		switch {
		case v.conn != nil:
			wg.Go(func() {
				ctx, cancel := context.WithTimeout(context.Background(), fanoutWrite)
				_ = v.conn.Write(ctx, websocket.MessageText, msgComplete)
				cancel()
				_ = v.conn.Close(websocket.StatusNormalClosure, "loadgen done")
			})
		case v.stop != nil:
			v.stop()
		}
	}
	wg.Wait()
	p.goers.Wait()
	for _, hc := range p.clients {
		hc.CloseIdleConnections()
	}
}

// publicTally is what the viewers received.
type publicTally struct {
	reached                                                         int
	states, skipped, repeated, outOfOrder, unmatched, unmarked, bad int64
	pings                                                           int64
	dropped                                                         int
	drops, badNotes                                                 []string
	sseSize, wsSize                                                 int
	all, sse, ws                                                    []float32 // ms after the commit, sorted
	answer                                                          []float32 // ms after the write's answer, sorted
}

// tallyPublic matches every state received with the change it shows. A
// viewer must reach the latest state (final); an intermediate state it
// never saw was superseded before it could be sent, which is by design, and
// counts as skipped, not missing. It must run after the viewers' goroutines
// ended, and frees their samples.
func tallyPublic(live []*viewer, changes map[int64]change, final int64) publicTally {
	var t publicTally
	var drops, badNotes notes
	for _, v := range live {
		prev, newest, distinct := int32(-1), int32(-1), int64(0)
		for i, k := range v.states {
			switch {
			case k == prev:
				t.repeated++
			case k < newest:
				t.outOfOrder++
			}
			prev = k
			if k == 0 {
				continue // the state before the first change
			}
			ch, ok := changes[int64(k)]
			if !ok {
				t.unmatched++
				continue
			}
			if k > newest {
				newest = k
				distinct++
			}
			lat := float32(float64(v.recv[i]-ch.committed.UnixNano()) / float64(time.Millisecond))
			t.all = append(t.all, lat)
			t.answer = append(t.answer, float32(float64(v.recv[i]-ch.answered.UnixNano())/float64(time.Millisecond)))
			if v.ws {
				t.ws = append(t.ws, lat)
			} else {
				t.sse = append(t.sse, lat)
			}
		}
		if n := len(v.states); n > 0 && int64(v.states[n-1]) == final {
			t.reached++
		}
		t.states += distinct
		t.skipped += int64(len(changes)) - distinct
		t.unmarked += v.unmarked
		if v.ws {
			t.wsSize = max(t.wsSize, v.size)
		} else {
			t.sseSize = max(t.sseSize, v.size)
		}
		if err := v.failure(); err != nil {
			t.dropped++
			drops.add(err.Error())
		}
		t.bad += v.bad
		if v.badErr != nil {
			badNotes.add(v.badErr.Error())
		}
		t.pings += v.pings
		v.states, v.recv = nil, nil
	}
	t.drops, t.badNotes = drops.list, badNotes.list
	slices.Sort(t.all)
	slices.Sort(t.answer)
	slices.Sort(t.sse)
	slices.Sort(t.ws)
	return t
}

// printPublic writes the report: a few labelled lines, or one JSON object.
func (lg *loadgen) printPublic(r publicResult) {
	w := lg.out.w
	if lg.out.json {
		fmt.Fprintf(w, "%s\n", mustJSON(r))
		return
	}
	f1 := func(v float64) string { return strconv.FormatFloat(v, 'f', 1, 64) }
	f2 := func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) }
	from := "one source address"
	if r.Addresses > 0 {
		from = fmt.Sprintf("%d source addresses (up to %d each)", r.Addresses, r.PerAddress)
	}
	fmt.Fprintf(w, "viewers:      %d of %d open (%d SSE, %d WebSocket) from %s, %d failed; ramp-up %.3fs (%d at a time)\n",
		r.Open, r.Viewers, r.SSEViewers, r.WSViewers, from, r.Failed, r.RampUpSeconds, r.SubBatch)
	if r.ServerRSSBeforeKiB != nil {
		kib := func(v *int64) string {
			if v == nil {
				return "?"
			}
			return strconv.FormatInt(*v, 10)
		}
		per := "?"
		if r.RSSPerViewerBytes != nil {
			per = strconv.FormatFloat(*r.RSSPerViewerBytes, 'f', 0, 64)
		}
		fmt.Fprintf(w, "server RSS:   %s KiB before, %s with the viewers, %s after the changes; %s bytes per viewer\n",
			kib(r.ServerRSSBeforeKiB), kib(r.ServerRSSViewersKiB), kib(r.ServerRSSAfterKiB), per)
	}
	if r.Open == 0 {
		return
	}
	fmt.Fprintf(w, "changes:      %d made, %d failed in %.1fs (%s/s, target %s/s); PATCH p50 %sms p99 %sms\n",
		r.Changes, r.ChangeErrors, r.Seconds, f1(r.ChangeRate), f1(r.TargetRate), f2(r.WriteP50), f2(r.WriteP99))
	fmt.Fprintf(w, "state size:   SSE data %d bytes, GraphQL next %d bytes\n", r.SSEStateBytes, r.WSStateBytes)
	fmt.Fprintf(w, "deliveries:   %d of %d viewers reached the latest state; %d states delivered, %d skipped (superseded, by design); "+
		"%d repeated, %d out of order, %d unmatched, %d without the incident, %d bad messages, %d viewers dropped\n",
		r.LatestReached, r.LatestExpected, r.States, r.Skipped, r.Repeated, r.OutOfOrder, r.Unmatched, r.Unmarked, r.BadMessages, r.Dropped)
	fmt.Fprintf(w, "latency (ms): p50 %s  p95 %s  p99 %s  max %s  (receipt - the change's updatedAt, over all states received); "+
		"SSE p50 %s p99 %s, WebSocket p50 %s p99 %s; after the write's answer p50 %s p99 %s\n",
		f2(r.LatencyP50), f2(r.LatencyP95), f2(r.LatencyP99), f2(r.LatencyMax),
		f2(r.SSELatencyP50), f2(r.SSELatencyP99), f2(r.WSLatencyP50), f2(r.WSLatencyP99), f2(r.AnswerP50), f2(r.AnswerP99))
}
