package p2p

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/proto"

	"github.com/shouldersnet/shoulders/internal/procstat"
	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/catalog"
	pb "github.com/shouldersnet/shoulders/proto"
)

// GossipBenchConfig describes one gossip benchmark run.
type GossipBenchConfig struct {
	Nodes    int           // hosts on loopback TCP (default 20)
	Messages int           // announcements published (default 300)
	Spacing  time.Duration // between publishes (default 10ms)
	Degree   int           // connections each node dials to random others (default 6)
	Seed     uint64        // picks the topology
	// Timeout bounds the wait for the last deliveries after the last publish (default 10s).
	Timeout time.Duration
	// Rounds runs each variant this many times, alternating them, so a drift in machine load falls on both
	// (default 3). Percentiles are over the messages of all rounds.
	Rounds int
}

func (c *GossipBenchConfig) defaults() {
	if c.Nodes == 0 {
		c.Nodes = 20
	}
	if c.Messages == 0 {
		c.Messages = 300
	}
	if c.Spacing == 0 {
		c.Spacing = 10 * time.Millisecond
	}
	if c.Degree == 0 {
		c.Degree = 6
	}
	if c.Timeout == 0 {
		c.Timeout = 10 * time.Second
	}
	if c.Rounds == 0 {
		c.Rounds = 3
	}
}

// GossipBenchResult is what one variant measured. Reach is, per message, the time from the publish call to
// the last node's delivery to its application; its percentiles are over the messages that reached every node.
type GossipBenchResult struct {
	Name      string        `json:"name"`
	ReachP50  time.Duration `json:"reach_p50_ns"`
	ReachP99  time.Duration `json:"reach_p99_ns"`
	ReachMax  time.Duration `json:"reach_max_ns"`
	Delivered float64       `json:"delivered"` // fraction of (message, node) pairs delivered
	// Latest is the fraction of (message, node) pairs where the node got the message or, in the announcement
	// layer, a newer announcement of the same announcer that made it obsolete (the layer rightly never
	// delivers an announcement once a newer one is held). For plain gossipsub it equals Delivered.
	Latest           float64 `json:"latest"`
	SendsPerDelivery float64 `json:"sends_per_delivery"`
	AppDuplicates    int     `json:"app_duplicates"` // deliveries of a message a node already had
	// CPUPerMessage is the process's CPU time from the first publish to the last delivery (or the timeout),
	// divided by the messages published: what the whole network spent per message, heartbeats included.
	CPUPerMessage time.Duration `json:"cpu_per_message_ns"`
}

// BenchGossip measures plain gossipsub with its default options and Shoulders' announcement layer on the same
// topology, alternating them for cfg.Rounds rounds in this process, and returns [plain, shoulders].
func BenchGossip(ctx context.Context, cfg GossipBenchConfig) ([]GossipBenchResult, error) {
	cfg.defaults()
	if cfg.Nodes < 2 || cfg.Degree >= cfg.Nodes {
		return nil, fmt.Errorf("p2p: bench needs at least 2 nodes and a degree below the node count (got %d nodes, degree %d)", cfg.Nodes, cfg.Degree)
	}
	variants := []struct {
		name string
		rig  func(context.Context, GossipBenchConfig, deliverFn) (rig, error)
		acc  benchRun
	}{{name: "plain gossipsub (defaults)", rig: newPlainRig}, {name: "shoulders announcements", rig: newShouldersRig}}
	for range cfg.Rounds {
		for i := range variants {
			run, err := runGossipBench(ctx, cfg, variants[i].rig)
			if err != nil {
				return nil, fmt.Errorf("p2p: bench %s: %w", variants[i].name, err)
			}
			variants[i].acc.add(run)
		}
	}
	out := make([]GossipBenchResult, len(variants))
	for i, v := range variants {
		out[i] = v.acc.result(v.name)
	}
	return out, nil
}

// benchRun is what one or more runs of a variant measured.
type benchRun struct {
	reach      []time.Duration // per message that reached every node
	delivered  int64
	latest     int64
	expected   int64
	sends      uint64
	duplicates int
	published  int
	cpu        time.Duration // from the first publish to the last delivery or the timeout
}

func (b *benchRun) add(o benchRun) {
	b.reach = append(b.reach, o.reach...)
	b.delivered += o.delivered
	b.latest += o.latest
	b.expected += o.expected
	b.sends += o.sends
	b.duplicates += o.duplicates
	b.published += o.published
	b.cpu += o.cpu
}

