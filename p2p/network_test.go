package p2p

import (
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	mocknet "github.com/libp2p/go-libp2p/p2p/net/mock"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/catalog"
	pb "github.com/shouldersnet/shoulders/proto"
)

const testNetwork = "test"

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

var mockAddrs atomic.Uint32

// addHost adds a mocknet host; mocknet opens no sockets, but the addresses are loopback ones all the same.
func addHost(t testing.TB, mn mocknet.Mocknet, key crypto.PrivKey) host.Host {
	t.Helper()
	i := mockAddrs.Add(1)
	h, err := mn.AddPeer(key, ma.StringCast(fmt.Sprintf("/ip4/127.0.%d.%d/tcp/4001", i/250, 1+i%250)))
	if err != nil {
		t.Fatal(err)
	}
	return h
}

// startNetwork runs a Network on h until the test ends.
func startNetwork(t testing.TB, h host.Host) *Network {
	t.Helper()
	return startNetworkWith(t, h, Config{})
}

func startNetworkWith(t testing.TB, h host.Host, cfg Config) *Network {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: vfs.NewMem(), Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(db, time.Now, quiet)
	if err != nil {
		t.Fatal(err)
	}
	cfg.Network, cfg.Log, cfg.NoDiscovery = testNetwork, quiet, true
	n, err := New(h, cat, cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Run: %v", err)
		}
		db.Close()
	})
	return n
}

// rawPubSub is a peer that speaks plain gossipsub, with none of our checks: the attacker's side.
func rawPubSub(t testing.TB, h host.Host, opts ...pubsub.Option) *pubsub.Topic {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	ps, err := pubsub.NewGossipSub(ctx, h, opts...)
	if err != nil {
		t.Fatal(err)
	}
	topic, err := ps.Join(TopicName(testNetwork, pb.Kind_KIND_WORKER_OFFER))
	if err != nil {
		t.Fatal(err)
	}
	return topic
}

// waitForPeer blocks until topic's pubsub knows p subscribes to it.
func waitForPeer(t testing.TB, topic *pubsub.Topic, p peer.ID) {
	t.Helper()
	ev, err := topic.EventHandler()
	if err != nil {
		t.Fatal(err)
	}
	defer ev.Cancel()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for _, q := range topic.ListPeers() {
		if q == p {
			return
		}
	}
	for {
		e, err := ev.NextPeerEvent(ctx)
		if err != nil {
			t.Fatalf("peer %s never joined %s: %v", p, topic, err)
		}
		if e.Type == pubsub.PeerJoin && e.Peer == p {
			return
		}
	}
}

func offer() *pb.WorkerOffer {
	return &pb.WorkerOffer{Roles: []string{"client", "worker"}, CpuCores: 2, Version: "test"}
}

func signed(t testing.TB, key crypto.PrivKey, seq uint64) []byte {
	t.Helper()
	raw, err := announce.Sign(key, pb.Kind_KIND_WORKER_OFFER, seq, time.Now(), time.Minute, offer())
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// signedRaw signs any body, even one Sign would refuse: what a buggy or hostile peer can send.
func signedRaw(t testing.TB, key crypto.PrivKey, seq uint64, body *pb.WorkerOffer) []byte {
	t.Helper()
	author, _ := peer.IDFromPrivateKey(key)
	b, _ := proto.Marshal(body)
	ann, _ := proto.Marshal(&pb.Announcement{Kind: pb.Kind_KIND_WORKER_OFFER, Announcer: []byte(author), Seq: seq,
		IssuedAtMs: time.Now().UnixMilli(), ExpiresAtMs: time.Now().Add(time.Minute).UnixMilli(), Body: b})
	sig, _ := key.Sign(append([]byte(announce.SigningDomain), ann...))
	out, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: ann, Signature: sig})
	return out
}

