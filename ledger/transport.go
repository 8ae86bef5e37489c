package ledger

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// ConsensusProtocol carries consensus messages between validators: one long-lived stream from each validator
// to each other one, each message a length-prefixed frame in the consensus codec. Direct streams, not gossip:
// validators are few and all talk to all, so a stream per pair is the shortest path, with no relaying, no
// second signature per message and no validation queue in between.
const ConsensusProtocol = protocol.ID("/shoulders/consensus/1")

// Transport limits.
const (
	outQueue      = 4096     // frames waiting for one peer; past it the newest are dropped (the core rebroadcasts)
	outQueueBytes = 64 << 20 // bytes waiting for one peer (blocks are large): the same
	inboxSize     = 8192     // decoded messages waiting for the driver
	redialMin     = 50 * time.Millisecond
	redialMax     = 2 * time.Second
	writeDeadline = 10 * time.Second
)

// inbound is a message from a validator, decoded.
type inbound struct {
	from peer.ID
	msg  consensus.Message
}

// transport sends and receives consensus messages among the validators of a fixed set. It owns one writer
// goroutine per other validator (started by run, stopped with its context) and the reader goroutines libp2p
// starts for inbound streams (each ends when its stream does; run resets them all on the way out).
type transport struct {
	host       host.Host
	log        *slog.Logger
	validators map[peer.ID]int // peer → validator index
	peers      []*outPeer      // other validators
	inbox      chan inbound
	findPeer   func(context.Context, peer.ID) (peer.AddrInfo, error) // may be nil

	dropped atomic.Uint64 // frames dropped: a peer's queue or the inbox was full
	bad     atomic.Uint64 // frames that did not decode

	mu      sync.Mutex
	streams map[peer.ID]network.Stream // the inbound stream open now from each validator
}

// outPeer is the queue of frames for one other validator. Its writer drops what is queued whenever the
// stream fails: frames that waited through an outage are stale, and the core sends what is current again.
type outPeer struct {
	id     peer.ID
	queue  chan []byte
	queued atomic.Int64 // bytes in queue
}

// newTransport prepares the transport of a validator, or of an observer, which only listens.
func newTransport(h host.Host, validators []peer.ID, observer bool, findPeer func(context.Context, peer.ID) (peer.AddrInfo, error), log *slog.Logger) *transport {
	t := &transport{
		host:       h,
		log:        log,
		validators: make(map[peer.ID]int, len(validators)),
		inbox:      make(chan inbound, inboxSize),
		findPeer:   findPeer,
		streams:    make(map[peer.ID]network.Stream),
	}
	for i, id := range validators {
		t.validators[id] = i
	}
	if observer {
		return t // an observer sends nothing: validators would reset its streams
	}
	for _, id := range validators {
		if id != h.ID() {
			t.peers = append(t.peers, &outPeer{id: id, queue: make(chan []byte, outQueue)})
		}
	}
	return t
}

// run accepts inbound streams and keeps one outbound stream to every other validator until ctx ends.
func (t *transport) run(ctx context.Context) error {
	t.host.SetStreamHandler(ConsensusProtocol, t.accept)
	defer func() {
		t.host.RemoveStreamHandler(ConsensusProtocol)
		t.mu.Lock()
		for _, s := range t.streams {
			s.Reset()
		}
		t.mu.Unlock()
	}()
	g, ctx := errgroup.WithContext(ctx)
	for _, p := range t.peers {
		g.Go(func() error { t.write(ctx, p); return nil })
	}
	return g.Wait()
}

// broadcast queues m for every other validator.
func (t *transport) broadcast(m consensus.Message) {
	frame := frameOf(m)
	for _, p := range t.peers {
		t.enqueue(p, frame)
	}
}

// sendTo queues m for one validator.
func (t *transport) sendTo(id peer.ID, m consensus.Message) {
	for _, p := range t.peers {
		if p.id == id {
			t.enqueue(p, frameOf(m))
			return
		}
	}
}

func (t *transport) enqueue(p *outPeer, frame []byte) {
	if p.queued.Add(int64(len(frame))) > outQueueBytes {
		p.queued.Add(-int64(len(frame)))
		t.dropped.Add(1)
		return
	}
	select {
	case p.queue <- frame:
	default:
		p.queued.Add(-int64(len(frame)))
		t.dropped.Add(1)
	}
}

// took accounts for a frame received from p's queue, and returns it.
func (p *outPeer) took(frame []byte) []byte {
	p.queued.Add(-int64(len(frame)))
	return frame
}

