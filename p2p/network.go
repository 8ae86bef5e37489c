// Package p2p owns a node's place in the network: the libp2p host, the private Kademlia DHT, gossipsub and
// its topics, discovery of other nodes, the catalog sync protocol, and the gossip trace that researchers read
// through the debug API. It decides what may enter the node from the network: every gossip message is
// decoded and checked by a topic validator (package announce) before anything else sees it, and refused with
// a reason that the trace shows.
//
// What it must never do: block pubsub's event loop (the tracer drops and counts instead), hold anything a
// peer sends without a bound, or keep a goroutine that Run does not own.
//
// Decisions where the design is silent:
//   - Discovery uses the DHT twice: its routing-table refresh (random walks) fills the routing table, and a
//     rendezvous provider record (the CID of "shoulders:<network>:nodes") lets nodes that only know a
//     bootstrap peer find each other and connect, up to Config.TargetPeers. The loop backs off while it finds
//     nothing new.
//   - A node joining late does not wait for the next periodic announcement: when a peer joins a topic of
//     ours (it subscribes, or it connects already subscribed) we pull its catalog over /shoulders/catalog/1 (each entry is a signed announcement, verified
//     exactly as gossip is), and whatever is news to a node it republishes, byte for byte, on the topic. So
//     a healed partition catches up at once on both sides, not only at the two ends of the new link.
//   - Gossip alone can lose news: a message that reaches a node before its mesh forms is delivered to it and
//     forwarded to nobody. So every node also runs anti-entropy: every SyncInterval (30 s) it pulls from one
//     random topic peer whatever that peer holds and it lacks (its request carries a digest of its catalog).
//   - Anyone may relay anyone's announcement: the announcement's own signature says who wrote it. To keep
//     relays from flooding, a validator ignores (without penalty, and without forwarding) an announcement
//     whose subject it already holds at the same or a newer seq, or a new subject its full catalog could
//     not keep; only news travels. Announcements out of their time window by this node's clock are ignored
//     the same way: a relay whose clock differs is not an attacker.
//   - Message IDs are the SHA-256 of the message data, so the same signed announcement is one message however
//     many peers publish it.
//   - Validators run inline, in pubsub's validation workers: their checks are short and use no I/O, and a
//     goroutine per message cost more than the check. What the node publishes itself (its announcements,
//     its relays of news already verified) carries its verified form to the validator and is not decoded
//     or verified again.
//   - Meshes hold MeshDegree (4) peers, not gossipsub's 6: flood publish already hands a message to every
//     topic peer on its first hop, and anti-entropy repairs what gossip drops, so the wider mesh mostly sent
//     duplicates (7.3 sends per delivery at 20 nodes against 4.7), and on a busy node those cost the CPU
//     that delivery waits for. In a network of thousands a message takes about one hop more.
//   - Peer scoring penalises invalid messages heavily and nothing else much; IP colocation is not scored, since
//     devnets and tests put every node on 127.0.0.1.
package p2p

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"time"

	dht "github.com/libp2p/go-libp2p-kad-dht"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	pubsubpb "github.com/libp2p/go-libp2p-pubsub/pb"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
	"google.golang.org/protobuf/proto"

	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/catalog"
	pb "github.com/shouldersnet/shoulders/proto"
)

// Config is what a Network needs beyond its host and catalog. Zero values take the defaults named.
type Config struct {
	// Network names the network; it separates DHTs and topics of different networks.
	Network   string
	Bootstrap []peer.AddrInfo
	Log       *slog.Logger
	// Registry receives the network's metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
	// TraceFile, when set, receives every gossip trace event as a JSON line.
	TraceFile io.Writer
	// TargetPeers is how many connections discovery aims for (default 8).
	TargetPeers int
	// NoDiscovery turns off DHT bootstrap and rendezvous: peers are connected by hand. Tests on mocknet use it
	// to keep exactly the links they make.
	NoDiscovery bool
	// SyncInterval is how often the node pulls a digest-diff of one random peer's catalog (anti-entropy);
	// 0 means DefaultSyncInterval, a negative value turns it off.
	SyncInterval time.Duration
	// OnDeliver, when set, is called for every announcement gossip delivers, after the catalog took it, on
	// the topic's goroutine. It must not block.
	OnDeliver func(v *announce.Verified, from peer.ID)
}

