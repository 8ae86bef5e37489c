package node

import (
	"context"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/control"
	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"

	"github.com/shouldersnet/shoulders/compute"
	"github.com/shouldersnet/shoulders/p2p"
	pb "github.com/shouldersnet/shoulders/proto"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testCaps keeps tests from probing the machine (nvidia-smi, Docker) for every node.
var testCaps = &compute.Capabilities{CPUCores: 2, MemoryBytes: 4 << 30, GPUs: []compute.GPU{}, Executors: []string{"builtin"}}

// initHome makes a node home for a test node on loopback, with ports chosen by the kernel.
func initHome(t testing.TB, dir string, bootstrap []string, interval string) string {
	t.Helper()
	_, err := Init(InitOptions{Home: dir, Network: "test", Listen: []string{"/ip4/127.0.0.1/tcp/0"}, API: "127.0.0.1:0", Bootstrap: bootstrap})
	if err != nil {
		t.Fatal(err)
	}
	if interval != "" {
		cfg, err := LoadConfig(dir)
		if err != nil {
			t.Fatal(err)
		}
		cfg.Config.AnnounceInterval = interval
		if err := SaveConfig(dir, cfg.Config); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// running is a node started by a test; stop (or the test's end) stops it and checks Run returned cleanly.
type running struct {
	*Node
	cancel context.CancelFunc
	done   chan error
	once   sync.Once
}

func start(t testing.TB, home string, opts Options) *running {
	t.Helper()
	if opts.Log == nil {
		opts.Log = quiet
	}
	if opts.Capabilities == nil {
		opts.Capabilities = testCaps
	}
	n, err := Open(context.Background(), home, opts)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{Node: n, cancel: cancel, done: make(chan error, 1)}
	go func() { r.done <- n.Run(ctx) }()
	t.Cleanup(func() { r.stop(t) })
	return r
}

func (r *running) stop(t testing.TB) {
	r.once.Do(func() {
		r.cancel()
		select {
		case err := <-r.done:
			if err != nil {
				t.Errorf("node %s: Run: %v", r.ID(), err)
			}
		case <-time.After(30 * time.Second):
			t.Errorf("node %s did not stop within 30s", r.ID())
		}
	})
}

// waitUntil re-checks cond whenever a node's catalog or gossip mesh changes or a connection of one of hosts
// opens or closes,
// and fails the test if cond is still false after timeout. It never sleeps.
func waitUntil(t testing.TB, timeout time.Duration, nodes []*running, hosts []host.Host, what string, cond func() bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	defer func() { cancel(); wg.Wait() }()
	wake := make(chan struct{}, 1)
	notify := func() {
		select {
		case wake <- struct{}{}:
		default:
		}
	}
	for _, n := range nodes {
		// Take the channel now, before cond is first checked, or a change in between would be missed; after
		// it fires, take the next one before notifying, for the same reason.
		changed := n.Catalog().Changed()
		wg.Go(func() {
			for {
				select {
				case <-changed:
					changed = n.Catalog().Changed()
					notify()
				case <-ctx.Done():
					return
				}
			}
		})
		trace, _, err := n.Network().Tracer().Subscribe(p2p.Filter{Types: []string{p2p.EventGraft, p2p.EventPrune, p2p.EventRemovePeer}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer n.Network().Tracer().Unsubscribe(trace)
			for {
				select {
				case <-trace.C:
					notify()
				case <-ctx.Done():
					return
				}
			}
		})
	}
	for _, h := range hosts {
		sub, err := h.EventBus().Subscribe(new(event.EvtPeerConnectednessChanged))
		if err != nil {
			t.Fatal(err)
		}
		wg.Go(func() {
			defer sub.Close()
			for {
				select {
				case <-sub.Out():
					notify()
				case <-ctx.Done():
					return
				}
			}
		})
	}
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	for !cond() {
		select {
		case <-wake:
		case <-deadline.C:
			counts := ""
			for i, n := range nodes {
				counts += fmt.Sprintf(" n%d:%d/%d", i, len(n.Catalog().List(pb.Kind_KIND_WORKER_OFFER)), len(n.Host().Network().Peers()))
			}
			t.Fatalf("after %v: %s (offers/peers:%s)", timeout, what, counts)
		}
	}
}

func hostsOf(nodes []*running) []host.Host {
	out := make([]host.Host, len(nodes))
	for i, n := range nodes {
		out[i] = n.Host()
	}
	return out
}

// Five nodes on loopback TCP; only the first is anyone's bootstrap peer. The others must find each other
// through the DHT, connect, and hear every worker offer. Then one restarts: same identity, catalog kept.
func TestFiveNodesFindEachOtherThroughOneBootstrapPeer(t *testing.T) {
	dir := t.TempDir()
	nodes := []*running{start(t, initHome(t, filepath.Join(dir, "n0"), nil, ""), Options{})}
	bootstrap := nodes[0].Addrs()[:1]
	for i := 1; i < 5; i++ {
		nodes = append(nodes, start(t, initHome(t, filepath.Join(dir, fmt.Sprint("n", i)), bootstrap, ""), Options{}))
	}
	allConnected := func() bool {
		for _, n := range nodes {
			if len(n.Host().Network().Peers()) < 3 || len(n.Catalog().List(pb.Kind_KIND_WORKER_OFFER)) != 5 {
				return false
			}
		}
		return true
	}
	waitUntil(t, 60*time.Second, nodes, hostsOf(nodes), "every node connected to ≥3 others and holding all 5 offers", allConnected)
	// Everyone's offer describes its announcer as a worker with the machine it runs on.
	for _, e := range nodes[2].Catalog().List(pb.Kind_KIND_WORKER_OFFER) {
		o := e.Announcement.Body.(*pb.WorkerOffer)
		if o.CpuCores != testCaps.CPUCores || len(o.Addrs) == 0 || o.Roles[1] != "worker" {
			t.Fatalf("offer of %s: %+v", e.Announcer, o)
		}
	}

	// Restart node 3: it keeps its peer ID and, before hearing anything, still knows all five offers; then
	// it runs again and finds its way back into the network.
	id := nodes[3].ID()
	nodes[3].stop(t)
	reopened, err := Open(context.Background(), filepath.Join(dir, "n3"), Options{Log: quiet, Capabilities: testCaps})
	if err != nil {
		t.Fatal(err)
	}
	if reopened.ID() != id {
		reopened.close()
		t.Fatalf("restarted with peer ID %s, was %s", reopened.ID(), id)
	}
	if got := len(reopened.Catalog().List(pb.Kind_KIND_WORKER_OFFER)); got != 5 {
		reopened.close()
		t.Fatalf("catalog after restart holds %d offers, want 5", got)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- reopened.Run(ctx) }()
	nodes[3] = &running{Node: reopened, cancel: cancel, done: done}
	t.Cleanup(func() { nodes[3].stop(t) })
	waitUntil(t, 60*time.Second, nodes, hostsOf(nodes), "the restarted node is connected to ≥3 others again", func() bool {
		return len(reopened.Host().Network().Peers()) >= 3
	})
}

// partition is a connection gater shared by a set of test hosts: while it is cut, no connection between the
// two sides can be dialled or accepted.
type partition struct {
	mu   sync.Mutex
	side map[peer.ID]int
	cut  bool
}

func (p *partition) blocked(a, b peer.ID) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.cut && p.side[a] != p.side[b]
}

func (p *partition) set(cut bool) {
	p.mu.Lock()
	p.cut = cut
	p.mu.Unlock()
}

// gater is one host's view of the partition.
type gater struct {
	self peer.ID
	p    *partition
}

func (g gater) InterceptPeerDial(p peer.ID) bool                 { return !g.p.blocked(g.self, p) }
func (g gater) InterceptAddrDial(p peer.ID, _ ma.Multiaddr) bool { return !g.p.blocked(g.self, p) }
func (g gater) InterceptAccept(network.ConnMultiaddrs) bool      { return true }
func (g gater) InterceptSecured(_ network.Direction, p peer.ID, _ network.ConnMultiaddrs) bool {
	return !g.p.blocked(g.self, p)
}
func (g gater) InterceptUpgraded(network.Conn) (bool, control.DisconnectReason) { return true, 0 }

// gatedNode is a node on loopback TCP behind the partition gater, with discovery and anti-entropy off: the
// test makes every connection, and only gossip and the catalog pull on joining a topic carry announcements.
func gatedNode(t testing.TB, dir string, part *partition, side int) *running {
	t.Helper()
	home := initHome(t, dir, nil, "20m")
	key, err := LoadKey(filepath.Join(home, KeyFile))
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(key)
	part.mu.Lock()
	part.side[id] = side
	part.mu.Unlock()
	h, err := p2p.NewHost(p2p.HostConfig{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}, Gater: gater{id, part}})
	if err != nil {
		t.Fatal(err)
	}
	return start(t, home, Options{Host: h, NoDiscovery: true, SyncInterval: -1})
}

// Thirty nodes gossiping: every offer reaches every node by gossip; a partition splits them into halves that
// keep gossiping inside; after it heals, each half catches up with what the other announced meanwhile, long
// before anyone announces again.
//
// The nodes are real hosts on loopback TCP, not mocknet: on mocknet, gossipsub re-opens its stream to a peer
// whose connection is closing, mocknet hands it the closing connection, and the stream it makes is never
// reset, so gossip leaks across any partition made by closing connections.
func TestThirtyNodesGossipThroughAPartition(t *testing.T) {
	if testing.Short() {
		t.Skip("30 nodes: skipped in -short mode")
	}
	const total, half = 30, 15
	part := &partition{side: map[peer.ID]int{}}
	dir := t.TempDir()
	nodes := make([]*running, total)
	for i := range nodes {
		nodes[i] = gatedNode(t, filepath.Join(dir, fmt.Sprint("n", i)), part, i/half)
	}
	// Inside each half: a ring plus chords (four neighbours each). Across: five links.
	type link struct{ a, b int }
	var inside, across []link
	for base := 0; base < total; base += half {
		for i := range half {
			inside = append(inside, link{base + i, base + (i+1)%half}, link{base + i, base + (i+5)%half})
		}
	}
	for i := range 5 {
		across = append(across, link{i * 3, half + i*3})
	}
	neighbours := make([]int, total)
	for _, l := range append(inside, across...) {
		neighbours[l.a]++
		neighbours[l.b]++
	}
	connect := func(links []link) {
		for _, l := range links {
			b := nodes[l.b]
			if err := nodes[l.a].Host().Connect(context.Background(), peer.AddrInfo{ID: b.ID(), Addrs: b.Host().Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
	connect(inside)
	connect(across)
	topic := p2p.TopicName("test", pb.Kind_KIND_WORKER_OFFER)
	waitUntil(t, 60*time.Second, nodes, nil, "every node's mesh holds its neighbours, up to the mesh degree", func() bool {
		for i, n := range nodes {
			if len(n.Network().Tracer().Mesh(topic)) < min(neighbours[i], p2p.MeshDegree) {
				return false
			}
		}
		return true
	})

	// seesAll reports whether viewer holds, for every node in from, an offer at least as new as seqs[node].
	seesAll := func(viewer *running, from []*running, seqs map[peer.ID]uint64) bool {
		for _, n := range from {
			e, ok := viewer.Catalog().Get(pb.Kind_KIND_WORKER_OFFER, n.ID().String())
			if !ok || e.Seq < seqs[n.ID()] {
				return false
			}
		}
		return true
	}
	everyoneSees := func(viewers, from []*running, seqs map[peer.ID]uint64) func() bool {
		return func() bool {
			for _, v := range viewers {
				if !seesAll(v, from, seqs) {
					return false
				}
			}
			return true
		}
	}
	publishAll := func() (map[peer.ID]uint64, []string) {
		seqs := map[peer.ID]uint64{}
		var ids []string
		for _, n := range nodes {
			v, err := n.publishOffer(context.Background())
			if err != nil {
				t.Fatal(err)
			}
			seqs[n.ID()] = v.Seq
			ids = append(ids, hex.EncodeToString([]byte(p2p.MessageID(v.Raw))))
		}
		return seqs, ids
	}

	seqs, ids := publishAll()
	waitUntil(t, 60*time.Second, nodes, nil, "every fresh offer reaches every node", everyoneSees(nodes, nodes, seqs))
	// ... and it came by gossip: every node's trace has every other node's message as delivered (the trace
	// records events on its own goroutine, so it may record them a little after the catalog took them).
	for _, n := range nodes {
		tracer := n.Network().Tracer()
		recorded, _, err := tracer.Subscribe(p2p.Filter{Types: []string{p2p.EventDeliver, p2p.EventPublish}}, 0)
		if err != nil {
			t.Fatal(err)
		}
		deadline := time.After(30 * time.Second)
		for i, id := range ids {
			for {
				rec, ok := tracer.Message(id)
				if ok && (rec.Status == "delivered" || nodes[i] == n) {
					break
				}
				select {
				case <-recorded.C:
				case <-deadline:
					t.Fatalf("node %s: message %s of node %d: %+v", n.ID(), id, i, rec)
				}
			}
		}
		tracer.Unsubscribe(recorded)
	}

	// Partition: the gater refuses every connection across, and the links across are closed.
	part.set(true)
	for _, l := range across {
		nodes[l.a].Host().Network().ClosePeer(nodes[l.b].ID())
		nodes[l.b].Host().Network().ClosePeer(nodes[l.a].ID())
	}
	subscribed := func(viewer, p *running) bool {
		for _, tp := range viewer.Network().Topics() {
			if slices.Contains(tp.Subscribers, p.ID().String()) {
				return true
			}
		}
		return false
	}
	waitUntil(t, 30*time.Second, nodes, hostsOf(nodes), "the partition takes effect on both sides", func() bool {
		for _, l := range across {
			a, b := nodes[l.a], nodes[l.b]
			if len(a.Host().Network().ConnsToPeer(b.ID())) > 0 || len(b.Host().Network().ConnsToPeer(a.ID())) > 0 ||
				subscribed(a, b) || subscribed(b, a) {
				return false
			}
		}
		return true
	})
	left, right := nodes[:half], nodes[half:]
	seqs, _ = publishAll()
	waitUntil(t, 60*time.Second, nodes, nil, "each half hears its own offers during the partition", func() bool {
		return everyoneSees(left, left, seqs)() && everyoneSees(right, right, seqs)()
	})
	for _, v := range right {
		for _, n := range left {
			if e, _ := v.Catalog().Get(pb.Kind_KIND_WORKER_OFFER, n.ID().String()); e.Seq >= seqs[n.ID()] {
				t.Fatalf("an offer crossed the partition: %s saw %s's seq %d", v.ID(), n.ID(), e.Seq)
			}
		}
	}

	// Heal and reconnect. Each half must catch up with the other's partition-time offers without waiting for
	// the next announcement (20 minutes away) and without anti-entropy (off): the nodes at the ends of the
	// new links pull each other's catalogs and relay the news into their halves.
	part.set(false)
	connect(across)
	waitUntil(t, 60*time.Second, nodes, nil, "both halves catch up after the partition heals", everyoneSees(nodes, nodes, seqs))
}
