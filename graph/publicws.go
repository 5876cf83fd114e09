package graph

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/executor"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/coder/websocket"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/formatter"
	"github.com/vektah/gqlparser/v2/gqlerror"
	"github.com/vektah/gqlparser/v2/parser"

	"github.com/incidentd/incidentd/auth"
	"github.com/incidentd/incidentd/graph/generated"
	"github.com/incidentd/incidentd/live"
	"github.com/incidentd/incidentd/model"
)

// The public GraphQL door: /graphql/public speaks graphql-transport-ws
// without credentials and serves one subscription, publicStatus. A viewer
// holds no GraphQL state of its own: each distinct document (with its
// variables and tenant) is one rendering of live.Public, executed once per
// change for all its viewers, and the same payload bytes are framed with
// each viewer's subscription id.

// publicQueryMax bounds a public document; publicAnswerMax a rendering.
const (
	publicQueryMax  = 8 << 10
	publicAnswerMax = 1 << 20
)

// NewPublicHandler serves /graphql/public. cfg needs Status, Public,
// Version and Limiter (optional); KeepAlive, ComplexityLimit, DepthLimit
// and MaxSubscriptionsPerConn apply as on /graphql.
func NewPublicHandler(cfg Config) http.Handler {
	if cfg.ComplexityLimit <= 0 {
		cfg.ComplexityLimit = 5000
	}
	if cfg.DepthLimit <= 0 {
		cfg.DepthLimit = 10
	}
	if cfg.KeepAlive <= 0 {
		cfg.KeepAlive = 15 * time.Second
	}
	if cfg.MaxSubscriptionsPerConn <= 0 {
		cfg.MaxSubscriptionsPerConn = 20
	}
	res := &Resolver{StatusService: cfg.Status, Public: cfg.Public, Version: cfg.Version}
	exec := executor.New(costedSchema{generated.NewExecutableSchema(generated.Config{Resolvers: res})})
	exec.SetQueryCache(lru.New[*ast.QueryDocument](1000))
	exec.Use(depthLimit(cfg.DepthLimit))
	exec.Use(extension.FixedComplexityLimit(cfg.ComplexityLimit))
	exec.SetErrorPresenter(presentError)
	exec.SetRecoverFunc(recoverPanic)
	return &publicHandler{cfg: cfg, exec: exec, conns: map[string]int{}}
}

type publicHandler struct {
	cfg  Config
	exec *executor.Executor

	mu    sync.Mutex
	conns map[string]int // open connections by client address
}

// charge spends one of ip's requests; false (with why) when it may not.
func (h *publicHandler) charge(ctx context.Context, ip string) error {
	if h.cfg.Limiter == nil {
		return nil
	}
	u, err := h.cfg.Limiter.Charge(ctx, "ip:"+ip, auth.DefaultTier, 1)
	if err != nil {
		return model.Internal(err, "rate limiter")
	}
	if u.Reached {
		return auth.RateLimited(u)
	}
	return nil
}

// publicMessage is a graphql-transport-ws message.
type publicMessage struct {
	ID      string          `json:"id,omitempty"`
	Type    string          `json:"type"`
	Payload json.RawMessage `json:"payload,omitempty"`
}

func (h *publicHandler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	ip := auth.ClientIP(r)
	if err := h.charge(r.Context(), ip); err != nil {
		status := http.StatusTooManyRequests
		if model.ErrorCode(err) == model.CodeInternal {
			status = http.StatusInternalServerError
		}
		writeStatus(w, r, status, err)
		return
	}
	// An address holds at most as many connections as viewers.
	h.mu.Lock()
	full := h.conns[ip] >= h.cfg.Public.MaxPerIP()
	if !full {
		h.conns[ip]++
	}
	h.mu.Unlock()
	if full {
		writeStatus(w, r, http.StatusTooManyRequests, live.ErrTooManyFromIP)
		return
	}
	defer func() {
		h.mu.Lock()
		if h.conns[ip]--; h.conns[ip] <= 0 {
			delete(h.conns, ip)
		}
		h.mu.Unlock()
	}()
	// Any page may connect; each subscription checks its tenant's allowed
	// origins itself (a browser always sends Origin on a WebSocket).
	c, err := websocket.Accept(w, r, &websocket.AcceptOptions{Subprotocols: []string{"graphql-transport-ws"}, InsecureSkipVerify: true})
	if err != nil {
		return // Accept answered the failed handshake
	}
	if c.Subprotocol() != "graphql-transport-ws" {
		c.Close(4406, "subprotocol graphql-transport-ws is required")
		return
	}
	c.SetReadLimit(publicQueryMax + 4<<10)
	conn := &publicConn{h: h, c: c, ip: ip, origin: r.Header.Get("Origin"), subs: map[string]*live.Viewer{}}
	conn.serve(r.Context())
}

type publicConn struct {
	h      *publicHandler
	c      *websocket.Conn
	ip     string
	origin string

	writeMu sync.Mutex
	mu      sync.Mutex
	subs    map[string]*live.Viewer
	wg      sync.WaitGroup
}

