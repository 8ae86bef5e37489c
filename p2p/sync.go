package p2p

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/catalog"
	pb "github.com/shouldersnet/shoulders/proto"
)

// CatalogProtocol is the stream protocol nodes use to hand each other the live announcements they hold: once
// when a peer joins one of our topics, and then as periodic anti-entropy with one random peer at a time.
// Each request carries a digest of the requester's catalog, so the answer holds only what it lacks.
const CatalogProtocol = protocol.ID("/shoulders/catalog/1")

// DefaultSyncInterval is how often a node runs anti-entropy with one random peer.
const DefaultSyncInterval = 30 * time.Second

// Catalog sync limits: what one peer can make this node do or hold.
const (
	syncMaxEntries  = 4096    // announcements in one response
	syncMaxBytes    = 4 << 20 // bytes of one response
	syncMaxHaves    = 32768   // digest entries in one request
	syncMaxRequest  = 4 << 20 // bytes of one request
	syncRequestKind = 16      // kinds one request may name
	syncReadSlack   = 64 << 10
	syncTimeout     = 10 * time.Second
	syncWorkers     = 4                // pulls in flight
	syncQueue       = 256              // peers waiting to be pulled from
	syncMaxServing  = 8                // responses being written at once, to everyone
	syncServeEvery  = 5 * time.Second  // requests served to one peer: one more allowed per interval,
	syncServeBurst  = 3                // up to this many in a row
	syncPullEvery   = 30 * time.Second // join-triggered pulls of one peer: one more allowed per interval,
	syncPullBurst   = 3                // up to this many in a row (a join, then reconnections)
	syncMaxRefused  = 16               // refused announcements before the rest of a response is dropped
	syncMaxRelays   = 256              // news relayed from one pull; anti-entropy carries the rest
	syncForget      = 10 * time.Minute // per-peer state kept this long after its last use
)

// catalogSync pulls a peer's catalog each time it joins our topics and, every interval, from one random
// topic peer; it serves ours to anyone who asks, one request at a time per peer, a few in a row and then one
// per syncServeEvery.
type catalogSync struct {
	n          *Network
	interval   time.Duration // 0: no periodic anti-entropy
	noJoinPull bool          // tests: pull on anti-entropy only
	queue      chan peer.ID
	serving    chan struct{} // semaphore over all peers

	mu    sync.Mutex
	peers map[peer.ID]*syncPeer
}

type syncPeer struct {
	lastPulled time.Time // we pulled from it
	pulls      float64   // join-triggered pulls allowed now (a token bucket: syncPullBurst, one per syncPullEvery)
	lastServed time.Time // it asked us
	serves     float64   // requests it may make now (a token bucket: syncServeBurst, one per syncServeEvery)
	serving    bool
}

func newCatalogSync(n *Network, interval time.Duration) *catalogSync {
	return &catalogSync{
		n:        n,
		interval: interval,
		queue:    make(chan peer.ID, syncQueue),
		serving:  make(chan struct{}, syncMaxServing),
		peers:    make(map[peer.ID]*syncPeer),
	}
}

func (s *catalogSync) peerLocked(p peer.ID) *syncPeer {
	sp := s.peers[p]
	if sp == nil {
		sp = &syncPeer{pulls: syncPullBurst, serves: syncServeBurst}
		s.peers[p] = sp
	}
	return sp
}