func (b *benchRun) result(name string) GossipBenchResult {
	res := GossipBenchResult{Name: name, AppDuplicates: b.duplicates}
	reach := slices.Sorted(slices.Values(b.reach))
	if len(reach) > 0 {
		res.ReachP50 = reach[len(reach)*50/100]
		res.ReachP99 = reach[min(len(reach)-1, len(reach)*99/100)]
		res.ReachMax = reach[len(reach)-1]
	}
	if b.expected > 0 {
		res.Delivered = float64(b.delivered) / float64(b.expected)
		res.Latest = float64(b.latest) / float64(b.expected)
	}
	if b.delivered > 0 {
		res.SendsPerDelivery = float64(b.sends) / float64(b.delivered)
	}
	if b.published > 0 {
		res.CPUPerMessage = b.cpu / time.Duration(b.published)
	}
	return res
}

// rig is one variant's nodes: publish sends message i from node, and every node calls deliver(node, i) when
// its application receives message i.
type rig interface {
	hosts() []host.Host
	// supersedes says whether a newer message from a publisher makes its older ones obsolete.
	supersedes() bool
	// waitMesh blocks until node's mesh holds at least want peers, or ctx ends.
	waitMesh(ctx context.Context, node, want int) error
	// meshLow is the mesh size at which the bench counts a node's mesh as formed (with as many peers).
	meshLow() int
	publish(ctx context.Context, node, i int) error
	sends() uint64
	close()
}

type deliverFn func(node, i int)

func runGossipBench(ctx context.Context, cfg GossipBenchConfig, newRig func(context.Context, GossipBenchConfig, deliverFn) (rig, error)) (benchRun, error) {
	var res benchRun
	var mu sync.Mutex
	start := make([]time.Time, cfg.Messages)
	got := make([][]time.Time, cfg.Messages) // per message, per node: first delivery
	for i := range got {
		got[i] = make([]time.Time, cfg.Nodes)
	}
	var delivered atomic.Int64
	allIn := make(chan struct{})
	var allOnce sync.Once
	deliver := func(node, i int) {
		now := time.Now()
		mu.Lock()
		defer mu.Unlock()
		if i < 0 || i >= cfg.Messages {
			return
		}
		if !got[i][node].IsZero() {
			res.duplicates++
			return
		}
		got[i][node] = now
		if delivered.Add(1) == int64(cfg.Messages*(cfg.Nodes-1)) {
			allOnce.Do(func() { close(allIn) })
		}
	}
	r, err := newRig(ctx, cfg, deliver)
	if err != nil {
		return res, err
	}
	defer r.close()

	// Topology: every node dials Degree distinct random others (the same for every variant with one seed).
	rng := mrand.New(mrand.NewPCG(cfg.Seed, 1))
	hs := r.hosts()
	for a := range hs {
		for _, b := range rng.Perm(len(hs))[:cfg.Degree+1] {
			if b == a || hs[a].Network().Connectedness(hs[b].ID()) == network.Connected {
				continue
			}
			if err := hs[a].Connect(ctx, peer.AddrInfo{ID: hs[b].ID(), Addrs: hs[b].Addrs()}); err != nil {
				return res, fmt.Errorf("connecting: %w", err)
			}
		}
	}
	// Wait for every mesh to form (bounded): a node's mesh fills at its gossipsub heartbeats.
	mctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	for i := range hs {
		if err := r.waitMesh(mctx, i, min(r.meshLow(), len(hs[i].Network().Peers()))); err != nil {
			return res, fmt.Errorf("node %d's mesh did not form: %w", i, err)
		}
	}

	sendsBefore := r.sends()
	cpuBefore := procstat.CPUTime()
	tick := time.NewTicker(cfg.Spacing)
	defer tick.Stop()
	// Publishers take turns, so one node's announcements are Nodes×Spacing apart: close enough for many in
	// flight at once, far enough apart that a node's newer announcement does not overtake its older one (the
	// layer rightly stops forwarding an announcement superseded by a newer one of the same subject).
	for i := range cfg.Messages {
		node := i % cfg.Nodes
		mu.Lock()
		start[i] = time.Now()
		got[i][node] = start[i] // the publisher has it
		mu.Unlock()
		if err := r.publish(ctx, node, i); err != nil {
			return res, err
		}
		select {
		case <-ctx.Done():
			return res, ctx.Err()
		case <-tick.C:
		}
	}
	select {
	case <-allIn:
	case <-time.After(cfg.Timeout):
	case <-ctx.Done():
		return res, ctx.Err()
	}
	res.sends = r.sends() - sendsBefore
	res.cpu = procstat.CPUTime() - cpuBefore
	res.published = cfg.Messages

	mu.Lock()
	defer mu.Unlock()
	for i := range cfg.Messages {
		last, complete := time.Duration(0), true
		for _, at := range got[i] {
			if at.IsZero() {
				complete = false
				continue
			}
			last = max(last, at.Sub(start[i]))
		}
		if complete {
			res.reach = append(res.reach, last)
		}
	}
	res.delivered = delivered.Load()
	res.expected = int64(cfg.Messages * (cfg.Nodes - 1))
	// Latest: delivered, or (where newer supersedes older) a later message of the same publisher delivered.
	for i := range cfg.Messages {
		for node := range cfg.Nodes {
			if node == i%cfg.Nodes {
				continue // the publisher
			}
			for k := i; k < cfg.Messages; k += cfg.Nodes {
				if !got[k][node].IsZero() {
					res.latest++
					break
				}
				if !r.supersedes() {
					break
				}
			}
		}
	}
	return res, nil
}

