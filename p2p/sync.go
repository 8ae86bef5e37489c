package p2p

import (
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
	pb "github.com/shouldersnet/shoulders/proto"
)

// CatalogProtocol is the stream protocol nodes use to hand each other the live announcements they hold: once
// when a peer joins one of our topics, and then as periodic anti-entropy with one random peer at a time.
// Each request carries a digest of the requester's catalog, so the answer holds only what it lacks.
const CatalogProtocol = protocol.ID("/shoulders/catalog/1")

// Catalog sync limits.
const (
	syncMaxEntries  = 4096    // announcements in one response
	syncMaxBytes    = 4 << 20 // bytes of one response
	syncMaxHaves    = 8192    // digest entries in one request
	syncMaxRequest  = 1 << 20
	syncTimeout     = 10 * time.Second
	syncWorkers     = 4   // pulls in flight
	syncQueue       = 256 // peers waiting to be pulled from
	syncMaxServing  = 8   // responses being written at once
	syncReadSlack   = 64 << 10
	syncRequestKind = 16 // kinds one request may name
)

// DefaultSyncInterval is how often a node runs anti-entropy with one random peer.
const DefaultSyncInterval = 30 * time.Second

// catalogSync pulls a peer's catalog each time it joins our topics and, every interval, from one random
// topic peer; it serves ours to anyone who asks.
type catalogSync struct {
	n        *Network
	interval time.Duration // 0: no periodic anti-entropy
	queue    chan peer.ID
	serving  chan struct{} // semaphore

	mu     sync.Mutex
	pulled map[peer.ID]bool // peers pulled from since they joined a topic of ours
}

func newCatalogSync(n *Network, interval time.Duration) *catalogSync {
	s := &catalogSync{
		n:        n,
		interval: interval,
		queue:    make(chan peer.ID, syncQueue),
		serving:  make(chan struct{}, syncMaxServing),
		pulled:   make(map[peer.ID]bool),
	}
	n.host.SetStreamHandler(CatalogProtocol, s.serve)
	return s
}

// run pulls from every peer that joins one of our topics, and runs the pulling workers, until ctx is done.
// A topic join (not a bare connection) is the trigger because from then on gossip between the two works, so
// the news a pull brings can be relayed to that peer too.
func (s *catalogSync) run(ctx context.Context) error {
	defer s.n.host.RemoveStreamHandler(CatalogProtocol)
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
	for _, t := range s.n.topics {
		ev, err := t.EventHandler()
		if err != nil {
			return fmt.Errorf("p2p: catalog sync: %w", err)
		}
		g.Go(func() error {
			defer ev.Cancel()
			for {
				e, err := ev.NextPeerEvent(ctx)
				if err != nil {
					return nil // ctx is done
				}
				switch e.Type {
				case pubsub.PeerJoin:
					s.enqueue(e.Peer, false)
				case pubsub.PeerLeave:
					s.mu.Lock()
					delete(s.pulled, e.Peer)
					s.mu.Unlock()
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
			s.enqueue(peers[rand.IntN(len(peers))], true)
		}
	}
}

// enqueue queues a pull from p: always when force is set, else only if p was not pulled from since it joined.
func (s *catalogSync) enqueue(p peer.ID, force bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pulled[p] && !force {
		return
	}
	select {
	case s.queue <- p:
		s.pulled[p] = true
	default:
		// A join storm: skip this peer. Anti-entropy and periodic announcements fill the gap later.
		s.n.log.Debug("catalog sync: queue full, skipping peer", "peer", p)
	}
}

// pull asks p for its catalog and takes every announcement that verifies.
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
	if err := pbio.NewDelimitedWriter(st).WriteMsg(&pb.CatalogRequest{Have: s.n.catalog.Digest(syncMaxHaves)}); err != nil {
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
		s.n.log.Info("catalog sync: peer sent too many announcements", "peer", p, "count", len(resp.Announcements))
		return
	}
	now := time.Now()
	taken, refused := 0, 0
	for _, raw := range resp.Announcements {
		v, err := announce.Open(raw, now)
		if err != nil {
			if announce.CodeOf(err) != announce.CodeExpired {
				refused++
				s.n.log.Info("catalog sync: refused an announcement", "peer", p, "reason", err)
			}
			continue
		}
		if ok, _ := s.n.catalog.Put(v, p); ok {
			taken++
			if err := s.n.relay(ctx, v); err != nil && ctx.Err() == nil {
				s.n.log.Debug("catalog sync: relaying news", "announcer", v.Announcer, "err", err)
			}
		}
	}
	s.n.log.Debug("catalog sync: pulled", "peer", p, "received", len(resp.Announcements), "new", taken, "refused", refused)
}

// missing returns the announcements this node holds, of kinds (every kind when empty), that a peer with the
// digest have lacks, up to the response limits.
func (s *catalogSync) missing(have []*pb.CatalogHave, kinds []pb.Kind) [][]byte {
	type key struct {
		kind    pb.Kind
		subject string
	}
	seqs := make(map[key]uint64, len(have))
	for _, h := range have {
		seqs[key{h.Kind, h.Subject}] = h.Seq
	}
	var out [][]byte
	size := 0
	for _, e := range s.n.catalog.List(pb.Kind_KIND_UNSPECIFIED) {
		if len(kinds) > 0 && !slices.Contains(kinds, e.Kind) {
			continue
		}
		if seq, ok := seqs[key{e.Kind, e.Subject}]; ok && seq >= e.Seq {
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

// serve answers one catalog request.
func (s *catalogSync) serve(st network.Stream) {
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	default:
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(syncTimeout))
	var req pb.CatalogRequest
	if err := pbio.NewDelimitedReader(st, syncMaxRequest).ReadMsg(&req); err != nil ||
		len(req.Kinds) > syncRequestKind || len(req.Have) > syncMaxHaves {
		st.Reset()
		return
	}
	resp := pb.CatalogResponse{Announcements: s.missing(req.Have, req.Kinds)}
	if err := pbio.NewDelimitedWriter(st).WriteMsg(&resp); err != nil {
		st.Reset()
		return
	}
	st.Close()
}