// run pulls from every peer that joins one of our topics, and runs anti-entropy, until ctx is done (New
// set up serving). A topic join (not a bare connection) is the trigger because from then on gossip between the
// two works, so the news a pull brings can be relayed to that peer too.
func (s *catalogSync) run(ctx context.Context) error {
	handlers := make([]*pubsub.TopicEventHandler, 0, len(s.n.topics))
	for _, t := range s.n.topics {
		ev, err := t.EventHandler()
		if err != nil {
			for _, h := range handlers {
				h.Cancel()
			}
			return fmt.Errorf("p2p: catalog sync: %w", err)
		}
		handlers = append(handlers, ev)
	}

	g, ctx := errgroup.WithContext(ctx)
	for range syncWorkers {
		g.Go(func() error {
			for {
				select {
				case <-ctx.Done():
					return nil
				case p := <-s.queue:
					s.pull(ctx, p)
				}
			}
		})
	}
	for _, ev := range handlers {
		g.Go(func() error {
			defer ev.Cancel()
			for {
				e, err := ev.NextPeerEvent(ctx)
				if err != nil {
					return nil // ctx is done
				}
				if e.Type == pubsub.PeerJoin && !s.noJoinPull {
					s.enqueue(e.Peer, true)
				}
			}
		})
	}
	if s.interval > 0 {
		g.Go(func() error { return s.antiEntropy(ctx) })
	}
	return g.Wait()
}

// antiEntropy pulls from one random topic peer every interval. It closes the gaps gossip leaves: a message
// that arrives before a node's mesh has formed is delivered to it but forwarded to nobody.
func (s *catalogSync) antiEntropy(ctx context.Context) error {
	t := time.NewTicker(s.interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		var peers []peer.ID
		for _, topic := range s.n.topics {
			for _, p := range topic.ListPeers() {
				if !slices.Contains(peers, p) {
					peers = append(peers, p)
				}
			}
		}
		if len(peers) > 0 {
			s.enqueue(peers[rand.IntN(len(peers))], false)
		}
		s.forget(time.Now())
	}
}

// forget drops per-peer state unused for syncForget, so the map stays as small as the set of recent peers.
func (s *catalogSync) forget(now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for p, sp := range s.peers {
		if !sp.serving && now.Sub(sp.lastPulled) > syncForget && now.Sub(sp.lastServed) > syncForget {
			delete(s.peers, p)
		}
	}
}

// enqueue queues a pull from p. A pull the peer triggered (by joining a topic) spends one of its allowance,
// so a peer that subscribes and unsubscribes over and over cannot make this node pull from it at will; a
// pull this node chose (anti-entropy) does not.
func (s *catalogSync) enqueue(p peer.ID, joined bool) {
	now := time.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	sp := s.peerLocked(p)
	if joined {
		sp.pulls = min(syncPullBurst, sp.pulls+float64(now.Sub(sp.lastPulled))/float64(syncPullEvery))
		if sp.pulls < 1 {
			return
		}
	}
	select {
	case s.queue <- p:
		if joined {
			sp.pulls--
		}
		sp.lastPulled = now
	default:
		// A join storm: skip this peer. Anti-entropy and periodic announcements fill the gap later.
		s.n.log.Debug("catalog sync: queue full, skipping peer", "peer", p)
	}
}

// pull asks p for what it holds and we lack, takes every announcement that verifies, and relays the news.
func (s *catalogSync) pull(ctx context.Context, p peer.ID) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout)
	defer cancel()
	st, err := s.n.host.NewStream(ctx, p, CatalogProtocol)
	if err != nil {
		s.n.log.Debug("catalog sync: open stream", "peer", p, "err", err)
		return
	}
	defer st.Close()
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	have := s.n.catalog.Digest()
	if len(have) > syncMaxHaves {
		have = have[:syncMaxHaves]
	}
	if err := pbio.NewDelimitedWriter(st).WriteMsg(&pb.CatalogRequest{Have: have}); err != nil {
		st.Reset()
		return
	}
	st.CloseWrite()
	var resp pb.CatalogResponse
	if err := pbio.NewDelimitedReader(st, syncMaxBytes+syncReadSlack).ReadMsg(&resp); err != nil {
		s.n.log.Debug("catalog sync: read", "peer", p, "err", err)
		st.Reset()
		return
	}
	if len(resp.Announcements) > syncMaxEntries {
		s.n.log.Info("catalog sync: peer sent more announcements than allowed; dropping them all", "peer", p, "count", len(resp.Announcements))
		return
	}
	now := time.Now()
	taken, relayed, refused := 0, 0, 0
	var firstRefusal error
	for _, raw := range resp.Announcements {
		v, err := announce.Open(raw, s.n.cfg.Network, now)
		if err != nil {
			if announce.Ignorable(err) {
				continue
			}
			if refused++; refused == 1 {
				firstRefusal = err
			}
			if refused > syncMaxRefused {
				break
			}
			continue
		}
		if ok, _ := s.n.catalog.Put(v, p); ok {
			taken++
			if relayed < syncMaxRelays {
				if err := s.n.relay(ctx, v); err == nil {
					relayed++
				} else if ctx.Err() == nil {
					s.n.log.Debug("catalog sync: relaying news", "announcer", v.Announcer, "err", err)
				}
			}
		}
	}
	if refused > 0 {
		s.n.log.Info("catalog sync: refused announcements from a peer", "peer", p, "refused", refused, "first", firstRefusal)
	}
	s.n.log.Debug("catalog sync: pulled", "peer", p, "received", len(resp.Announcements), "new", taken, "relayed", relayed)
}