func benchHosts(n int) ([]host.Host, []crypto.PrivKey, error) {
	var hs []host.Host
	var keys []crypto.PrivKey
	for range n {
		k, _, err := crypto.GenerateEd25519Key(rand.Reader)
		if err != nil {
			return nil, nil, err
		}
		h, err := NewHost(HostConfig{Key: k, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
		if err != nil {
			for _, h := range hs {
				h.Close()
			}
			return nil, nil, err
		}
		hs, keys = append(hs, h), append(keys, k)
	}
	return hs, keys, nil
}

// --- plain gossipsub with default options ---

type plainRig struct {
	hs     []host.Host
	topics []*pubsub.Topic
	count  []*countingTracer
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

const plainTopic = "/bench/plain/1"

func newPlainRig(ctx context.Context, cfg GossipBenchConfig, deliver deliverFn) (rig, error) {
	hs, _, err := benchHosts(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &plainRig{hs: hs, cancel: cancel}
	for i, h := range hs {
		ct := &countingTracer{mesh: map[peer.ID]bool{}, changed: make(chan struct{})}
		// The tracer only counts; every protocol option stays at gossipsub's default.
		ps, err := pubsub.NewGossipSub(ctx, h, pubsub.WithRawTracer(ct))
		if err != nil {
			r.close()
			return nil, err
		}
		t, err := ps.Join(plainTopic)
		if err != nil {
			r.close()
			return nil, err
		}
		sub, err := t.Subscribe()
		if err != nil {
			r.close()
			return nil, err
		}
		r.topics, r.count = append(r.topics, t), append(r.count, ct)
		r.wg.Go(func() {
			for {
				m, err := sub.Next(ctx)
				if err != nil {
					return
				}
				if m.ReceivedFrom != h.ID() && len(m.Data) >= 8 {
					deliver(i, int(binary.BigEndian.Uint64(m.Data)))
				}
			}
		})
	}
	return r, nil
}

func (r *plainRig) hosts() []host.Host { return r.hs }
func (r *plainRig) supersedes() bool   { return false }
func (r *plainRig) meshLow() int       { return 4 } // gossipsub's default mesh is 5 to 12
func (r *plainRig) waitMesh(ctx context.Context, i, want int) error {
	c := r.count[i]
	for {
		c.mu.Lock()
		size, changed := len(c.mesh), c.changed
		c.mu.Unlock()
		if size >= want {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}
func (r *plainRig) publish(ctx context.Context, node, i int) error {
	// The same size as a signed worker offer (about 200 bytes), numbered.
	data := make([]byte, 200)
	binary.BigEndian.PutUint64(data, uint64(i))
	rand.Read(data[8:])
	return r.topics[node].Publish(ctx, data)
}
func (r *plainRig) sends() uint64 {
	var n uint64
	for _, c := range r.count {
		n += c.sent.Load()
	}
	return n
}
func (r *plainRig) close() {
	r.cancel()
	r.wg.Wait()
	for _, h := range r.hs {
		h.Close()
	}
}

// countingTracer counts published messages sent and tracks the mesh of the one topic.
type countingTracer struct {
	sent    atomic.Uint64
	mu      sync.Mutex
	mesh    map[peer.ID]bool
	changed chan struct{} // closed and replaced at every mesh change
}

func (c *countingTracer) meshChangedLocked() {
	close(c.changed)
	c.changed = make(chan struct{})
}

func (c *countingTracer) SendRPC(rpc *pubsub.RPC, _ peer.ID) {
	c.sent.Add(uint64(len(rpc.GetPublish())))
}
func (c *countingTracer) Graft(p peer.ID, _ string) {
	c.mu.Lock()
	c.mesh[p] = true
	c.meshChangedLocked()
	c.mu.Unlock()
}
func (c *countingTracer) Prune(p peer.ID, _ string) {
	c.mu.Lock()
	delete(c.mesh, p)
	c.meshChangedLocked()
	c.mu.Unlock()
}
func (c *countingTracer) OnClosedOutboundStream(p peer.ID)         { c.Prune(p, "") }
func (c *countingTracer) OnNewOutboundStream(peer.ID, protocol.ID) {}
func (c *countingTracer) Join(string)                              {}
func (c *countingTracer) Leave(string)                             {}
func (c *countingTracer) ValidateMessage(*pubsub.Message)          {}
func (c *countingTracer) DeliverMessage(*pubsub.Message)           {}
func (c *countingTracer) RejectMessage(*pubsub.Message, string)    {}
func (c *countingTracer) DuplicateMessage(*pubsub.Message)         {}
func (c *countingTracer) ThrottlePeer(peer.ID)                     {}
func (c *countingTracer) RecvRPC(*pubsub.RPC)                      {}
func (c *countingTracer) DropRPC(*pubsub.RPC, peer.ID)             {}
func (c *countingTracer) UndeliverableMessage(*pubsub.Message)     {}

// --- Shoulders' announcement layer ---

type shouldersRig struct {
	hs     []host.Host
	nets   []*Network
	dbs    []*pebble.DB
	grafts []*Subscription
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newShouldersRig(ctx context.Context, cfg GossipBenchConfig, deliver deliverFn) (rig, error) {
	hs, _, err := benchHosts(cfg.Nodes)
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(ctx)
	r := &shouldersRig{hs: hs, cancel: cancel}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	for i, h := range hs {
		db, err := pebble.Open("bench", &pebble.Options{FS: vfs.NewMem(), Logger: quietPebble{}})
		if err != nil {
			r.close()
			return nil, err
		}
		r.dbs = append(r.dbs, db)
		cat, err := catalog.Open(db, catalog.Config{Network: "bench", Now: time.Now, Log: log})
		if err != nil {
			r.close()
			return nil, err
		}
		n, err := New(h, cat, Config{
			Network: "bench", Log: log, NoDiscovery: true,
			OnDeliver: func(v *announce.Verified, _ peer.ID) {
				if v.Announcer == h.ID() {
					return // the publisher's own copy
				}
				var idx int
				if _, err := fmt.Sscanf(v.Body.(*pb.WorkerOffer).Version, "bench-%d", &idx); err == nil {
					deliver(i, idx)
				}
			},
		})
		if err != nil {
			r.close()
			return nil, err
		}
		grafts, _, err := n.Tracer().Subscribe(Filter{Types: []string{EventGraft, EventPrune}}, 0)
		if err != nil {
			r.close()
			return nil, err
		}
		r.nets, r.grafts = append(r.nets, n), append(r.grafts, grafts)
		r.wg.Go(func() { n.Run(ctx) })
		r.wg.Go(func() { cat.Run(ctx, time.Minute) }) // as a node runs it: it writes to the store
	}
	return r, nil
}

func (r *shouldersRig) hosts() []host.Host { return r.hs }
func (r *shouldersRig) supersedes() bool   { return true }
func (r *shouldersRig) meshLow() int       { return gossipParams().Dlo }
func (r *shouldersRig) waitMesh(ctx context.Context, i, want int) error {
	topic := TopicName("bench", pb.Kind_KIND_WORKER_OFFER)
	for len(r.nets[i].Tracer().Mesh(topic)) < want {
		select {
		case <-r.grafts[i].C:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	return nil
}

// publish announces a worker offer from node through the layer's own Publish; the offer's version string
// numbers it.
func (r *shouldersRig) publish(ctx context.Context, node, i int) error {
	offer := proto.CloneOf(benchOffer)
	offer.Version = fmt.Sprintf("bench-%d", i)
	_, err := r.nets[node].Publish(ctx, pb.Kind_KIND_WORKER_OFFER, offer, time.Minute)
	return err
}

var benchOffer = &pb.WorkerOffer{
	Addrs: []string{"/ip4/127.0.0.1/tcp/4001"}, Roles: []string{"client", "worker"}, CpuCores: 16,
	MemoryBytes: 64 << 30, Executors: []string{"builtin", "docker"}, Version: "bench",
}

func (r *shouldersRig) sends() uint64 {
	var n uint64
	for _, net := range r.nets {
		n += net.Tracer().MessagesSent()
	}
	return n
}
func (r *shouldersRig) close() {
	r.cancel()
	r.wg.Wait()
	for _, h := range r.hs {
		h.Close()
	}
	for _, db := range r.dbs {
		db.Close()
	}
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf(format, args...))
}
