package p2p

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/shouldersnet/shoulders/p2p/announce"
)

// Trace event types. Message events (publish, deliver, duplicate, reject, ignore, undeliverable) carry the
// message ID; mesh events (graft, prune) the peer and topic; join and leave the topic.
const (
	EventPublish       = "publish"
	EventDeliver       = "deliver"
	EventDuplicate     = "duplicate"
	EventReject        = "reject"
	EventIgnore        = "ignore"
	EventGraft         = "graft"
	EventPrune         = "prune"
	EventJoin          = "join"
	EventLeave         = "leave"
	EventAddPeer       = "add_peer"
	EventRemovePeer    = "remove_peer"
	EventThrottle      = "throttle"
	EventDropRPC       = "drop_rpc"
	EventUndeliverable = "undeliverable"
)

// EventTypes lists every event type, in the order the API documents them.
var EventTypes = []string{EventPublish, EventDeliver, EventDuplicate, EventReject, EventIgnore, EventGraft,
	EventPrune, EventJoin, EventLeave, EventAddPeer, EventRemovePeer, EventThrottle, EventDropRPC, EventUndeliverable}

// Event is one thing that happened in gossip, as the trace reports it.
type Event struct {
	Seq  uint64    `json:"seq"`
	Time time.Time `json:"time"`
	Type string    `json:"type"`
	// Topic is the full topic name.
	Topic string `json:"topic,omitempty"`
	// MsgID is the message ID in hex: the SHA-256 of the message data.
	MsgID string `json:"msg_id,omitempty"`
	// Peer is the peer the event is about: who sent us the message, or whom the mesh changed for.
	Peer string `json:"peer,omitempty"`
	// Author is the message's signed author.
	Author string `json:"author,omitempty"`
	Reason string `json:"reason,omitempty"`
	Size   int    `json:"size,omitempty"`
}

// Filter selects events by topic and type; an empty set matches everything. A topic matches by full name
// ("/shoulders/devnet/workers/1") or by its short name ("workers").
type Filter struct {
	Topics []string
	Types  []string
}

func (f Filter) match(e *Event) bool {
	if len(f.Types) > 0 && !slices.Contains(f.Types, e.Type) {
		return false
	}
	if len(f.Topics) == 0 {
		return true
	}
	for _, t := range f.Topics {
		if t == e.Topic || (e.Topic != "" && t == TopicShortName(e.Topic)) {
			return true
		}
	}
	return false
}

// TopicShortName returns "workers" for "/shoulders/<network>/workers/1", and any other name as it is.
func TopicShortName(topic string) string {
	parts := strings.Split(topic, "/")
	if len(parts) == 5 && parts[1] == "shoulders" {
		return parts[3]
	}
	return topic
}

// MessageRecord is what the trace remembers of one recent message: where it came from and when, what
// happened to it, and its decoded body.
type MessageRecord struct {
	ID        string    `json:"id"`
	Topic     string    `json:"topic"`
	Author    string    `json:"author"`
	Size      int       `json:"size"`
	FirstSeen time.Time `json:"first_seen"`
	// Status is "published" (by this node), "delivered", "rejected" or "ignored".
	Status string `json:"status"`
	Reason string `json:"reason,omitempty"`
	// Receipts lists who sent the message to this node and when: the first delivery, then each duplicate.
	Receipts        []Receipt `json:"receipts"`
	ReceiptsDropped int       `json:"receipts_dropped,omitempty"`
	Body            any       `json:"body,omitempty"`

	// kept is what validation decoded, turned into Body only when someone asks (see keepForTrace).
	kept any
}

// madeView is a body made when the message was recorded: a JoinTopic value's own view of itself, so the
// record does not hold the value (a batch of transactions, say).
type madeView struct{ view any }

// keepForTrace is what a message record holds of what validation decoded. An announcement is kept as it
// is (gossip and the catalog hold it anyway; its view is made when asked for); a topic's value that can
// describe itself is described now and let go.
func keepForTrace(vdata any) any {
	if d, ok := vdata.(interface{ TraceView() any }); ok {
		return madeView{d.TraceView()}
	}
	return vdata
}

// Receipt is one arrival of a message from a peer.
type Receipt struct {
	Peer      string    `json:"peer"`
	At        time.Time `json:"at"`
	Duplicate bool      `json:"duplicate"`
}