func (pc *publicConn) write(ctx context.Context, b []byte) error {
	pc.writeMu.Lock()
	defer pc.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	return pc.c.Write(ctx, websocket.MessageText, b)
}

// writeParts writes one message from parts, without copying them into
// one buffer (the shared rendering is written as it is).
func (pc *publicConn) writeParts(ctx context.Context, parts ...[]byte) error {
	pc.writeMu.Lock()
	defer pc.writeMu.Unlock()
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	wr, err := pc.c.Writer(ctx, websocket.MessageText)
	if err != nil {
		return err
	}
	for _, p := range parts {
		if _, err := wr.Write(p); err != nil {
			return err
		}
	}
	return wr.Close()
}

func (pc *publicConn) send(ctx context.Context, m publicMessage) error {
	b, err := json.Marshal(m)
	if err != nil {
		return err
	}
	return pc.write(ctx, b)
}

// fail ends subscription id with errors (graphql-transport-ws "error").
func (pc *publicConn) fail(ctx context.Context, id string, errs gqlerror.List) {
	b, _ := json.Marshal(errs)
	_ = pc.send(ctx, publicMessage{ID: id, Type: "error", Payload: b})
}

func (pc *publicConn) serve(ctx context.Context) {
	ctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		pc.mu.Lock()
		for _, v := range pc.subs {
			v.Close()
		}
		pc.mu.Unlock()
		pc.wg.Wait()
		pc.c.CloseNow()
	}()
	// connection_init first, within the keep-alive interval.
	initCtx, initCancel := context.WithTimeout(ctx, 10*time.Second)
	var m publicMessage
	err := readMessage(initCtx, pc.c, &m)
	initCancel()
	if err != nil || m.Type != "connection_init" {
		pc.c.Close(4400, "connection_init expected")
		return
	}
	if pc.send(ctx, publicMessage{Type: "connection_ack"}) != nil {
		return
	}
	pc.wg.Add(1)
	go func() {
		defer pc.wg.Done()
		tick := time.NewTicker(pc.h.cfg.KeepAlive)
		defer tick.Stop()
		idle := 0
		for {
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
				// A connection that holds no subscription for two
				// intervals holds a descriptor for nothing.
				pc.mu.Lock()
				if len(pc.subs) == 0 {
					idle++
				} else {
					idle = 0
				}
				pc.mu.Unlock()
				if idle >= 2 {
					pc.c.Close(4408, "no subscription")
					cancel()
					return
				}
				if pc.send(ctx, publicMessage{Type: "ping"}) != nil {
					cancel()
					return
				}
			}
		}
	}()
	for {
		var m publicMessage
		if err := readMessage(ctx, pc.c, &m); err != nil {
			var ce websocket.CloseError
			if errors.As(err, &ce) || ctx.Err() != nil {
				return
			}
			pc.c.Close(4400, "invalid message")
			return
		}
		switch m.Type {
		case "ping":
			if pc.send(ctx, publicMessage{Type: "pong"}) != nil {
				return
			}
		case "pong":
		case "subscribe":
			if m.ID == "" || len(m.ID) > 128 {
				pc.c.Close(4400, "a subscription needs an id")
				return
			}
			pc.mu.Lock()
			_, dup := pc.subs[m.ID]
			pc.mu.Unlock()
			if dup {
				pc.c.Close(4409, "Subscriber for "+m.ID+" already exists")
				return
			}
			pc.subscribe(ctx, m.ID, m.Payload)
		case "complete":
			pc.mu.Lock()
			if v := pc.subs[m.ID]; v != nil {
				v.Close()
				delete(pc.subs, m.ID)
			}
			pc.mu.Unlock()
		default:
			pc.c.Close(4400, "unexpected message "+m.Type)
			return
		}
	}
}

func readMessage(ctx context.Context, c *websocket.Conn, m *publicMessage) error {
	typ, b, err := c.Read(ctx)
	if err != nil {
		return err
	}
	if typ != websocket.MessageText {
		return errors.New("binary message")
	}
	return json.Unmarshal(b, m)
}

