package p2p

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/event"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"github.com/libp2p/go-msgio/pbio"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/p2p/announce"
	pb "github.com/shouldersnet/shoulders/proto"
)

// CatalogProtocol is the stream protocol two nodes use, once per connection, to hand each other the live
// announcements they hold.
const CatalogProtocol = protocol.ID("/shoulders/catalog/1")

// Catalog sync limits.
const (
	syncMaxEntries  = 4096    // announcements in one response
	syncMaxBytes    = 4 << 20 // bytes of one response
	syncMaxRequest  = 1 << 10
	syncTimeout     = 10 * time.Second
	syncWorkers     = 4   // pulls in flight
	syncQueue       = 256 // peers waiting to be pulled from
	syncMaxServing  = 8   // responses being written at once
	syncReadSlack   = 64 << 10
	syncRequestKind = 16 // kinds one request may name
)

// catalogSync pulls a new peer's catalog once per connection and serves ours.
type catalogSync struct {
	n       *Network
	queue   chan peer.ID
	serving chan struct{} // semaphore

	mu     sync.Mutex
	pulled map[peer.ID]bool // peers pulled from during their current connection
}

func newCatalogSync(n *Network) *catalogSync {
	s := &catalogSync{
		n:       n,
		queue:   make(chan peer.ID, syncQueue),
		serving: make(chan struct{}, syncMaxServing),
		pulled:  make(map[peer.ID]bool),
	}
	n.host.SetStreamHandler(CatalogProtocol, s.serve)
	return s
}

// run watches identification and disconnection events and runs the pulling workers until ctx is done.
func (s *catalogSync) run(ctx context.Context) error {
	defer s.n.host.RemoveStreamHandler(CatalogProtocol)
	sub, err := s.n.host.EventBus().Subscribe([]any{new(event.EvtPeerIdentificationCompleted), new(event.EvtPeerConnectednessChanged)})
	if err != nil {
		return fmt.Errorf("p2p: catalog sync: %w", err)
	}
	defer sub.Close()
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
	g.Go(func() error {
		for {
			select {
			case <-ctx.Done():
				return nil
			case ev := <-sub.Out():
				switch ev := ev.(type) {
				case event.EvtPeerIdentificationCompleted:
					if slices.Contains(ev.Protocols, CatalogProtocol) {
						s.enqueue(ev.Peer)
					}
				case event.EvtPeerConnectednessChanged:
					if ev.Connectedness != network.Connected {
						s.mu.Lock()
						delete(s.pulled, ev.Peer)
						s.mu.Unlock()
					}
				}
			}
		}
	})
	return g.Wait()
}

func (s *catalogSync) enqueue(p peer.ID) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.pulled[p] {
		return
	}
	select {
	case s.queue <- p:
		s.pulled[p] = true
	default:
		// A connection storm: skip this peer. Periodic announcements still reach us by gossip.
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
	if err := pbio.NewDelimitedWriter(st).WriteMsg(&pb.CatalogRequest{}); err != nil {
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
		}
	}
	s.n.log.Debug("catalog sync: pulled", "peer", p, "received", len(resp.Announcements), "new", taken, "refused", refused)
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
	if err := pbio.NewDelimitedReader(st, syncMaxRequest).ReadMsg(&req); err != nil || len(req.Kinds) > syncRequestKind {
		st.Reset()
		return
	}
	var resp pb.CatalogResponse
	size := 0
	for _, e := range s.n.catalog.List(pb.Kind_KIND_UNSPECIFIED) {
		if len(req.Kinds) > 0 && !slices.Contains(req.Kinds, e.Kind) {
			continue
		}
		size += len(e.Announcement.Raw) + 8
		if len(resp.Announcements) == syncMaxEntries || size > syncMaxBytes {
			break
		}
		resp.Announcements = append(resp.Announcements, e.Announcement.Raw)
	}
	if err := pbio.NewDelimitedWriter(st).WriteMsg(&resp); err != nil {
		st.Reset()
		return
	}
	st.Close()
}
