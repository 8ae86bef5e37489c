package ledger

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// SyncProtocol serves committed blocks with their certificates to nodes that are behind or that follow the
// chain without taking part in consensus.
//
// Request: 16 bytes: the first height wanted (8, big-endian), how many at most (4), and how long the server
// may wait for the first of them to be committed, in milliseconds (4; 0 answers at once). Response:
// uvarint-length-prefixed frames: first the server's committed height (8 bytes), then one consensus Commit
// (block and certificate, in the consensus codec) per height from the first wanted, in order, then an empty
// frame. The receiver trusts nothing it did not verify: every commit goes through the consensus core, which
// checks its certificate against the validator set and the block against the chain.
const SyncProtocol = protocol.ID("/shoulders/sync/1")

// Sync limits.
const (
	syncMaxCommits   = 64
	syncMaxWait      = 10 * time.Second
	syncMaxBytes     = 64 << 20 // of one response, past the first commit
	syncServing      = 16       // responses being written at once
	syncTimeout      = 30 * time.Second
	syncRequestBytes = 16
	applyStall       = 5 * time.Second // a synced commit not applied within this of the last is given up on
)

// errNoPeer is returned when no peer could answer a sync request.
var errNoPeer = errors.New("ledger: no peer to sync from")

// commitSource is what the sync server reads: committed heights of the local store.
type commitSource interface {
	Height() uint64
	Commit(h uint64) (*consensus.Commit, error)
}

// syncServer answers SyncProtocol requests from the local store.
type syncServer struct {
	src     commitSource
	heights *heightNotifier
	serving chan struct{}

	stop     chan struct{} // closed by shutdown: long polls end
	handlers sync.WaitGroup

	mu      sync.Mutex
	stopped bool
	active  map[peer.ID]bool // one request in flight per peer
}

func newSyncServer(src commitSource, heights *heightNotifier) *syncServer {
	return &syncServer{src: src, heights: heights, serving: make(chan struct{}, syncServing), stop: make(chan struct{}), active: make(map[peer.ID]bool)}
}

// shutdown refuses new requests and waits for the ones being answered (after the handler is removed from
// the host, so that the store can be closed once it returns).
func (s *syncServer) shutdown() {
	s.mu.Lock()
	s.stopped = true
	s.mu.Unlock()
	close(s.stop)
	s.handlers.Wait()
}

func (s *syncServer) handle(st network.Stream) {
	from := st.Conn().RemotePeer()
	s.mu.Lock()
	busy := s.stopped || s.active[from]
	if !busy {
		s.active[from] = true
		s.handlers.Add(1)
	}
	s.mu.Unlock()
	if busy {
		st.Reset()
		return
	}
	defer s.handlers.Done()
	defer func() {
		s.mu.Lock()
		delete(s.active, from)
		s.mu.Unlock()
	}()
	select {
	case s.serving <- struct{}{}:
		defer func() { <-s.serving }()
	default:
		st.Reset()
		return
	}
	st.SetDeadline(time.Now().Add(syncTimeout + syncMaxWait))
	var req [syncRequestBytes]byte
	if _, err := io.ReadFull(st, req[:]); err != nil {
		st.Reset()
		return
	}
	first := binary.BigEndian.Uint64(req[0:8])
	count := min(uint64(binary.BigEndian.Uint32(req[8:12])), syncMaxCommits)
	wait := min(time.Duration(binary.BigEndian.Uint32(req[12:16]))*time.Millisecond, syncMaxWait)
	if first == 0 || count == 0 {
		st.Reset()
		return
	}
	// Long poll: wait (bounded) for the first wanted height to be committed.
	if wait > 0 {
		timer := time.NewTimer(wait)
		defer timer.Stop()
	poll:
		for {
			changed := s.heights.changed() // before the check, so a height committed in between is not missed
			if s.src.Height() >= first {
				break
			}
			select {
			case <-changed:
			case <-timer.C:
				break poll
			case <-s.stop:
				st.Reset()
				return
			}
		}
	}
	w := bufio.NewWriterSize(st, 256<<10)
	height := s.src.Height()
	var hb [8]byte
	binary.BigEndian.PutUint64(hb[:], height)
	if writeFrame(w, hb[:]) != nil {
		st.Reset()
		return
	}
	size := 0
	for h := first; h <= height && h < first+count && size < syncMaxBytes; h++ {
		c, err := s.src.Commit(h)
		if err != nil {
			break
		}
		body := consensus.EncodeMessage(c)
		size += len(body)
		if writeFrame(w, body) != nil {
			st.Reset()
			return
		}
	}
	if writeFrame(w, nil) != nil || w.Flush() != nil {
		st.Reset()
		return
	}
	st.Close()
}