// Gossip limits.
const (
	peerQueue        = 1024 // outbound RPCs queued per peer; gossipsub's default of 32 drops bursts
	validateQueue    = 1024
	subscriberBuffer = 1024
	// maxRPCSize is pubsub's limit on one RPC. It is larger than announce.MaxSize so that oversized
	// announcements reach the validator and are refused with a reason the trace shows.
	maxRPCSize = 1 << 20
)

// Network is one node's gossip, DHT and discovery. New starts pubsub's and the DHT's own goroutines; Run
// runs the rest and, when its context ends, stops everything New started.
type Network struct {
	cfg     Config
	host    host.Host
	key     crypto.PrivKey
	dht     *dht.IpfsDHT
	ps      *pubsub.PubSub
	tracer  *Tracer
	catalog *catalog.Catalog
	log     *slog.Logger
	cancel  context.CancelFunc // stops pubsub

	topics map[pb.Kind]*pubsub.Topic
	subs   map[pb.Kind]*pubsub.Subscription

	seqMu   sync.Mutex
	lastSeq uint64

	// labels maps the topics this node joined to their metric labels (a bounded set).
	labels struct {
		sync.RWMutex
		m map[string]string
	}

	scoresMu      sync.Mutex
	scores        Scores
	scoresUpdated chan struct{} // closed and replaced at every snapshot

	sync *catalogSync

	closeOnce sync.Once
}

// New joins the network's topics on h and prepares discovery. The catalog receives every announcement that
// passes validation.
func New(h host.Host, cat *catalog.Catalog, cfg Config) (*Network, error) {
	if cfg.Network == "" {
		return nil, errors.New("p2p: Config.Network is empty")
	}
	if cfg.Log == nil {
		cfg.Log = slog.Default()
	}
	if cfg.TargetPeers == 0 {
		cfg.TargetPeers = 8
	}
	key := h.Peerstore().PrivKey(h.ID())
	if key == nil {
		return nil, errors.New("p2p: the host's private key is not in its peerstore")
	}
	n := &Network{
		cfg: cfg, host: h, key: key, catalog: cat, log: cfg.Log,
		topics: make(map[pb.Kind]*pubsub.Topic),
		subs:   make(map[pb.Kind]*pubsub.Subscription),

		scoresUpdated: make(chan struct{}),
	}
	n.labels.m = map[string]string{}
	for _, k := range announce.Kinds() {
		n.labels.m[TopicName(cfg.Network, k)] = TopicShortName(TopicName(cfg.Network, k))
	}
	n.tracer = newTracer(cfg.Registry, cfg.Log, n.decodeForTrace, n.label, cfg.TraceFile)

	var err error
	dhtOpts := []dht.Option{
		dht.Mode(dht.ModeServer),
		dht.ProtocolPrefix(protocol.ID("/shoulders/" + cfg.Network)),
	}
	if len(cfg.Bootstrap) > 0 && !cfg.NoDiscovery {
		dhtOpts = append(dhtOpts, dht.BootstrapPeers(cfg.Bootstrap...))
	}
	if cfg.NoDiscovery {
		dhtOpts = append(dhtOpts, dht.DisableAutoRefresh())
	}
	n.dht, err = dht.New(h, dhtOpts...)
	if err != nil {
		return nil, fmt.Errorf("p2p: dht: %w", err)
	}

	ctx, cancel := context.WithCancel(context.Background())
	n.cancel = cancel
	n.ps, err = pubsub.NewGossipSub(ctx, h, n.gossipOptions()...)
	if err != nil {
		n.Close()
		return nil, fmt.Errorf("p2p: gossipsub: %w", err)
	}
	for _, k := range announce.Kinds() {
		name := TopicName(cfg.Network, k)
		if err := n.ps.RegisterTopicValidator(name, n.validator(k), pubsub.WithValidatorInline(true)); err != nil {
			n.Close()
			return nil, fmt.Errorf("p2p: validator for %s: %w", name, err)
		}
		t, err := n.ps.Join(name)
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("p2p: join %s: %w", name, err)
		}
		sub, err := t.Subscribe(pubsub.WithBufferSize(subscriberBuffer))
		if err != nil {
			n.Close()
			return nil, fmt.Errorf("p2p: subscribe %s: %w", name, err)
		}
		n.topics[k], n.subs[k] = t, sub
	}
	interval := cfg.SyncInterval
	switch {
	case interval == 0:
		interval = DefaultSyncInterval
	case interval < 0:
		interval = 0
	}
	n.sync = newCatalogSync(n, interval)
	// Served from here on, like gossipsub's own protocols, so a peer that connects before Run gets its
	// answer; Close removes it.
	h.SetStreamHandler(CatalogProtocol, n.sync.serve)
	// A restarted node continues its own sequence even if its clock went back.
	for _, k := range announce.Kinds() {
		if e, ok := cat.Get(k, h.ID().String()); ok && e.Announcer == h.ID() {
			n.lastSeq = max(n.lastSeq, e.Seq)
		}
	}
	return n, nil
}