// discard drops everything queued for p.
func (t *transport) discard(p *outPeer) {
	for {
		select {
		case frame := <-p.queue:
			p.took(frame)
			t.dropped.Add(1)
		default:
			return
		}
	}
}

func frameOf(m consensus.Message) []byte {
	body := consensus.EncodeMessage(m)
	frame := binary.AppendUvarint(make([]byte, 0, len(body)+binary.MaxVarintLen64), uint64(len(body)))
	return append(frame, body...)
}

// write keeps a stream to p open and writes its queue into it, reconnecting with backoff after an error.
func (t *transport) write(ctx context.Context, p *outPeer) {
	backoff := redialMin
	for ctx.Err() == nil {
		s, err := t.open(ctx, p.id)
		if err != nil {
			if ctx.Err() == nil {
				t.log.Debug("consensus transport: cannot reach validator", "peer", p.id, "err", err)
			}
			t.discard(p)
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff):
			}
			backoff = min(2*backoff, redialMax)
			continue
		}
		backoff = redialMin
		err = t.pump(ctx, s, p)
		s.Reset()
		t.discard(p)
		if ctx.Err() == nil {
			t.log.Debug("consensus transport: stream to validator ended", "peer", p.id, "err", err)
		}
	}
}

func (t *transport) open(ctx context.Context, id peer.ID) (network.Stream, error) {
	dctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if t.host.Network().Connectedness(id) != network.Connected && len(t.host.Peerstore().Addrs(id)) == 0 && t.findPeer != nil {
		ai, err := t.findPeer(dctx, id)
		if err != nil {
			return nil, fmt.Errorf("finding its address: %w", err)
		}
		t.host.Peerstore().AddAddrs(id, ai.Addrs, time.Hour)
	}
	return t.host.NewStream(dctx, id, ConsensusProtocol)
}

// pump writes queued frames to s, batching whatever is queued into one flush.
func (t *transport) pump(ctx context.Context, s network.Stream, p *outPeer) error {
	w := bufio.NewWriterSize(s, 64<<10)
	for {
		var frame []byte
		select {
		case <-ctx.Done():
			return ctx.Err()
		case frame = <-p.queue:
		}
		s.SetWriteDeadline(time.Now().Add(writeDeadline))
		for {
			if _, err := w.Write(p.took(frame)); err != nil {
				return err
			}
			select {
			case frame = <-p.queue:
				continue
			default:
			}
			break
		}
		if err := w.Flush(); err != nil {
			return err
		}
	}
}

// accept reads an inbound stream from a validator until it ends. Streams from anyone else are reset: only
// validators speak consensus (observers follow the chain by block sync). A validator has one inbound stream:
// a new one (it redialed) replaces the old.
func (t *transport) accept(s network.Stream) {
	from := s.Conn().RemotePeer()
	if _, ok := t.validators[from]; !ok {
		s.Reset()
		return
	}
	t.mu.Lock()
	if old, ok := t.streams[from]; ok {
		old.Reset()
	}
	t.streams[from] = s
	t.mu.Unlock()
	defer func() {
		t.mu.Lock()
		if t.streams[from] == s {
			delete(t.streams, from)
		}
		t.mu.Unlock()
		s.Reset()
	}()
	r := bufio.NewReaderSize(s, 64<<10)
	for {
		body, err := readFrame(r, consensus.MaxMessageBytes)
		if err != nil {
			if !errors.Is(err, io.EOF) {
				t.log.Debug("consensus transport: reading", "peer", from, "err", err)
			}
			return
		}
		m, err := consensus.DecodeMessage(body)
		if err != nil {
			t.bad.Add(1)
			t.log.Debug("consensus transport: undecodable message", "peer", from, "err", err)
			continue
		}
		select {
		case t.inbox <- inbound{from: from, msg: m}:
		default:
			t.dropped.Add(1)
		}
	}
}

// readFrame reads one uvarint-length-prefixed frame of at most max bytes. Memory grows with the bytes that
// arrive, not with the length the frame claims.
func readFrame(r *bufio.Reader, max int) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return nil, err
	}
	if n > uint64(max) {
		return nil, fmt.Errorf("frame of %d bytes, limit %d", n, max)
	}
	body := make([]byte, 0, min(n, 64<<10))
	for uint64(len(body)) < n {
		if len(body) == cap(body) {
			body = slices.Grow(body, min(int(n)-len(body), cap(body)))
		}
		k, err := r.Read(body[len(body):min(cap(body), int(n))])
		body = body[:len(body)+k]
		if err != nil {
			if errors.Is(err, io.EOF) {
				err = io.ErrUnexpectedEOF
			}
			return nil, err
		}
	}
	return body, nil
}
