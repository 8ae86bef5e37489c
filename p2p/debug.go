package p2p

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/ipfs/go-cid"
	kb "github.com/libp2p/go-libp2p-kbucket"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	ma "github.com/multiformats/go-multiaddr"
)

// This file holds the read-only views researchers get through /debug: connections, the DHT routing table,
// traced lookups, topics and meshes, peer scores. Each returns plain data ready for JSON.

// Conn is one open connection.
type Conn struct {
	Peer       string    `json:"peer"`
	Direction  string    `json:"direction"`
	Transport  string    `json:"transport"`
	RemoteAddr string    `json:"remote_addr"`
	Opened     time.Time `json:"opened"`
	LatencyMS  float64   `json:"latency_ms"`
	Streams    int       `json:"streams"`
	Protocols  []string  `json:"protocols"`
	Agent      string    `json:"agent"`
}

// Conns lists every open connection, by peer then open time.
func (n *Network) Conns() []Conn {
	ps := n.host.Peerstore()
	out := []Conn{}
	for _, c := range n.host.Network().Conns() {
		p := c.RemotePeer()
		protos, _ := ps.GetProtocols(p)
		names := make([]string, 0, len(protos))
		for _, pr := range protos {
			names = append(names, string(pr))
		}
		slices.Sort(names)
		agent, _ := ps.Get(p, "AgentVersion")
		agentStr, _ := agent.(string)
		st := c.Stat()
		out = append(out, Conn{
			Peer:       p.String(),
			Direction:  st.Direction.String(),
			Transport:  transportOf(c.RemoteMultiaddr()),
			RemoteAddr: c.RemoteMultiaddr().String(),
			Opened:     st.Opened.UTC(),
			LatencyMS:  float64(ps.LatencyEWMA(p).Microseconds()) / 1000,
			Streams:    len(c.GetStreams()),
			Protocols:  names,
			Agent:      agentStr,
		})
	}
	slices.SortFunc(out, func(a, b Conn) int {
		if c := strings.Compare(a.Peer, b.Peer); c != 0 {
			return c
		}
		return a.Opened.Compare(b.Opened)
	})
	return out
}

func transportOf(a ma.Multiaddr) string {
	for _, p := range []int{ma.P_QUIC_V1, ma.P_QUIC, ma.P_TCP, ma.P_UDP} {
		if _, err := a.ValueForProtocol(p); err == nil {
			return ma.ProtocolWithCode(p).Name
		}
	}
	return "other"
}

// ConnectedPeer is one peer this node is connected to, for /v1/peers.
type ConnectedPeer struct {
	PeerID    string   `json:"peer_id"`
	Addrs     []string `json:"addrs"`
	Direction string   `json:"direction"`
	Agent     string   `json:"agent"`
}

// ConnectedPeers lists the peers this node has a connection to, sorted by peer ID.
func (n *Network) ConnectedPeers() []ConnectedPeer {
	byPeer := map[peer.ID]*ConnectedPeer{}
	for _, c := range n.Conns() {
		p, _ := peer.Decode(c.Peer)
		cp := byPeer[p]
		if cp == nil {
			cp = &ConnectedPeer{PeerID: c.Peer, Addrs: []string{}, Direction: c.Direction, Agent: c.Agent}
			byPeer[p] = cp
		}
		cp.Addrs = append(cp.Addrs, c.RemoteAddr)
	}
	out := make([]ConnectedPeer, 0, len(byPeer))
	for _, cp := range byPeer {
		out = append(out, *cp)
	}
	slices.SortFunc(out, func(a, b ConnectedPeer) int { return strings.Compare(a.PeerID, b.PeerID) })
	return out
}

// RoutingTable is the DHT routing table grouped into buckets by common prefix length with this node's ID.
type RoutingTable struct {
	Self    string   `json:"self"`
	Size    int      `json:"size"`
	Buckets []Bucket `json:"buckets"`
}

// Bucket is the routing-table peers sharing CPL leading bits with this node's DHT ID.
type Bucket struct {
	CPL   int       `json:"cpl"`
	Peers []RTEntry `json:"peers"`
}

// RTEntry is one routing-table peer. LastUseful is when it last gave us something useful in a query;
// LastQueried when it last answered one of ours; nil means never.
type RTEntry struct {
	Peer        string     `json:"peer"`
	AddedAt     time.Time  `json:"added_at"`
	LastUseful  *time.Time `json:"last_useful"`
	LastQueried *time.Time `json:"last_queried"`
	Connected   bool       `json:"connected"`
}