func writeFrame(w *bufio.Writer, body []byte) error {
	var n [binary.MaxVarintLen64]byte
	if _, err := w.Write(n[:binary.PutUvarint(n[:], uint64(len(body)))]); err != nil {
		return err
	}
	_, err := w.Write(body)
	return err
}

// fetchCommits asks p for up to count commits from height first, letting it wait up to wait for the first
// one. It returns p's committed height and the commits, decoded but not verified.
func fetchCommits(ctx context.Context, h interface {
	NewStream(context.Context, peer.ID, ...protocol.ID) (network.Stream, error)
}, p peer.ID, first uint64, count int, wait time.Duration) (uint64, []*consensus.Commit, error) {
	ctx, cancel := context.WithTimeout(ctx, syncTimeout+wait)
	defer cancel()
	st, err := h.NewStream(ctx, p, SyncProtocol)
	if err != nil {
		return 0, nil, err
	}
	defer st.Reset()
	deadline, _ := ctx.Deadline()
	st.SetDeadline(deadline)
	var req [syncRequestBytes]byte
	binary.BigEndian.PutUint64(req[0:8], first)
	binary.BigEndian.PutUint32(req[8:12], uint32(count))
	binary.BigEndian.PutUint32(req[12:16], uint32(wait/time.Millisecond))
	if _, err := st.Write(req[:]); err != nil {
		return 0, nil, err
	}
	st.CloseWrite()
	r := bufio.NewReaderSize(st, 256<<10)
	hb, err := readFrame(r, 8)
	if err != nil || len(hb) != 8 {
		return 0, nil, fmt.Errorf("sync response header: %v", err)
	}
	height := binary.BigEndian.Uint64(hb)
	var out []*consensus.Commit
	size := 0
	for {
		body, err := readFrame(r, consensus.MaxMessageBytes)
		if err != nil {
			return height, out, fmt.Errorf("sync response: %w", err)
		}
		if len(body) == 0 {
			return height, out, nil
		}
		// The server stops at count commits, or after the one that took the response past syncMaxBytes.
		if len(out) == count || size >= syncMaxBytes {
			return height, out, fmt.Errorf("sync response: more commits than asked for (%d, %d bytes)", len(out)+1, size+len(body))
		}
		size += len(body)
		m, err := consensus.DecodeMessage(body)
		if err != nil {
			return height, out, fmt.Errorf("sync response: %w", err)
		}
		c, ok := m.(*consensus.Commit)
		if !ok || c.Block.Header.Height != first+uint64(len(out)) {
			return height, out, fmt.Errorf("sync response: expected the commit of height %d", first+uint64(len(out)))
		}
		out = append(out, c)
	}
}

// heightNotifier lets readers wait for the committed height to change.
type heightNotifier struct {
	mu sync.Mutex
	ch chan struct{}
}

func newHeightNotifier() *heightNotifier { return &heightNotifier{ch: make(chan struct{})} }

// changed returns a channel closed at the next committed height.
func (n *heightNotifier) changed() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.ch
}

func (n *heightNotifier) notify() {
	n.mu.Lock()
	close(n.ch)
	n.ch = make(chan struct{})
	n.mu.Unlock()
}