// TopicName is the gossip topic of an announcement kind: /shoulders/<network>/<name>/1.
func TopicName(network string, k pb.Kind) string {
	return "/shoulders/" + network + "/" + announce.TopicOf(k) + "/1"
}

// MessageID is the gossip message ID of data: its SHA-256 (announce.ID), as raw bytes in a string.
func MessageID(data []byte) string {
	id := announce.ID(data)
	return string(id[:])
}

func (n *Network) gossipOptions() []pubsub.Option {
	params, thresholds := scoreParams(n.labels.m)
	return []pubsub.Option{
		pubsub.WithMessageSignaturePolicy(pubsub.StrictSign),
		pubsub.WithMessageIdFn(func(m *pubsubpb.Message) string { return MessageID(m.Data) }),
		pubsub.WithFloodPublish(true),
		pubsub.WithGossipSubParams(gossipParams()),
		pubsub.WithPeerScore(params, thresholds),
		pubsub.WithPeerScoreInspect(pubsub.ExtendedPeerScoreInspectFn(n.keepScores), time.Second),
		pubsub.WithPeerOutboundQueueSize(peerQueue),
		pubsub.WithValidateQueueSize(validateQueue),
		pubsub.WithMaxMessageSize(maxRPCSize),
		pubsub.WithRawTracer(n.tracer),
		pubsub.WithLogger(n.log.With("component", "pubsub")),
	}
}

// MeshDegree is how many peers a node keeps in its gossip mesh of a topic (gossipsub's D): it grafts peers
// whenever it has fewer and can, and prunes back to it past twice as many.
const MeshDegree = 4

// gossipParams are gossipsub's defaults with a mesh of MeshDegree peers (4 to 8) instead of 6 (5 to 12);
// the package doc says why.
func gossipParams() pubsub.GossipSubParams {
	p := pubsub.DefaultGossipSubParams()
	p.D, p.Dlo, p.Dhi, p.Dscore, p.Dout = MeshDegree, MeshDegree, 2*MeshDegree, MeshDegree/2, 1
	return p
}

// label is the metric label of a topic: its short name when this node joined it, else "other".
func (n *Network) label(topic string) string {
	n.labels.RLock()
	defer n.labels.RUnlock()
	if l, ok := n.labels.m[topic]; ok {
		return l
	}
	return "other"
}

// scoreParams: invalid messages cost a peer dearly (one takes it to the gossip threshold, three to the
// graylist), decaying to nothing over about ten minutes; first deliveries earn a little; time in the mesh a
// little more. Mesh delivery rates are not scored: announcements are sparse, and an honest quiet mesh member
// must not look like a slacker.
func scoreParams(labels map[string]string) (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds) {
	const decayInterval = time.Second
	topics := map[string]*pubsub.TopicScoreParams{}
	for name := range labels {
		topics[name] = topicScoreParams()
	}
	params := &pubsub.PeerScoreParams{
		SkipAtomicValidation:      true,
		Topics:                    topics,
		TopicScoreCap:             50,
		AppSpecificScore:          func(peer.ID) float64 { return 0 },
		IPColocationFactorWeight:  0,
		BehaviourPenaltyWeight:    -1,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecayWithBase(10*time.Minute, decayInterval, 0.01),
		DecayInterval:             decayInterval,
		DecayToZero:               0.01,
		RetainScore:               10 * time.Minute,
	}
	thresholds := &pubsub.PeerScoreThresholds{
		GossipThreshold:             -10,
		PublishThreshold:            -50,
		GraylistThreshold:           -80,
		AcceptPXThreshold:           10,
		OpportunisticGraftThreshold: 3,
	}
	return params, thresholds
}