// RoutingTableView returns the DHT routing table.
func (n *Network) RoutingTableView() RoutingTable {
	self := kb.ConvertPeerID(n.host.ID())
	byCPL := map[int][]RTEntry{}
	infos := n.dht.RoutingTable().GetPeerInfos()
	for _, pi := range infos {
		cpl := kb.CommonPrefixLen(self, kb.ConvertPeerID(pi.Id))
		byCPL[cpl] = append(byCPL[cpl], RTEntry{
			Peer:        pi.Id.String(),
			AddedAt:     pi.AddedAt.UTC(),
			LastUseful:  optTime(pi.LastUsefulAt),
			LastQueried: optTime(pi.LastSuccessfulOutboundQueryAt),
			Connected:   n.host.Network().Connectedness(pi.Id) == network.Connected,
		})
	}
	rt := RoutingTable{Self: n.host.ID().String(), Size: len(infos), Buckets: []Bucket{}}
	for cpl, entries := range byCPL {
		slices.SortFunc(entries, func(a, b RTEntry) int { return strings.Compare(a.Peer, b.Peer) })
		rt.Buckets = append(rt.Buckets, Bucket{CPL: cpl, Peers: entries})
	}
	slices.SortFunc(rt.Buckets, func(a, b Bucket) int { return a.CPL - b.CPL })
	return rt
}

func optTime(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	u := t.UTC()
	return &u
}

// Lookup is the trace of one DHT lookup of the peers closest to a key.
type Lookup struct {
	Key        string       `json:"key"`
	KeyKind    string       `json:"key_kind"` // "peer", "cid" or "string"
	DurationMS float64      `json:"duration_ms"`
	Closest    []string     `json:"closest"`
	Steps      []LookupStep `json:"steps"`
	Error      string       `json:"error,omitempty"`
}

// LookupStep is one event of a lookup. Hop is the peer's distance in the lookup: 1 for peers this node
// knew, h+1 for peers first learned from a hop-h peer's answer.
type LookupStep struct {
	AtMS   float64  `json:"at_ms"`
	Type   string   `json:"type"`
	Peer   string   `json:"peer"`
	Hop    int      `json:"hop"`
	Closer []string `json:"closer,omitempty"`
	Error  string   `json:"error,omitempty"`
}

const (
	lookupTimeout  = 30 * time.Second
	lookupMaxSteps = 2000
)

// ErrEmptyKey is returned by LookupTrace for an empty key.
var ErrEmptyKey = errors.New("p2p: lookup key is empty")

// LookupTrace runs a DHT lookup of the peers closest to key and records every query it made. key may be a
// peer ID (looked up as that peer), a CID (as its multihash, the way provider records are keyed) or any
// other string (as its bytes).
func (n *Network) LookupTrace(ctx context.Context, key string) (Lookup, error) {
	if key == "" {
		return Lookup{}, ErrEmptyKey
	}
	res := Lookup{Key: key, Closest: []string{}, Steps: []LookupStep{}}
	dhtKey := key
	if p, err := peer.Decode(key); err == nil {
		res.KeyKind, dhtKey = "peer", string(p)
	} else if c, err := cid.Decode(key); err == nil {
		res.KeyKind, dhtKey = "cid", string(c.Hash())
	} else {
		res.KeyKind = "string"
	}

	ctx, cancel := context.WithTimeout(ctx, lookupTimeout)
	defer cancel()
	evCtx, stopEvents := context.WithCancel(ctx)
	evCtx, events := routing.RegisterForQueryEvents(evCtx)

	start := time.Now()
	type result struct {
		peers []peer.ID
		err   error
	}
	done := make(chan result, 1)
	// This goroutine is owned by the call: it ends when the lookup does (bounded by lookupTimeout).
	go func() {
		peers, err := n.dht.GetClosestPeers(evCtx, dhtKey)
		done <- result{peers, err}
		stopEvents()
	}()

	hop := map[peer.ID]int{}
	for ev := range events {
		if len(res.Steps) >= lookupMaxSteps {
			continue // keep draining so the lookup is not blocked
		}
		h, known := hop[ev.ID]
		if !known {
			h = 1
			hop[ev.ID] = h
		}
		step := LookupStep{AtMS: msSince(start), Type: queryEventName(ev.Type), Peer: ev.ID.String(), Hop: h}
		if ev.Type == routing.QueryError {
			step.Error = ev.Extra
		}
		for _, ai := range ev.Responses {
			step.Closer = append(step.Closer, ai.ID.String())
			if _, seen := hop[ai.ID]; !seen {
				hop[ai.ID] = h + 1
			}
		}
		res.Steps = append(res.Steps, step)
	}
	r := <-done
	res.DurationMS = msSince(start)
	if r.err != nil {
		res.Error = r.err.Error()
	}
	for _, p := range r.peers {
		res.Closest = append(res.Closest, p.String())
	}
	return res, nil
}

