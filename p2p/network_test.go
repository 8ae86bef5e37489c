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
	"github.com/libp2p/go-msgio/pbio"
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
	cat, err := catalog.Open(db, catalog.Config{Network: testNetwork, Now: time.Now, Log: quiet})
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
	return signedFor(t, key, testNetwork, seq, time.Now(), time.Minute)
}

func signedFor(t testing.TB, key crypto.PrivKey, network string, seq uint64, at time.Time, ttl time.Duration) []byte {
	t.Helper()
	raw, err := announce.Sign(key, network, pb.Kind_KIND_WORKER_OFFER, seq, at, ttl, offer())
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
	ann, _ := proto.Marshal(&pb.Announcement{Network: testNetwork, Kind: pb.Kind_KIND_WORKER_OFFER, Announcer: []byte(author), Seq: seq,
		IssuedAtMs: time.Now().UnixMilli(), ExpiresAtMs: time.Now().Add(time.Minute).UnixMilli(), Body: b})
	sig, _ := key.Sign(append([]byte(announce.SigningDomain), ann...))
	out, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: ann, Signature: sig})
	return out
}

// misSigned is an announcement that claims author but carries a signature by another key.
func misSigned(t testing.TB, author peer.ID) []byte {
	t.Helper()
	body, _ := proto.Marshal(offer())
	ann, _ := proto.Marshal(&pb.Announcement{Network: testNetwork, Kind: pb.Kind_KIND_WORKER_OFFER, Announcer: []byte(author), Seq: 1,
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
	m3Key, m4Key := newKey(t), newKey(t)
	hM1, hM2, hM3, hM4 := addHost(t, mn, newKey(t)), addHost(t, mn, newKey(t)), addHost(t, mn, m3Key), addHost(t, mn, m4Key)
	if err := mn.LinkAll(); err != nil {
		t.Fatal(err)
	}
	honest, good := startNetwork(t, hHonest), startNetwork(t, hGood)
	m1 := rawPubSub(t, hM1)
	m2 := rawPubSub(t, hM2, pubsub.WithMessageSignaturePolicy(pubsub.StrictNoSign), pubsub.WithNoAuthor())
	m3 := rawPubSub(t, hM3)
	m4 := rawPubSub(t, hM4)

	sub, _, err := honest.Tracer().Subscribe(Filter{Types: []string{EventReject}}, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer honest.Tracer().Unsubscribe(sub)
	for _, h := range []host.Host{hGood, hM1, hM2, hM3, hM4} {
		if _, err := mn.ConnectPeers(hHonest.ID(), h.ID()); err != nil {
			t.Fatal(err)
		}
	}
	for _, topic := range []*pubsub.Topic{m1, m2, m3, m4} {
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
		{hM4.ID(), m4, signedFor(t, m4Key, "another-network", 1, time.Now(), time.Minute), announce.CodeWrongNetwork + ": "},
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
			byPeer[hM2.ID().String()].Score < 0 && byPeer[hM4.ID().String()].Score < 0 && byPeer[hGood.ID().String()].Score >= 0
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
	// Out of its time window by this node's clock: ignored too, whoever passed it on.
	relay.Publish(ctx, signedFor(t, authorKey, testNetwork, 11, time.Now().Add(-2*time.Hour), time.Hour))
	if e := next(); e.Type != EventIgnore || !strings.HasPrefix(e.Reason, announce.CodeExpired+": ") {
		t.Fatalf("an expired relay: %+v", e)
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
	// Only anti-entropy may carry it: no pull when the peers join each other's topic.
	a.sync.noJoinPull, b.sync.noJoinPull = true, true
	if _, err := mn.ConnectPeers(hA.ID(), hB.ID()); err != nil {
		t.Fatal(err)
	}
	waitForPeer(t, a.topics[pb.Kind_KIND_WORKER_OFFER], hB.ID())

	third := newKey(t)
	thirdID, _ := peer.IDFromPrivateKey(third)
	v, err := announce.Open(signed(t, third, 7), testNetwork, time.Now())
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
	if got := a.sync.missing(b.catalog.Digest(), nil); len(got) != 0 {
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
	tr := newTracer(nil, quiet, func(any) any { return nil }, func(string) string { return "" }, nil)
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
	tr := newTracer(nil, quiet, func(any) any { return nil }, func(string) string { return "" }, nil)
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
	if _, backlog, _ := tr.Subscribe(Filter{Types: []string{EventPrune}}, 10); len(backlog) != 0 {
		t.Fatalf("a filter on prune matched grafts: %+v", backlog)
	}
}

func TestSlowSubscriberMissesEventsAndIsTold(t *testing.T) {
	var file strings.Builder
	tr := newTracer(nil, quiet, func(any) any { return nil }, func(string) string { return "" }, &file)
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- tr.Run(ctx) }()

	slow, _, _ := tr.Subscribe(Filter{}, 0)
	fast, _, _ := tr.Subscribe(Filter{}, 0)
	// Fill the slow subscriber's queue exactly, then send ten more; the fast one reads everything.
	prune := func(n int) {
		for range n {
			tr.Prune("p", "t")
		}
		for i := range n {
			select {
			case <-fast.C:
			case <-time.After(10 * time.Second):
				t.Fatalf("fast subscriber got %d of %d", i, n)
			}
		}
	}
	prune(subscriberQueue)
	prune(10)
	if slow.Dropped() != 10 || len(slow.C) != subscriberQueue {
		t.Fatalf("slow subscriber: %d dropped, %d queued", slow.Dropped(), len(slow.C))
	}
	cancel()
	<-done
	// Run flushed the trace file on its way out: one JSON line per event.
	if lines := strings.Count(file.String(), "\n"); lines != subscriberQueue+10 {
		t.Fatalf("trace file has %d lines, want %d", lines, subscriberQueue+10)
	}
}

// The catalog protocol serves one peer a few requests in a row, then no more until its allowance refills.
func TestCatalogServingIsBoundedPerPeer(t *testing.T) {
	mn := mocknet.New()
	defer mn.Close()
	hA, hAsker := addHost(t, mn, newKey(t)), addHost(t, mn, newKey(t))
	mn.LinkAll()
	a := startNetwork(t, hA)
	a.sync.noJoinPull = true
	if _, err := mn.ConnectPeers(hAsker.ID(), hA.ID()); err != nil {
		t.Fatal(err)
	}
	ask := func() (*pb.CatalogResponse, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		st, err := hAsker.NewStream(ctx, hA.ID(), CatalogProtocol)
		if err != nil {
			return nil, err
		}
		defer st.Close()
		if err := pbio.NewDelimitedWriter(st).WriteMsg(&pb.CatalogRequest{}); err != nil {
			return nil, err
		}
		var resp pb.CatalogResponse
		return &resp, pbio.NewDelimitedReader(st, syncMaxBytes+syncReadSlack).ReadMsg(&resp)
	}
	for i := range syncServeBurst {
		if _, err := ask(); err != nil {
			t.Fatalf("request %d of the allowed burst: %v", i+1, err)
		}
	}
	if _, err := ask(); err == nil {
		t.Fatal("a request past the allowance was answered")
	}
	// Too many announcements in a digest is refused outright.
	a.sync.mu.Lock()
	delete(a.sync.peers, hAsker.ID())
	a.sync.mu.Unlock()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	st, err := hAsker.NewStream(ctx, hA.ID(), CatalogProtocol)
	if err != nil {
		t.Fatal(err)
	}
	haves := make([]*pb.CatalogHave, syncMaxHaves+1)
	for i := range haves {
		haves[i] = &pb.CatalogHave{Subject: "x"}
	}
	pbio.NewDelimitedWriter(st).WriteMsg(&pb.CatalogRequest{Have: haves})
	var resp pb.CatalogResponse
	if err := pbio.NewDelimitedReader(st, syncMaxBytes).ReadMsg(&resp); err == nil {
		t.Fatal("a request over the digest limit was answered")
	}
}