func topicScoreParams() *pubsub.TopicScoreParams {
	const decayInterval = time.Second
	return &pubsub.TopicScoreParams{
		SkipAtomicValidation:           true,
		TopicWeight:                    1,
		TimeInMeshWeight:               0.01,
		TimeInMeshQuantum:              time.Second,
		TimeInMeshCap:                  300,
		FirstMessageDeliveriesWeight:   0.5,
		FirstMessageDeliveriesDecay:    pubsub.ScoreParameterDecayWithBase(10*time.Minute, decayInterval, 0.01),
		FirstMessageDeliveriesCap:      20,
		InvalidMessageDeliveriesWeight: -10,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecayWithBase(10*time.Minute, decayInterval, 0.01),
	}
}

// rejection is what a validator leaves in Message.ValidatorData when it refuses a message, so the tracer can
// report the reason (pubsub itself only knows "validation failed") and the body, without decoding again.
type rejection struct {
	code string
	err  error
	view any // the decoded announcement when there was one, else nil
}

func (n *Network) validator(kind pb.Kind) pubsub.ValidatorEx {
	return func(_ context.Context, _ peer.ID, m *pubsub.Message) pubsub.ValidationResult {
		// What this node publishes (Publish, relay) comes with the announcement it made or verified.
		if v, ok := m.ValidatorData.(*announce.Verified); ok && m.Local && v.Kind == kind && bytes.Equal(v.Raw, m.Data) && !v.Expired(time.Now()) {
			return pubsub.ValidationAccept
		}
		v, err := announce.Open(m.Data, n.cfg.Network, time.Now())
		if err == nil && v.Kind != kind {
			err = &announce.Error{Code: announce.CodeWrongTopic, Detail: fmt.Sprintf("a %s announcement on the %s topic", announce.KindName(v.Kind), announce.TopicOf(kind))}
		}
		// What this node publishes itself (its own announcements, and relays of news) always goes out.
		if err == nil && m.ReceivedFrom != n.host.ID() {
			if e, ok := n.catalog.Get(v.Kind, v.Subject); ok && !v.Supersedes(e.Announcement) {
				err = &announce.Error{Code: announce.CodeStale, Detail: fmt.Sprintf("already have seq %d of %s %s", e.Seq, announce.KindName(v.Kind), v.Subject)}
			} else if !ok && !n.catalog.HasRoom(v.Kind, v.Subject, len(v.Raw)) {
				err = &announce.Error{Code: announce.CodeCatalogFull, Detail: fmt.Sprintf("the catalog has no room for another %s", announce.KindName(v.Kind))}
			}
		}
		if err != nil {
			r := rejection{code: announce.CodeOf(err), err: err}
			if v != nil {
				r.view = AnnouncementView(v)
			}
			m.ValidatorData = r
			switch {
			case announce.Ignorable(err), r.code == announce.CodeStale, r.code == announce.CodeCatalogFull:
				return pubsub.ValidationIgnore
			}
			return pubsub.ValidationReject
		}
		m.ValidatorData = v
		return pubsub.ValidationAccept
	}
}

// decodeForTrace gives a message record its body when someone asks for it: the announcement validation
// decoded, or the reason it could not.
func (n *Network) decodeForTrace(vdata any) any {
	switch d := vdata.(type) {
	case *announce.Verified:
		return AnnouncementView(d)
	case rejection:
		if d.view != nil {
			return d.view
		}
		return map[string]string{"error": d.err.Error()}
	}
	return nil
}

