package node

import (
	"context"
	"crypto/subtle"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/pprof"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/shouldersnet/shoulders/p2p"
	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/catalog"
	pb "github.com/shouldersnet/shoulders/proto"
	"github.com/shouldersnet/shoulders/version"
)

// Info is GET /v1/node.
type Info struct {
	PeerID  string   `json:"peer_id"`
	Addrs   []string `json:"addrs"`
	Network string   `json:"network"`
	Roles   []string `json:"roles"`
	Version string   `json:"version"`
}

// PeersResponse is GET /v1/peers.
type PeersResponse struct {
	Peers []p2p.ConnectedPeer `json:"peers"`
}

// CatalogEntry is one catalog entry as the API shows it.
type CatalogEntry struct {
	Kind         string    `json:"kind"`
	Subject      string    `json:"subject"`
	Announcer    string    `json:"announcer"`
	Seq          uint64    `json:"seq"`
	IssuedAt     time.Time `json:"issued_at"`
	ExpiresAt    time.Time `json:"expires_at"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	ReceivedFrom string    `json:"received_from"`
	Body         any       `json:"body"`
}

// CatalogResponse is GET /v1/catalog.
type CatalogResponse struct {
	Entries []CatalogEntry `json:"entries"`
}

// ConnsResponse is GET /debug/p2p/peers.
type ConnsResponse struct {
	Conns []p2p.Conn `json:"conns"`
}

// TopicsResponse is GET /debug/pubsub/topics.
type TopicsResponse struct {
	Topics []p2p.Topic `json:"topics"`
}

// ErrorResponse is the body of every 4xx and 5xx answer.
type ErrorResponse struct {
	Error string `json:"error"`
}

// Trace stream limits.
const (
	defaultBacklog = 100
	maxBacklog     = 4096
	sseKeepAlive   = 15 * time.Second
)

func (n *Node) handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/node", n.getNode)
	mux.HandleFunc("GET /v1/peers", n.getPeers)
	mux.HandleFunc("GET /v1/catalog", n.getCatalog)
	mux.HandleFunc("GET /debug/p2p/peers", n.getConns)
	mux.HandleFunc("GET /debug/dht/routing-table", n.getRoutingTable)
	mux.HandleFunc("GET /debug/dht/lookup", n.getLookup)
	mux.HandleFunc("GET /debug/pubsub/topics", n.getTopics)
	mux.HandleFunc("GET /debug/pubsub/scores", n.getScores)
	mux.HandleFunc("GET /debug/pubsub/trace", n.getTrace)
	mux.HandleFunc("GET /debug/pubsub/messages/{id}", n.getMessage)
	n.ledgerHandlers(mux)
	n.contentHandlers(mux)
	mux.Handle("GET /metrics", promhttp.HandlerFor(n.reg, promhttp.HandlerOpts{Registry: n.reg}))
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// serveAPI serves the HTTP API on the bound listener until ctx ends. Request contexts derive from ctx, so
// long-lived streams (the trace) end when the node stops.
func (n *Node) serveAPI(ctx context.Context) error {
	srv := &http.Server{
		Handler:           n.handler(),
		BaseContext:       func(_ net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
	}
	errc := make(chan error, 1)
	// Owned by serveAPI: Serve returns once Shutdown below runs or the listener fails.
	go func() { errc <- srv.Serve(n.api) }()
	select {
	case err := <-errc:
		return fmt.Errorf("node: API server: %w", err)
	case <-ctx.Done():
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := srv.Shutdown(shutdown); err != nil {
		srv.Close()
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return fmt.Errorf("node: API server: %w", err)
	}
	return nil
}

// mutating guards a handler that changes something: when the API is reachable beyond loopback, the request
// must carry the node's token ("Authorization: Bearer <token>", the token in <home>/api.token).
func (n *Node) mutating(h http.HandlerFunc) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		if n.token != "" && subtle.ConstantTimeCompare([]byte(r.Header.Get("Authorization")), []byte("Bearer "+n.token)) != 1 {
			writeJSON(w, http.StatusUnauthorized, ErrorResponse{Error: "this API is reachable beyond loopback: give the node's token (Authorization: Bearer <token from " + TokenFile + ">)"})
			return
		}
		h(w, r)
	}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func badRequest(w http.ResponseWriter, format string, args ...any) {
	writeJSON(w, http.StatusBadRequest, ErrorResponse{Error: fmt.Sprintf(format, args...)})
}

// Info returns what GET /v1/node reports.
func (n *Node) Info() Info {
	return Info{PeerID: n.host.ID().String(), Addrs: n.Addrs(), Network: n.cfg.Network, Roles: n.cfg.Roles, Version: version.Version}
}

func (n *Node) getNode(w http.ResponseWriter, _ *http.Request) { writeJSON(w, http.StatusOK, n.Info()) }

func (n *Node) getPeers(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, PeersResponse{Peers: n.net.ConnectedPeers()})
}

func (n *Node) getCatalog(w http.ResponseWriter, r *http.Request) {
	kind := pb.Kind_KIND_UNSPECIFIED
	if name := r.URL.Query().Get("kind"); name != "" {
		k, ok := announce.KindByName(name)
		if !ok {
			names := []string{}
			for _, k := range announce.Kinds() {
				names = append(names, announce.KindName(k))
			}
			badRequest(w, "kind: %q is not a kind of announcement; known kinds: %s", name, strings.Join(names, ", "))
			return
		}
		kind = k
	}
	entries := n.catalog.List(kind)
	resp := CatalogResponse{Entries: make([]CatalogEntry, 0, len(entries))}
	for _, e := range entries {
		resp.Entries = append(resp.Entries, catalogEntryView(e))
	}
	writeJSON(w, http.StatusOK, resp)
}

func catalogEntryView(e catalog.Entry) CatalogEntry {
	return CatalogEntry{
		Kind: announce.KindName(e.Kind), Subject: e.Subject, Announcer: e.Announcer.String(), Seq: e.Seq,
		IssuedAt: e.IssuedAt.UTC(), ExpiresAt: e.ExpiresAt.UTC(), FirstSeen: e.FirstSeen.UTC(), LastSeen: e.LastSeen.UTC(),
		ReceivedFrom: e.ReceivedFrom.String(), Body: announce.View(e.Announcement),
	}
}

func (n *Node) getConns(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, ConnsResponse{Conns: n.net.Conns()})
}

func (n *Node) getRoutingTable(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.net.RoutingTableView())
}

func (n *Node) getLookup(w http.ResponseWriter, r *http.Request) {
	key := r.URL.Query().Get("key")
	if key == "" {
		badRequest(w, "key: missing; give a peer ID, a CID or any string to look up")
		return
	}
	if len(key) > 512 {
		badRequest(w, "key: %d bytes, the limit is 512", len(key))
		return
	}
	res, err := n.net.LookupTrace(r.Context(), key)
	if err != nil {
		badRequest(w, "key: %v", err)
		return
	}
	writeJSON(w, http.StatusOK, res)
}

func (n *Node) getTopics(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, TopicsResponse{Topics: n.net.Topics()})
}

func (n *Node) getScores(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, n.net.Scores())
}

func (n *Node) getMessage(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if b, err := hex.DecodeString(id); err != nil || len(b) != 32 {
		badRequest(w, "id: %q is not a message ID (64 hex digits, the SHA-256 of the message)", id)
		return
	}
	rec, ok := n.net.Tracer().Message(id)
	if !ok {
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("message %s is not among the recent messages this node saw", id)})
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// TraceQuery is what GET /debug/pubsub/trace accepts.
type TraceQuery struct {
	Follow  bool
	Backlog int
	Filter  p2p.Filter
}

// ParseTraceQuery checks the trace endpoint's parameters: follow (bool, default true), backlog (0-4096
// recent events sent first, default 100), topic (comma-separated, each a full or short name among topics;
// topics nil skips that check) and type (comma-separated event types).
func ParseTraceQuery(q map[string][]string, topics []string) (TraceQuery, error) {
	get := func(k string) string {
		if v := q[k]; len(v) > 0 {
			return v[0]
		}
		return ""
	}
	tq := TraceQuery{Follow: true, Backlog: defaultBacklog}
	if s := get("follow"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			return tq, fmt.Errorf("follow: %q is not true or false", s)
		}
		tq.Follow = b
	}
	if s := get("backlog"); s != "" {
		b, err := strconv.Atoi(s)
		if err != nil || b < 0 || b > maxBacklog {
			return tq, fmt.Errorf("backlog: %q is not a number from 0 to %d", s, maxBacklog)
		}
		tq.Backlog = b
	}
	tq.Filter.Topics = splitList(get("topic"))
	for _, t := range tq.Filter.Topics {
		if topics != nil && !slices.ContainsFunc(topics, func(known string) bool { return t == known || t == p2p.TopicShortName(known) }) {
			names := []string{}
			for _, known := range topics {
				names = append(names, p2p.TopicShortName(known))
			}
			return tq, fmt.Errorf("topic: %q is not a topic of this node; known topics: %s", t, strings.Join(names, ", "))
		}
	}
	tq.Filter.Types = splitList(get("type"))
	for _, t := range tq.Filter.Types {
		if !slices.Contains(p2p.EventTypes, t) {
			return tq, fmt.Errorf("type: %q is not an event type; known types: %s", t, strings.Join(p2p.EventTypes, ", "))
		}
	}
	return tq, nil
}

func splitList(s string) []string {
	var out []string
	for _, part := range strings.Split(s, ",") {
		if part = strings.TrimSpace(part); part != "" {
			out = append(out, part)
		}
	}
	return out
}

// getTrace streams gossip trace events as server-sent events: the backlog first, then (with follow) live
// events until the client goes away. Each event is "event: trace" with the Event as JSON; a subscriber that
// reads too slowly misses events and is told so by an "event: dropped" with the count.
func (n *Node) getTrace(w http.ResponseWriter, r *http.Request) {
	topics := []string{}
	for _, t := range n.net.Topics() {
		topics = append(topics, t.Topic)
	}
	q, err := ParseTraceQuery(r.URL.Query(), topics)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	flusher, ok := w.(http.Flusher)
	if !ok {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: "streaming is not supported by this connection"})
		return
	}
	tracer := n.net.Tracer()
	var sub *p2p.Subscription
	var backlog []p2p.Event
	if q.Follow {
		sub, backlog, err = tracer.Subscribe(q.Filter, q.Backlog)
		if err != nil {
			writeJSON(w, http.StatusServiceUnavailable, ErrorResponse{Error: err.Error()})
			return
		}
		defer tracer.Unsubscribe(sub)
	} else {
		backlog = tracer.Recent(q.Filter, q.Backlog)
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	for i := range backlog {
		if writeSSE(w, "trace", &backlog[i]) != nil {
			return
		}
	}
	flusher.Flush()
	if !q.Follow {
		return
	}
	keepAlive := time.NewTicker(sseKeepAlive)
	defer keepAlive.Stop()
	var reported uint64
	for {
		select {
		case <-r.Context().Done():
			return
		case <-keepAlive.C:
			if _, err := fmt.Fprint(w, ": keepalive\n\n"); err != nil {
				return
			}
		case e := <-sub.C:
			if d := sub.Dropped(); d > reported {
				if writeSSE(w, "dropped", map[string]uint64{"dropped": d - reported}) != nil {
					return
				}
				reported = d
			}
			if writeSSE(w, "trace", &e) != nil {
				return
			}
		}
		flusher.Flush()
	}
}

func writeSSE(w http.ResponseWriter, event string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "event: %s\ndata: %s\n\n", event, b)
	return err
}