// Tracer limits. Each bounds what the trace can hold, whatever the gossip rate.
const (
	traceQueue         = 8192 // events waiting for the tracer goroutine
	traceRing          = 4096 // recent events kept for late subscribers
	traceMessages      = 4096 // recent messages kept by ID
	traceReceipts      = 64   // arrivals kept per message
	subscriberQueue    = 1024 // events waiting for one slow subscriber
	maxTraceSubscriber = 64
)

// rawEvent is what the pubsub callbacks hand over: the least work possible on pubsub's goroutines. It holds
// no message bytes, only their size and what validation decoded, so the queue's memory is bounded by its
// length whatever peers send.
type rawEvent struct {
	typ    string
	at     time.Time
	topic  string
	id     string
	peer   peer.ID
	author peer.ID
	reason string
	size   int
	vdata  any
}

// Tracer implements pubsub.RawTracer. The callbacks run on pubsub's event loop and validation goroutines,
// so they never block: each copies a few fields into a bounded queue and returns, dropping (and counting)
// the event when the queue is full. One goroutine, Run's caller, drains the queue into a ring of recent
// events, per-message records, an optional JSON-lines file and the live subscribers. The mesh view is kept
// synchronously under a mutex held for a map update only, so it never misses a graft or a prune.
type Tracer struct {
	in      chan rawEvent
	dropped atomic.Uint64
	// msgSends counts messages (not control frames) sent to peers: the numerator of sends per delivery.
	msgSends   atomic.Uint64
	deliveries atomic.Uint64

	decode func(vdata any) any
	label  func(topic string) string
	file   io.Writer
	log    *slog.Logger

	meshMu sync.Mutex
	mesh   map[string]map[peer.ID]struct{}

	mu struct {
		sync.Mutex
		seq      uint64
		ring     []Event // circular, traceRing long once full
		next     int
		messages map[string]*MessageRecord // by raw message ID
		order    []string                  // raw message IDs, oldest first
		subs     map[*Subscription]struct{}
	}

	metrics traceMetrics

	// counters caches the events counter of each (type, topic label); only the tracer goroutine uses it.
	counters map[[2]string]prometheus.Counter

	// names caches peer IDs in text, which the trace writes for every event (base58 is costly at gossip
	// rates); only the tracer goroutine uses it.
	names map[peer.ID]string
}

// maxPeerNames bounds the name cache; it starts again empty when full.
const maxPeerNames = 4096

func (t *Tracer) peerName(p peer.ID) string {
	if p == "" {
		return ""
	}
	if s, ok := t.names[p]; ok {
		return s
	}
	if len(t.names) >= maxPeerNames {
		clear(t.names)
	}
	s := p.String()
	t.names[p] = s
	return s
}

type traceMetrics struct {
	events     *prometheus.CounterVec
	rejects    *prometheus.CounterVec
	dropped    prometheus.CounterFunc
	subDropped prometheus.Counter
}

var _ pubsub.RawTracer = (*Tracer)(nil)

// newTracer makes a tracer. decode turns what validation left in a message's ValidatorData into the body of
// its record; label maps a topic to a bounded metric label. file, when not nil, receives every event as a
// JSON line.
func newTracer(reg prometheus.Registerer, log *slog.Logger, decode func(any) any, label func(string) string, file io.Writer) *Tracer {
	t := &Tracer{
		in:       make(chan rawEvent, traceQueue),
		decode:   decode,
		label:    label,
		file:     file,
		log:      log,
		mesh:     make(map[string]map[peer.ID]struct{}),
		names:    make(map[peer.ID]string),
		counters: make(map[[2]string]prometheus.Counter),
	}
	t.mu.messages = make(map[string]*MessageRecord)
	t.mu.subs = make(map[*Subscription]struct{})
	t.metrics = traceMetrics{
		events: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoulders_gossip_events_total", Help: "Gossip trace events by type and topic.",
		}, []string{"type", "topic"}),
		rejects: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "shoulders_gossip_rejects_total", Help: "Gossip messages rejected or ignored, by topic and reason code.",
		}, []string{"topic", "code"}),
		dropped: prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "shoulders_gossip_trace_dropped_total", Help: "Trace events dropped because the tracer queue was full.",
		}, func() float64 { return float64(t.dropped.Load()) }),
		subDropped: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "shoulders_gossip_trace_subscriber_dropped_total", Help: "Trace events a slow subscriber missed.",
		}),
	}
	if reg != nil {
		reg.MustRegister(t.metrics.events, t.metrics.rejects, t.metrics.dropped, t.metrics.subDropped)
	}
	return t
}