// subscribe validates a subscribe message's document and joins the viewers
// of its rendering.
func (pc *publicConn) subscribe(ctx context.Context, id string, payload json.RawMessage) {
	var params graphql.RawParams
	if err := json.Unmarshal(payload, &params); err != nil || params.Query == "" {
		pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, model.Invalid("the payload needs a query"))})
		return
	}
	if len(params.Query) > publicQueryMax {
		pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, model.Invalid("the document is too long"))})
		return
	}
	// Each subscription costs the address one request, as a REST read does.
	if err := pc.h.charge(ctx, pc.ip); err != nil {
		pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, err)})
		if model.ErrorCode(err) == model.CodeRateLimited {
			pc.c.Close(4429, "rate limit exceeded")
		}
		return
	}
	pc.mu.Lock()
	full := len(pc.subs) >= pc.h.cfg.MaxSubscriptionsPerConn
	pc.mu.Unlock()
	if full {
		pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, &model.Error{Code: model.CodeRateLimited,
			Message: "this connection holds as many subscriptions as it may"})})
		return
	}
	tenant, query, errs := pc.h.publicQuery(ctx, &params)
	if errs != nil {
		pc.fail(ctx, id, errs)
		return
	}
	if pc.origin != "" {
		pub, err := pc.h.cfg.Status.Publication(ctx, tenant)
		if err == nil && !pub.Allows(pc.origin) {
			err = model.Forbidden("this tenant does not allow pages of origin " + pc.origin)
		}
		if err != nil {
			pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, err)})
			return
		}
	}
	vars, _ := json.Marshal(params.Variables) // map keys sorted: one key per meaning
	key := "graphql:" + params.OperationName + "\x00" + string(vars) + "\x00" + query
	// The rendering outlives this connection when others share it: it
	// holds the handler and the document, never the connection.
	h, doc := pc.h, params
	render := func(sum *model.StatusSummary, version string) ([]byte, error) {
		return h.render(tenant, query, &doc, sum, version)
	}
	v, err := pc.h.cfg.Public.Watch(ctx, tenant, pc.ip, key, render, "")
	if err != nil {
		pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, err)})
		return
	}
	pc.mu.Lock()
	pc.subs[id] = v
	pc.mu.Unlock()
	prefix, _ := json.Marshal(id)
	head := append(append([]byte(`{"id":`), prefix...), `,"type":"next","payload":`...)
	pc.wg.Add(1)
	go func() {
		defer pc.wg.Done()
		for {
			b, err := v.Next(ctx)
			if err != nil {
				pc.mu.Lock()
				mine := pc.subs[id] == v
				if mine {
					delete(pc.subs, id)
				}
				pc.mu.Unlock()
				if mine && ctx.Err() == nil && !errors.Is(err, context.Canceled) {
					if errors.Is(err, live.ErrUnpublished) || errors.Is(err, live.ErrShutdown) {
						pc.fail(ctx, id, gqlerror.List{toGQLError(ctx, err)})
					}
				}
				return
			}
			if pc.writeParts(ctx, head, b, closeBrace) != nil {
				return
			}
		}
	}()
}

var closeBrace = []byte("}")

// publicQuery checks that params is a subscription to publicStatus alone,
// and returns its tenant and the same document as a query (what each
// change executes).
func (h *publicHandler) publicQuery(ctx context.Context, params *graphql.RawParams) (string, string, gqlerror.List) {
	now := graphql.Now()
	params.ReadTime = graphql.TraceTiming{Start: now, End: now}
	rc, errs := h.exec.CreateOperationContext(graphql.StartOperationTrace(ctx), params)
	if errs != nil {
		return "", "", errs
	}
	bad := gqlerror.List{toGQLError(ctx, model.Invalid("/graphql/public serves one subscription: subscription { publicStatus(tenant: ...) { ... } }"))}
	op := rc.Operation
	if op == nil || op.Operation != ast.Subscription || len(op.SelectionSet) != 1 {
		return "", "", bad
	}
	field, ok := op.SelectionSet[0].(*ast.Field)
	if !ok || field.Name != "publicStatus" {
		return "", "", bad
	}
	for name := range params.Variables {
		if op.VariableDefinitions.ForName(name) == nil {
			return "", "", gqlerror.List{toGQLError(ctx, model.Invalid("variable $"+name+" is not declared by the operation"))}
		}
	}
	tenant, _ := field.ArgumentMap(rc.Variables)["tenant"].(string)
	if tenant == "" {
		return "", "", bad
	}
	// The query twin, from a fresh parse: the cached document is shared.
	doc, err := parser.ParseQuery(&ast.Source{Input: params.Query})
	if err != nil {
		return "", "", gqlerror.List{gqlerror.Wrap(err)}
	}
	for _, o := range doc.Operations {
		if o.Name == op.Name {
			o.Operation = ast.Query
		}
	}
	var sb strings.Builder
	formatter.NewFormatter(&sb).FormatQueryDocument(doc)
	return tenant, sb.String(), nil
}

// render executes the query twin over a status read once for all viewers.
func (h *publicHandler) render(tenant, query string, params *graphql.RawParams, sum *model.StatusSummary, version string) ([]byte, error) {
	ctx := context.WithValue(context.Background(), publicStatusKey{}, &prefetched{tenant: tenant, version: version, sum: sum})
	ctx = graphql.StartOperationTrace(ctx)
	p := *params
	p.Query = query
	rc, errs := h.exec.CreateOperationContext(ctx, &p)
	var resp *graphql.Response
	if errs != nil {
		resp = h.exec.DispatchError(graphql.WithOperationContext(ctx, rc), errs)
	} else {
		handler, octx := h.exec.DispatchOperation(ctx, rc)
		resp = handler(octx)
	}
	b, err := json.Marshal(resp)
	if err == nil && len(b) > publicAnswerMax {
		return nil, model.Invalid(fmt.Sprintf("the answer would exceed %d bytes: select less", publicAnswerMax))
	}
	return b, err
}