// AnnouncementJSON is the API's JSON form of a verified announcement.
type AnnouncementJSON struct {
	Kind      string    `json:"kind"`
	Announcer string    `json:"announcer"`
	Subject   string    `json:"subject"`
	Seq       uint64    `json:"seq"`
	IssuedAt  time.Time `json:"issued_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Body      any       `json:"body"`
}

// AnnouncementView returns the JSON form of v.
func AnnouncementView(v *announce.Verified) AnnouncementJSON {
	return AnnouncementJSON{
		Kind: announce.KindName(v.Kind), Announcer: v.Announcer.String(), Subject: v.Subject, Seq: v.Seq,
		IssuedAt: v.IssuedAt.UTC(), ExpiresAt: v.ExpiresAt.UTC(), Body: announce.View(v),
	}
}

// Host is the network's libp2p host.
func (n *Network) Host() host.Host { return n.host }

// Tracer is the gossip tracer.
func (n *Network) Tracer() *Tracer { return n.tracer }

// DHT is the network's Kademlia DHT.
func (n *Network) DHT() *dht.IpfsDHT { return n.dht }

// Publish signs body as an announcement of kind by this node, valid for ttl, and gossips it. The node's own
// subscription delivers it to its own catalog like anyone else's. It returns the announcement as published.
func (n *Network) Publish(ctx context.Context, kind pb.Kind, body proto.Message, ttl time.Duration) (*announce.Verified, error) {
	t, ok := n.topics[kind]
	if !ok {
		return nil, fmt.Errorf("p2p: no topic for kind %v", kind)
	}
	now := time.Now()
	v, err := announce.Seal(n.key, n.cfg.Network, kind, n.nextSeq(now), now, ttl, body)
	if err != nil {
		return nil, err
	}
	if err := t.Publish(ctx, v.Raw, pubsub.WithValidatorData(v)); err != nil {
		return nil, fmt.Errorf("p2p: publish %s: %w", announce.KindName(kind), err)
	}
	n.tracer.published(t.String(), MessageID(v.Raw), n.host.ID(), v, "")
	return v, nil
}

// relay republishes an announcement this node learned outside gossip (by catalog sync), byte for byte, so
// the news reaches the peers that lack it.
func (n *Network) relay(ctx context.Context, v *announce.Verified) error {
	t, ok := n.topics[v.Kind]
	if !ok {
		return fmt.Errorf("p2p: no topic for kind %v", v.Kind)
	}
	if err := t.Publish(ctx, v.Raw, pubsub.WithValidatorData(v)); err != nil {
		return err
	}
	n.tracer.published(t.String(), MessageID(v.Raw), n.host.ID(), v, "relay of news from catalog sync")
	return nil
}

// nextSeq returns the time in milliseconds, or one more than the last seq when the clock has not moved on
// (or went back), so a node's announcements are ordered even across a restart with a sane clock.
func (n *Network) nextSeq(now time.Time) uint64 {
	n.seqMu.Lock()
	defer n.seqMu.Unlock()
	seq := uint64(now.UnixMilli())
	if seq <= n.lastSeq {
		seq = n.lastSeq + 1
	}
	n.lastSeq = seq
	return seq
}

// Run runs the tracer, the topic readers, discovery and catalog sync until ctx is done, then stops pubsub and
// the DHT. It returns the first error of any part.
func (n *Network) Run(ctx context.Context) error {
	defer n.Close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.tracer.Run(ctx) })
	for k, sub := range n.subs {
		g.Go(func() error { return n.readTopic(ctx, k, sub) })
	}
	g.Go(func() error { return n.sync.run(ctx) })
	if !n.cfg.NoDiscovery {
		g.Go(func() error { return n.discover(ctx) })
	}
	return g.Wait()
}

// Close stops pubsub and the DHT. Run calls it on its way out; call it directly only when Run never ran.
func (n *Network) Close() error {
	var err error
	n.closeOnce.Do(func() {
		n.host.RemoveStreamHandler(CatalogProtocol)
		n.cancel() // stops pubsub, and with it every topic and subscription
		if n.dht != nil {
			err = n.dht.Close()
		}
	})
	return err
}

func (n *Network) readTopic(ctx context.Context, kind pb.Kind, sub *pubsub.Subscription) error {
	for {
		m, err := sub.Next(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("p2p: reading %s: %w", announce.KindName(kind), err)
		}
		v, ok := m.ValidatorData.(*announce.Verified)
		if !ok {
			// Only validated messages are delivered; anything else is a bug in the wiring.
			panic(fmt.Sprintf("p2p: delivered message %x carries no verified announcement", m.ID))
		}
		n.accept(v, m.ReceivedFrom)
	}
}

// accept hands an announcement gossip delivered to the catalog and the OnDeliver hook.
func (n *Network) accept(v *announce.Verified, from peer.ID) {
	if _, err := n.catalog.Put(v, from); err != nil {
		n.log.Warn("catalog refused an announcement", "kind", announce.KindName(v.Kind), "announcer", v.Announcer, "err", err)
	}
	if n.cfg.OnDeliver != nil {
		n.cfg.OnDeliver(v, from)
	}
}