func (t *Tracer) push(e rawEvent) {
	e.at = time.Now()
	select {
	case t.in <- e:
	default:
		t.dropped.Add(1)
	}
}

// Dropped is how many events the tracer dropped because its queue was full.
func (t *Tracer) Dropped() uint64 { return t.dropped.Load() }

// MessagesSent is how many gossip messages this node has sent to peers.
func (t *Tracer) MessagesSent() uint64 { return t.msgSends.Load() }

// Deliveries is how many messages pubsub delivered to this node's subscriptions.
func (t *Tracer) Deliveries() uint64 { return t.deliveries.Load() }

// --- pubsub.RawTracer: runs on pubsub's goroutines; must not block ---

// OnNewOutboundStream: pubsub opened its stream to a peer, which may now join meshes.
func (t *Tracer) OnNewOutboundStream(p peer.ID, _ protocol.ID) {
	t.push(rawEvent{typ: EventAddPeer, peer: p})
}

// OnClosedOutboundStream: the peer is gone from pubsub, and from every mesh without a prune.
func (t *Tracer) OnClosedOutboundStream(p peer.ID) {
	t.meshMu.Lock()
	for _, m := range t.mesh {
		delete(m, p)
	}
	t.meshMu.Unlock()
	t.push(rawEvent{typ: EventRemovePeer, peer: p})
}
func (t *Tracer) Join(topic string) {
	t.meshMu.Lock()
	if t.mesh[topic] == nil {
		t.mesh[topic] = make(map[peer.ID]struct{})
	}
	t.meshMu.Unlock()
	t.push(rawEvent{typ: EventJoin, topic: topic})
}
func (t *Tracer) Leave(topic string) {
	t.meshMu.Lock()
	delete(t.mesh, topic)
	t.meshMu.Unlock()
	t.push(rawEvent{typ: EventLeave, topic: topic})
}
func (t *Tracer) Graft(p peer.ID, topic string) {
	t.meshMu.Lock()
	if m := t.mesh[topic]; m != nil {
		m[p] = struct{}{}
	}
	t.meshMu.Unlock()
	t.push(rawEvent{typ: EventGraft, peer: p, topic: topic})
}
func (t *Tracer) Prune(p peer.ID, topic string) {
	t.meshMu.Lock()
	delete(t.mesh[topic], p)
	t.meshMu.Unlock()
	t.push(rawEvent{typ: EventPrune, peer: p, topic: topic})
}
func (t *Tracer) ValidateMessage(*pubsub.Message) {}
func (t *Tracer) DeliverMessage(m *pubsub.Message) {
	t.deliveries.Add(1)
	t.push(msgEvent(EventDeliver, m, ""))
}
func (t *Tracer) RejectMessage(m *pubsub.Message, reason string) {
	typ := EventReject
	if reason == pubsub.RejectValidationIgnored {
		typ = EventIgnore
	}
	// Our validators leave their reason in ValidatorData; pubsub only knows "validation failed".
	if r, ok := m.ValidatorData.(rejection); ok {
		reason = r.err.Error()
	}
	t.push(msgEvent(typ, m, reason))
}
func (t *Tracer) DuplicateMessage(m *pubsub.Message) { t.push(msgEvent(EventDuplicate, m, "")) }
func (t *Tracer) ThrottlePeer(p peer.ID)             { t.push(rawEvent{typ: EventThrottle, peer: p}) }
func (t *Tracer) RecvRPC(*pubsub.RPC)                {}
func (t *Tracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	if n := len(rpc.GetPublish()); n > 0 {
		t.msgSends.Add(uint64(n))
	}
}
func (t *Tracer) DropRPC(rpc *pubsub.RPC, p peer.ID) {
	t.push(rawEvent{typ: EventDropRPC, peer: p, reason: "peer queue full"})
}
func (t *Tracer) UndeliverableMessage(m *pubsub.Message) {
	t.push(msgEvent(EventUndeliverable, m, "subscriber too slow"))
}

func msgEvent(typ string, m *pubsub.Message, reason string) rawEvent {
	return rawEvent{typ: typ, topic: m.GetTopic(), id: m.ID, peer: m.ReceivedFrom, author: m.GetFrom(),
		reason: reason, size: len(m.GetData()), vdata: m.ValidatorData}
}