// misSigned is an announcement that claims author but carries a signature by another key.
func misSigned(t testing.TB, author peer.ID) []byte {
	t.Helper()
	body, _ := proto.Marshal(offer())
	ann, _ := proto.Marshal(&pb.Announcement{Kind: pb.Kind_KIND_WORKER_OFFER, Announcer: []byte(author), Seq: 1,
		IssuedAtMs: time.Now().UnixMilli(), ExpiresAtMs: time.Now().Add(time.Minute).UnixMilli(), Body: body})
	sig, _ := newKey(t).Sign(append([]byte(announce.SigningDomain), ann...))
	out, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: ann, Signature: sig})
	return out
}

func TestMaliciousPeersAreRejectedTracedAndScoredDown(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	honestKey, goodKey := newKey(t), newKey(t)
	hHonest, hGood := addHost(t, mn, honestKey), addHost(t, mn, goodKey)
	m3Key := newKey(t)
	hM1, hM2, hM3 := addHost(t, mn, newKey(t)), addHost(t, mn, newKey(t)), addHost(t, mn, m3Key)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	honest, good := startNetwork(t, hHonest), startNetwork(t, hGood)
	m1 := rawPubSub(t, hM1)
	m2 := rawPubSub(t, hM2, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor())
	m3 := rawPubSub(t, hM3)

	sub, _, err := honest.Tracer().Subscribe(Filter{Types: []string{EventReject}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Tracer().Unsubscribe(sub)
	for _, h := range []host.Host{hGood, hM1, hM2, hM3} {
		if _, err := mn.ConnectPeers(hHonest.ID(), h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []*pubsub.Topic{m1, m2, m3} {
		waitForPeer(t, topic, hHonest.ID())
	}

	ctx := context.Background()
	type bad struct {
		from  peer.ID
		topic *pubsub.Topic
		data  []byte
		want  string // prefix of the reject reason
	}
	attacks := []bad{
		{hM1.ID(), m1, []byte("this is not an announcement"), announce.CodeMalformed + ": "},
		{hM1.ID(), m1, misSigned(t, hM1.ID()), announce.CodeBadSignature + ": "},
		{hM3.ID(), m3, signedRaw(t, m3Key, 1, &pb.WorkerOffer{Roles: []string{"emperor"}, CpuCores: 1, Version: "x"}), announce.CodeInvalidBody + ": "},
		{hM3.ID(), m3, make([]byte, announce.MaxSize+1), announce.CodeOversized + ": "},
		{hM2.ID(), m2, signed(t, newKey(t), 1), pubsub.RejectMissingSignature},
	}
	for _, a := range attacks {
		if err := a.topic.Publish(ctx, a.data); err != nil {
			t.Fatal(err)
		}
	}

	deadline := time.After(30 * time.Second)
	seen := map[string]Event{}
	for len(seen) < len(attacks) {
		select {
		case e := <-sub.C:
			for _, a := range attacks {
				if strings.HasPrefix(e.Reason, a.want) && e.Peer == a.from.String() {
					seen[a.want] = e
				}
			}
		case <-deadline:
			t.Fatalf("rejects traced: %v; want one for each of %d attacks", seen, len(attacks))
		}
	}
	// The message record keeps the reason and who sent it.
	e := seen[announce.CodeBadSignature+": "]
	rec, ok := honest.Tracer().Message(e.MsgID)
	if !ok || rec.Status != "rejected" || !strings.HasPrefix(rec.Reason, "bad_signature") || rec.Receipts[0].Peer != hM1.ID().String() {
		t.Fatalf("message record of the mis-signed announcement: %+v", rec)
	}

	// The peers that sent invalid messages are scored below zero; the good peer is not.
	waitScores(t, honest, func(s Scores) bool {
		byPeer := map[string]PeerScore{}
		for _, p := range s.Peers {
			byPeer[p.Peer] = p
		}
		return byPeer[hM1.ID().String()].Score < 0 && byPeer[hM3.ID().String()].Score < 0 &&
			byPeer[hM2.ID().String()].Score < 0 && byPeer[hGood.ID().String()].Score >= 0
	})

	// Nothing bad reached the catalog, and the node still takes good announcements.
	changed := honest.catalog.Changed()
	if _, err := good.Publish(ctx, pb.Kind_KIND_WORKER_OFFER, offer(), time.Minute); err != nil {
		t.Fatal(err)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("a good announcement after the attacks never reached the catalog")
	}
	entries := honest.catalog.List(pb.Kind_KIND_UNSPECIFIED)
	if len(entries) != 1 || entries[0].Announcer != hGood.ID() {
		t.Fatalf("catalog after the attacks: %+v", entries)
	}
}

// Anyone may relay anyone's announcement: news is taken from a relay, and what a node already holds is
// ignored without penalty for the relay.
func TestRelaysCarryNewsAndStaleRelaysAreIgnored(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	authorKey := newKey(t)
	hHonest, hRelay := addHost(t, mn, newKey(t)), addHost(t, mn, newKey(t))
	author := addHost(t, mn, authorKey).ID()
	mn.LinkAll()
	honest := startNetwork(t, hHonest)
	relay := rawPubSub(t, hRelay)
	if _, err := mn.ConnectPeers(hHonest.ID(), hRelay.ID()); err != nil {
		t.Fatal(err)
	}
	waitForPeer(t, relay, hHonest.ID())
	sub, _, _ := honest.Tracer().Subscribe(Filter{Types: []string{EventDeliver, EventIgnore, EventReject}}, 0)
	defer honest.Tracer().Unsubscribe(sub)
	next := func() Event {
		select {
		case e := <-sub.C:
			return e
		case <-time.After(30 * time.Second):
			t.Fatal("no trace event")
			return Event{}
		}
	}

	ctx := context.Background()
	changed := honest.catalog.Changed()
	relay.Publish(ctx, signed(t, authorKey, 10))
	if e := next(); e.Type != EventDeliver || e.Peer != hRelay.ID().String() {
		t.Fatalf("news from a relay: %+v", e)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("the relayed news never reached the catalog")
	}
	if e, ok := honest.catalog.Get(pb.Kind_KIND_WORKER_OFFER, author.String()); !ok || e.Seq != 10 || e.ReceivedFrom != hRelay.ID() {
		t.Fatalf("catalog after the relay: %+v", e)
	}
	relay.Publish(ctx, signed(t, authorKey, 9))
	if e := next(); e.Type != EventIgnore || !strings.HasPrefix(e.Reason, announce.CodeStale+": already have seq 10") {
		t.Fatalf("an older relay: %+v", e)
	}
	waitScores(t, honest, func(s Scores) bool {
		return len(s.Peers) == 1 && s.Peers[0].Peer == hRelay.ID().String() && s.Peers[0].Score >= 0 &&
			s.Peers[0].Topics[TopicName(testNetwork, pb.Kind_KIND_WORKER_OFFER)].FirstDeliveries > 0
	})
}

// Anti-entropy: a node that holds an announcement its peer never got by gossip (here it is put straight into
// its catalog, as if it had arrived before any mesh formed) hands it over within a sync interval, and only
// what the peer lacks.
func TestAntiEntropyFillsWhatGossipMissed(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	hA, hB := addHost(t, mn, newKey(t)), addHost(t, mn, newKey(t))
	mn.LinkAll()
	a := startNetworkWith(t, hA, Config{SyncInterval: 100 * time.Millisecond})
	b := startNetworkWith(t, hB, Config{SyncInterval: 100 * time.Millisecond})
	if _, err := mn.ConnectPeers(hA.ID(), hB.ID()); err != nil {
		t.Fatal(err)
	}
	waitForPeer(t, a.topics[pb.Kind_KIND_WORKER_OFFER], hB.ID())

	third := newKey(t)
	thirdID, _ := peer.IDFromPrivateKey(third)
	v, err := announce.Open(signed(t, third, 7), time.Now())
	if err != nil {
		t.Fatal(err)
	}
	changed := b.catalog.Changed()
	if ok, err := a.catalog.Put(v, hA.ID()); !ok || err != nil {
		t.Fatal(ok, err)
	}
	select {
	case <-changed:
	case <-time.After(30 * time.Second):
		t.Fatal("anti-entropy never brought the announcement over")
	}
	e, ok := b.catalog.Get(pb.Kind_KIND_WORKER_OFFER, thirdID.String())
	if !ok || e.Seq != 7 || e.ReceivedFrom != hA.ID() {
		t.Fatalf("b's entry: %+v", e)
	}
	// A digest that already covers everything gets an empty answer.
	if got := a.sync.missing(b.catalog.Digest(syncMaxHaves), nil); len(got) != 0 {
		t.Fatalf("a would still send %d announcements b has", len(got))
	}
	if got := a.sync.missing(nil, nil); len(got) != 1 {
		t.Fatalf("to an empty catalog a would send %d announcements, want 1", len(got))
	}
}

func waitScores(t *testing.T, n *Network, ok func(Scores) bool) {
	t.Helper()
	deadline := time.After(30 * time.Second)
	for {
		updated := n.ScoresUpdated()
		if s := n.Scores(); ok(s) {
			return
		}
		select {
		case <-updated:
		case <-deadline:
			t.Fatalf("scores never got there: %+v", n.Scores())
		}
	}
}

func TestTracerNeverBlocksThePubsubLoop(t *testing.T) {
	tr := newTracer(nil, func([]byte, any) any { return nil }, func(string) string { return "" }, nil)
	msg := &pubsub.Message{ID: "x"}
	// Nobody drains the queue: every callback must still return at once, dropping and counting past the bound.
	for range traceQueue + 100 {
		tr.DeliverMessage(msg)
	}
	if got := tr.Dropped(); got != 100 {
		t.Fatalf("dropped %d events, want 100", got)
	}
}

func TestTraceBacklogThenLiveWithoutGapOrRepeat(t *testing.T) {
	tr := newTracer(nil, func([]byte, any) any { return nil }, func(string) string { return "" }, nil)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()
	defer func() { cancel(); <-done }()

	all, _, _ := tr.Subscribe(Filter{}, 0)
	graft := func(n int) {
		for range n {
			tr.Graft("p", "/shoulders/test/workers/1")
		}
	}
	read := func(s *Subscription, n int) []Event {
		var out []Event
		for range n {
			select {
			case e := <-s.C:
				out = append(out, e)
			case <-time.After(10 * time.Second):
				t.Fatalf("got %d events, want %d", len(out), n)
			}
		}
		return out
	}
	graft(5)
	read(all, 5)
	late, backlog, _ := tr.Subscribe(Filter{Topics: []string{"workers"}, Types: []string{EventGraft}}, 3)
	if len(backlog) != 3 || backlog[0].Seq != 3 || backlog[2].Seq != 5 {
		t.Fatalf("backlog %+v, want seqs 3..5", backlog)
	}
	graft(2)
	live := read(late, 2)
	if live[0].Seq != 6 || live[1].Seq != 7 {
		t.Fatalf("live after backlog: %+v, want seqs 6 and 7", live)
	}
	if other, _, _ := tr.Subscribe(Filter{Types: []string{EventPrune}}, 10); len(other.C) != 0 {
		t.Fatal("a filter on prune matched grafts")
	}
}

func TestSlowSubscriberMissesEventsAndIsTold(t *testing.T) {
	var file strings.Builder
	tr := newTracer(nil, func([]byte, any) any { return nil }, func(string) string { return "" }, &file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()

	slow, _, _ := tr.Subscribe(Filter{}, 0)
	fast, _, _ := tr.Subscribe(Filter{}, 0)
	n := subscriberQueue + 10
	go func() {
		for range n {
			tr.Prune("p", "t")
		}
	}()
	for i := range n {
		select {
		case <-fast.C:
		case <-time.After(10 * time.Second):
			t.Fatalf("fast subscriber got %d of %d", i, n)
		}
	}
	if slow.Dropped() != 10 || len(slow.C) != subscriberQueue {
		t.Fatalf("slow subscriber: %d dropped, %d queued", slow.Dropped(), len(slow.C))
	}
	cancel()
	<-done
	// Run flushed the trace file on its way out: one JSON line per event.
	if lines := strings.Count(file.String(), "\n"); lines != n {
		t.Fatalf("trace file has %d lines, want %d", lines, n)
	}
}
