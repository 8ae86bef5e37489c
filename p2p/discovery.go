package p2p

import (
	"context"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	mh "github.com/multiformats/go-multihash"
)

// Discovery timing.
const (
	discoverMin     = time.Second      // between rounds while rounds find new peers
	discoverMax     = 30 * time.Second // between rounds once they stop finding any
	reprovideEvery  = 10 * time.Minute // refresh of this node's rendezvous provider record
	discoverTimeout = 15 * time.Second // for one DHT provide or find
	dialTimeout     = 5 * time.Second
)

// RendezvousCID is the DHT key under which every node of a network provides itself, so that nodes that only
// know a bootstrap peer can find each other.
func RendezvousCID(network string) cid.Cid {
	sum, err := mh.Sum([]byte("shoulders:"+network+":nodes"), mh.SHA2_256, -1)
	if err != nil {
		panic(err) // sha2-256 is always available
	}
	return cid.NewCidV1(cid.Raw, sum)
}

// discover connects to the bootstrap peers, then in rounds: provides the rendezvous record, finds other
// providers of it and connects to them, and tops up from the routing table, until TargetPeers connections are
// open. A round that connected someone new brings the next one after discoverMin; a round that did not
// doubles the wait, up to discoverMax. Providing has its own schedule: every reprovideEvery once it worked,
// with the same doubling backoff while it fails. The DHT's own refresh (random walks per bucket) keeps the
// routing table full meanwhile.
func (n *Network) discover(ctx context.Context) error {
	rendezvous := RendezvousCID(n.cfg.Network)
	wait, provideWait := discoverMin, discoverMin
	var nextProvide time.Time
	timer := time.NewTimer(0)
	defer timer.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-timer.C:
		}
		before := len(n.host.Network().Peers())
		n.connectBootstrap(ctx)
		if n.dht.RoutingTable().Size() > 0 {
			if now := time.Now(); !now.Before(nextProvide) {
				pctx, cancel := context.WithTimeout(ctx, discoverTimeout)
				err := n.dht.Provide(pctx, rendezvous, true)
				cancel()
				if err == nil {
					nextProvide, provideWait = now.Add(reprovideEvery), discoverMin
				} else {
					nextProvide, provideWait = now.Add(provideWait), min(2*provideWait, discoverMax)
					if ctx.Err() == nil {
						n.log.Debug("discovery: provide failed", "err", err)
					}
				}
			}
			n.connectProviders(ctx, rendezvous)
			n.connectRoutingTable(ctx)
		}
		if len(n.host.Network().Peers()) > before {
			wait = discoverMin
		} else {
			wait = min(2*wait, discoverMax)
		}
		timer.Reset(wait)
	}
}

func (n *Network) connectBootstrap(ctx context.Context) {
	for _, ai := range n.cfg.Bootstrap {
		if ai.ID == n.host.ID() || n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		n.dial(ctx, ai)
	}
}

func (n *Network) connectProviders(ctx context.Context, rendezvous cid.Cid) {
	fctx, cancel := context.WithTimeout(ctx, discoverTimeout)
	defer cancel()
	for ai := range n.dht.FindProvidersAsync(fctx, rendezvous, 64) {
		if len(n.host.Network().Peers()) >= n.cfg.TargetPeers {
			return
		}
		if ai.ID == n.host.ID() || n.host.Network().Connectedness(ai.ID) == network.Connected {
			continue
		}
		n.dial(ctx, ai)
	}
}

func (n *Network) connectRoutingTable(ctx context.Context) {
	for _, p := range n.dht.RoutingTable().ListPeers() {
		if len(n.host.Network().Peers()) >= n.cfg.TargetPeers {
			return
		}
		if n.host.Network().Connectedness(p) != network.Connected {
			n.dial(ctx, peer.AddrInfo{ID: p})
		}
	}
}

func (n *Network) dial(ctx context.Context, ai peer.AddrInfo) {
	dctx, cancel := context.WithTimeout(ctx, dialTimeout)
	defer cancel()
	if err := n.host.Connect(dctx, ai); err != nil && ctx.Err() == nil {
		n.log.Debug("discovery: dial failed", "peer", ai.ID, "err", err)
	}
}