// published records a message this node published (its own announcement, or a relay, which reason says);
// Network.Publish and relay call it.
func (t *Tracer) published(topic, id string, self peer.ID, v *announce.Verified, reason string) {
	t.push(rawEvent{typ: EventPublish, topic: topic, id: id, peer: self, author: self, reason: reason, size: len(v.Raw), vdata: v})
}

// --- the tracer goroutine ---

// Run drains the event queue until ctx is done, then what is left in it. It is the only goroutine that
// writes the file.
func (t *Tracer) Run(ctx context.Context) error {
	var w *bufio.Writer
	if t.file != nil {
		w = bufio.NewWriterSize(t.file, 64<<10)
	}
	flush := func() {
		if w == nil {
			return
		}
		if err := w.Flush(); err != nil {
			t.log.Error("trace file: writing failed; the trace goes on without it", "err", err)
			w = nil
		}
	}
	defer flush()
	for {
		select {
		case <-ctx.Done():
			for {
				select {
				case raw := <-t.in:
					t.handle(raw, w)
				default:
					return nil
				}
			}
		case raw := <-t.in:
			t.handle(raw, w)
			// Flush the file once the queue is empty, not per event.
			if len(t.in) == 0 {
				flush()
			}
		}
	}
}

func (t *Tracer) handle(raw rawEvent, w *bufio.Writer) {
	e := Event{Time: raw.at, Type: raw.typ, Topic: raw.topic, Reason: raw.reason, Size: raw.size}
	e.Peer, e.Author = t.peerName(raw.peer), t.peerName(raw.author)
	label := ""
	if raw.topic != "" {
		label = t.label(raw.topic)
	}
	t.eventCounter(raw.typ, label).Inc()
	if raw.typ == EventReject || raw.typ == EventIgnore {
		t.metrics.rejects.WithLabelValues(label, reasonCode(raw.vdata, raw.reason)).Inc()
	}

	t.mu.Lock()
	var r *MessageRecord
	if raw.id != "" {
		// The record's hex ID serves every event of the message after the first.
		if r = t.mu.messages[raw.id]; r != nil {
			e.MsgID = r.ID
		} else {
			e.MsgID = hex.EncodeToString([]byte(raw.id))
		}
	}
	t.mu.seq++
	e.Seq = t.mu.seq
	if len(t.mu.ring) < traceRing {
		t.mu.ring = append(t.mu.ring, e)
	} else {
		t.mu.ring[t.mu.next] = e
		t.mu.next = (t.mu.next + 1) % traceRing
	}
	if raw.id != "" {
		t.recordLocked(raw.id, r, &e, raw.vdata)
	}
	for s := range t.mu.subs {
		if !s.filter.match(&e) {
			continue
		}
		select {
		case s.ch <- e:
		default:
			s.dropped.Add(1)
			t.metrics.subDropped.Inc()
		}
	}
	t.mu.Unlock()

	if w != nil {
		b, _ := json.Marshal(e)
		w.Write(b)
		w.WriteByte('\n')
	}
}

// reasonCode maps a rejection to a metric label from a fixed set.
func reasonCode(vdata any, reason string) string {
	if r, ok := vdata.(rejection); ok {
		return r.code
	}
	switch reason {
	case pubsub.RejectMissingSignature, pubsub.RejectInvalidSignature, pubsub.RejectUnexpectedSignature,
		pubsub.RejectUnexpectedAuthInfo, pubsub.RejectValidationQueueFull, pubsub.RejectValidationThrottled,
		pubsub.RejectValidationIgnored, pubsub.RejectSelfOrigin, pubsub.RejectBlacklstedPeer,
		pubsub.RejectBlacklistedSource, pubsub.RejectValidationFailed:
		return strings.ReplaceAll(reason, " ", "_")
	}
	return "other"
}

// eventCounter is the events counter of (typ, label), looked up once (only the tracer goroutine calls it).
func (t *Tracer) eventCounter(typ, label string) prometheus.Counter {
	k := [2]string{typ, label}
	c, ok := t.counters[k]
	if !ok {
		c = t.metrics.events.WithLabelValues(typ, label)
		t.counters[k] = c
	}
	return c
}