func msSince(t time.Time) float64 { return float64(time.Since(t).Microseconds()) / 1000 }

func queryEventName(t routing.QueryEventType) string {
	switch t {
	case routing.SendingQuery:
		return "query"
	case routing.PeerResponse:
		return "response"
	case routing.FinalPeer:
		return "final"
	case routing.QueryError:
		return "error"
	case routing.Provider:
		return "provider"
	case routing.Value:
		return "value"
	case routing.AddingPeer:
		return "add"
	case routing.DialingPeer:
		return "dial"
	}
	return fmt.Sprintf("event(%d)", int(t))
}

// Topic is one joined gossip topic: the peers known to subscribe to it and this node's mesh for it.
type Topic struct {
	Topic       string   `json:"topic"`
	Subscribers []string `json:"subscribers"`
	Mesh        []string `json:"mesh"`
}

// Topics lists the joined topics.
func (n *Network) Topics() []Topic {
	out := []Topic{}
	for _, name := range n.ps.GetTopics() {
		t := Topic{Topic: name, Subscribers: peerStrings(n.ps.ListPeers(name)), Mesh: peerStrings(n.tracer.Mesh(name))}
		out = append(out, t)
	}
	slices.SortFunc(out, func(a, b Topic) int { return strings.Compare(a.Topic, b.Topic) })
	return out
}

func peerStrings(ps []peer.ID) []string {
	out := make([]string, 0, len(ps))
	for _, p := range ps {
		out = append(out, p.String())
	}
	slices.Sort(out)
	return out
}

// PeerScore is one peer's gossipsub score and its parts.
type PeerScore struct {
	Peer             string                `json:"peer"`
	Score            float64               `json:"score"`
	AppSpecific      float64               `json:"app_specific"`
	IPColocation     float64               `json:"ip_colocation"`
	BehaviourPenalty float64               `json:"behaviour_penalty"`
	Topics           map[string]TopicScore `json:"topics"`
}

// TopicScore is the per-topic part of a peer's score.
type TopicScore struct {
	TimeInMeshS       float64 `json:"time_in_mesh_s"`
	FirstDeliveries   float64 `json:"first_deliveries"`
	MeshDeliveries    float64 `json:"mesh_deliveries"`
	InvalidDeliveries float64 `json:"invalid_deliveries"`
}

// Scores is the latest peer score snapshot; gossipsub takes one every second.
type Scores struct {
	At    time.Time   `json:"at"`
	Peers []PeerScore `json:"peers"`
}

func (n *Network) keepScores(snap map[peer.ID]*pubsub.PeerScoreSnapshot) {
	s := Scores{At: time.Now().UTC(), Peers: make([]PeerScore, 0, len(snap))}
	for p, ps := range snap {
		out := PeerScore{Peer: p.String(), Score: ps.Score, AppSpecific: ps.AppSpecificScore,
			IPColocation: ps.IPColocationFactor, BehaviourPenalty: ps.BehaviourPenalty, Topics: map[string]TopicScore{}}
		for t, ts := range ps.Topics {
			out.Topics[t] = TopicScore{TimeInMeshS: ts.TimeInMesh.Seconds(), FirstDeliveries: ts.FirstMessageDeliveries,
				MeshDeliveries: ts.MeshMessageDeliveries, InvalidDeliveries: ts.InvalidMessageDeliveries}
		}
		s.Peers = append(s.Peers, out)
	}
	slices.SortFunc(s.Peers, func(a, b PeerScore) int { return strings.Compare(a.Peer, b.Peer) })
	n.scoresMu.Lock()
	n.scores = s
	close(n.scoresUpdated)
	n.scoresUpdated = make(chan struct{})
	n.scoresMu.Unlock()
}

// ScoresUpdated returns a channel closed when the next score snapshot is taken.
func (n *Network) ScoresUpdated() <-chan struct{} {
	n.scoresMu.Lock()
	defer n.scoresMu.Unlock()
	return n.scoresUpdated
}

// Scores returns the latest peer score snapshot.
func (n *Network) Scores() Scores {
	n.scoresMu.Lock()
	defer n.scoresMu.Unlock()
	s := n.scores
	if s.Peers == nil {
		s.Peers = []PeerScore{}
	}
	return s
}