// serve answers one catalog request, if the asker is within its allowance.
func (s *catalogSync) serve(st network.Stream) {
	p := st.Conn().RemotePeer()
	now := time.Now()
	s.mu.Lock()
	sp := s.peerLocked(p)
	sp.serves = min(syncServeBurst, sp.serves+float64(now.Sub(sp.lastServed))/float64(syncServeEvery))
	if sp.serving || sp.serves < 1 {
		s.mu.Unlock()
		st.Reset()
		return
	}
	sp.serves--
	sp.serving, sp.lastServed = true, now
	s.mu.Unlock()
	// The peer may ask again once it has the answer, so its turn ends before the answer is written:
	// ending it after would refuse a peer that asks one request at a time, whenever it reads faster
	// than this goroutine gets back to the lock.
	done := sync.OnceFunc(func() {
		s.mu.Lock()
		sp.serving = false
		s.mu.Unlock()
	})
	defer done()
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	default:
		st.Reset()
		return
	}
	st.SetDeadline(now.Add(syncTimeout))
	var req pb.CatalogRequest
	if err := pbio.NewDelimitedReader(st, syncMaxRequest).ReadMsg(&req); err != nil ||
		len(req.Kinds) > syncRequestKind || len(req.Have) > syncMaxHaves {
		st.Reset()
		return
	}
	resp := &pb.CatalogResponse{Announcements: s.missing(req.Have, req.Kinds)}
	done()
	if err := pbio.NewDelimitedWriter(st).WriteMsg(resp); err != nil {
		st.Reset()
		return
	}
	st.Close()
}

// missing returns the announcements this node holds, of kinds (every kind when empty), that a peer with the
// digest have lacks or holds an older version of, up to the response limits.
func (s *catalogSync) missing(have []*pb.CatalogHave, kinds []pb.Kind) [][]byte {
	type key struct {
		kind    pb.Kind
		subject string
	}
	held := make(map[key]*pb.CatalogHave, len(have))
	for _, h := range have {
		held[key{h.Kind, h.Subject}] = h
	}
	var out [][]byte
	size := 0
	for _, e := range s.n.catalog.List(pb.Kind_KIND_UNSPECIFIED) {
		if len(kinds) > 0 && !slices.Contains(kinds, e.Kind) {
			continue
		}
		if h, ok := held[key{e.Kind, e.Subject}]; ok && !newerThan(e.Announcement, h) {
			continue
		}
		size += len(e.Announcement.Raw) + 8
		if len(out) == syncMaxEntries || size > syncMaxBytes {
			break
		}
		out = append(out, e.Announcement.Raw)
	}
	return out
}

// newerThan reports whether v supersedes the announcement a digest entry describes (see
// announce.Verified.Supersedes; the digest carries a prefix of the ID).
func newerThan(v *announce.Verified, h *pb.CatalogHave) bool {
	if v.Seq != h.Seq {
		return v.Seq > h.Seq
	}
	return bytes.Compare(v.ID[:catalog.DigestIDLen], h.Id) < 0
}