// recordLocked adds e to the record of its message (key is the raw message ID), r if there is one already.
func (t *Tracer) recordLocked(key string, r *MessageRecord, e *Event, vdata any) {
	if r == nil {
		r = &MessageRecord{ID: e.MsgID, Topic: e.Topic, Author: e.Author, Size: e.Size, FirstSeen: e.Time, Receipts: []Receipt{}, kept: keepForTrace(vdata)}
		t.mu.messages[key] = r
		t.mu.order = append(t.mu.order, key)
		if len(t.mu.order) > traceMessages {
			delete(t.mu.messages, t.mu.order[0])
			t.mu.order = t.mu.order[1:]
		}
	}
	switch e.Type {
	case EventPublish:
		r.Status = "published"
	case EventDeliver, EventDuplicate:
		if e.Type == EventDeliver && r.Status == "" {
			r.Status = "delivered"
		}
		if len(r.Receipts) < traceReceipts {
			r.Receipts = append(r.Receipts, Receipt{Peer: e.Peer, At: e.Time, Duplicate: e.Type == EventDuplicate})
		} else {
			r.ReceiptsDropped++
		}
	case EventReject, EventIgnore:
		r.Status = map[string]string{EventReject: "rejected", EventIgnore: "ignored"}[e.Type]
		r.Reason = e.Reason
		if len(r.Receipts) < traceReceipts {
			r.Receipts = append(r.Receipts, Receipt{Peer: e.Peer, At: e.Time})
		}
	}
}

// Message returns the record of a recent message by its hex ID.
func (t *Tracer) Message(id string) (MessageRecord, bool) {
	key, err := hex.DecodeString(id)
	if err != nil {
		return MessageRecord{}, false
	}
	t.mu.Lock()
	r, ok := t.mu.messages[string(key)]
	var out MessageRecord
	if ok {
		out = *r
		out.Receipts = slices.Clone(r.Receipts)
	}
	t.mu.Unlock()
	if !ok {
		return MessageRecord{}, false
	}
	if v, made := out.kept.(madeView); made {
		out.Body = v.view
	} else {
		out.Body = t.decode(out.kept)
	}
	out.kept = nil
	return out, true
}

// Mesh returns this node's gossipsub mesh for topic, sorted.
func (t *Tracer) Mesh(topic string) []peer.ID {
	t.meshMu.Lock()
	out := make([]peer.ID, 0, len(t.mesh[topic]))
	for p := range t.mesh[topic] {
		out = append(out, p)
	}
	t.meshMu.Unlock()
	slices.Sort(out)
	return out
}

// Subscription is a live feed of trace events. A subscriber that falls more than subscriberQueue events
// behind misses events; Dropped says how many.
type Subscription struct {
	C       <-chan Event
	ch      chan Event
	filter  Filter
	dropped atomic.Uint64
}

// Dropped is how many events this subscriber missed because it read too slowly.
func (s *Subscription) Dropped() uint64 { return s.dropped.Load() }

// ErrTooManySubscribers is returned by Subscribe past maxTraceSubscriber live subscriptions.
var ErrTooManySubscribers = errors.New("p2p: too many trace subscribers")

// Recent returns up to n of the most recent events matching f, oldest first.
func (t *Tracer) Recent(f Filter, n int) []Event {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.recentLocked(f, n)
}

func (t *Tracer) recentLocked(f Filter, n int) []Event {
	out := []Event{}
	if n <= 0 {
		return out
	}
	// Walk newest to oldest, then reverse. Until the ring is full, next stays 0 and the newest is last.
	size := len(t.mu.ring)
	for i := 0; i < size && len(out) < n; i++ {
		if e := t.mu.ring[(t.mu.next-1-i+2*size)%size]; f.match(&e) {
			out = append(out, e)
		}
	}
	slices.Reverse(out)
	return out
}

// Subscribe returns up to backlog recent events matching f and a subscription to the ones after them, with no
// gap and no repeat between the two. The caller must Unsubscribe.
func (t *Tracer) Subscribe(f Filter, backlog int) (*Subscription, []Event, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if len(t.mu.subs) >= maxTraceSubscriber {
		return nil, nil, ErrTooManySubscribers
	}
	ch := make(chan Event, subscriberQueue)
	s := &Subscription{C: ch, ch: ch, filter: f}
	t.mu.subs[s] = struct{}{}
	return s, t.recentLocked(f, backlog), nil
}

// Unsubscribe ends a subscription.
func (t *Tracer) Unsubscribe(s *Subscription) {
	t.mu.Lock()
	delete(t.mu.subs, s)
	t.mu.Unlock()
}
