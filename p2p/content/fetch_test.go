package content

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/p2p"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// testNode is a host on loopback TCP with a real Kademlia DHT and a content service over an in-memory store.
type testNode struct {
	h   host.Host
	dht *dht.IpfsDHT
	st  *Store
	svc *Service
}

func (n *testNode) info() peer.AddrInfo { return peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()} }

// newTestNode starts a node; with bootstrap set it connects to it and the two put each other in their
// routing tables. The test's end closes everything.
func newTestNode(t testing.TB, cfg Config, withDHT bool, bootstrap *testNode) *testNode {
	t.Helper()
	key, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	h, err := p2p.NewHost(p2p.HostConfig{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	n := &testNode{h: h, st: memStore(t)}
	var router *dht.IpfsDHT
	if withDHT {
		n.dht, err = dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/shoulders/contenttest"), dht.DisableAutoRefresh())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.dht.Close() })
		router = n.dht
	}
	if cfg.Log == nil {
		cfg.Log = quiet
	}
	if router != nil {
		n.svc, err = NewService(h, router, n.st, cfg)
	} else {
		n.svc, err = NewService(h, nil, n.st, cfg)
	}
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(n.svc.Close)
	if bootstrap != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Connect(ctx, bootstrap.info()); err != nil {
			t.Fatal(err)
		}
		if withDHT {
			// The DHTs add each other once identify has run; adding them here makes the order deterministic.
			if _, err := n.dht.RoutingTable().TryAddPeer(bootstrap.h.ID(), true, false); err != nil {
				t.Fatal(err)
			}
			if _, err := bootstrap.dht.RoutingTable().TryAddPeer(h.ID(), true, false); err != nil {
				t.Fatal(err)
			}
		}
	}
	return n
}

func add(t testing.TB, n *testNode, data []byte) cid.Cid {
	t.Helper()
	c, size, err := n.svc.Add(bytes.NewReader(data))
	if err != nil || size != int64(len(data)) {
		t.Fatalf("Add: %v (size %d of %d)", err, size, len(data))
	}
	return c
}

func blobHash(t testing.TB, s *Store, c cid.Cid) [32]byte {
	t.Helper()
	r, _, err := s.NewReader(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		t.Fatal(err)
	}
	return [32]byte(h.Sum(nil))
}

func bounded(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

// The test: three nodes on loopback TCP with a real DHT, A the only bootstrap. A adds 1,000 small
// records and a 50 MiB file; C holds the file too. B fetches everything knowing only the CIDs, and A dies
// in the middle of the large transfer: B completes from C.
func TestFetchThroughTheDHTSurvivesAProviderDying(t *testing.T) {
	if testing.Short() {
		t.Skip("moves 50 MiB between three nodes")
	}
	ctx := bounded(t, 2*time.Minute)
	var received atomic.Int64
	var fromAfterKill sync.Map // peer.ID -> blocks delivered after A died
	var killed, armed atomic.Bool
	var a *testNode
	var killOnce sync.Once
	const killAfter = 10
	bcfg := Config{afterBlock: func(from peer.ID, c cid.Cid) {
		if !armed.Load() || IsManifest(c) {
			return
		}
		if killed.Load() {
			v, _ := fromAfterKill.LoadOrStore(from, new(atomic.Int64))
			v.(*atomic.Int64).Add(1)
		}
		if received.Add(1) == killAfter {
			killOnce.Do(func() {
				a.h.Close()
				killed.Store(true)
			})
		}
	}}
	a = newTestNode(t, Config{}, true, nil)
	b := newTestNode(t, bcfg, true, a)
	c := newTestNode(t, Config{}, true, a)

	records := make([][]byte, 1000)
	cids := make([]cid.Cid, len(records))
	for i := range records {
		records[i] = []byte(fmt.Sprintf("record %d: %x", i, randomBytes(uint64(i), 1+i%300)))
		cids[i] = add(t, a, records[i])
	}
	big := randomBytes(50, 50<<20)
	bigCID := add(t, a, big)
	if add(t, c, big) != bigCID {
		t.Fatal("the same bytes got two CIDs")
	}
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(16)
	for _, cc := range cids {
		g.Go(func() error { return a.svc.Provide(gctx, cc) })
	}
	g.Go(func() error { return a.svc.Provide(gctx, bigCID) })
	g.Go(func() error { return c.svc.Provide(gctx, bigCID) })
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	// B knows only the CIDs.
	g, gctx = errgroup.WithContext(ctx)
	g.SetLimit(16)
	for i, cc := range cids {
		g.Go(func() error {
			size, err := b.svc.Fetch(gctx, cc, nil)
			if err != nil {
				return fmt.Errorf("record %d: %w", i, err)
			}
			got, err := b.st.GetBlock(cc)
			if err != nil || size != int64(len(records[i])) || !bytes.Equal(got, records[i]) {
				return fmt.Errorf("record %d: fetched %d bytes that differ (%v)", i, size, err)
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		t.Fatal(err)
	}

	provs, err := b.svc.Providers(ctx, bigCID, 10)
	if err != nil || len(provs) != 2 {
		t.Fatalf("providers of the large file: %v, %v", provs, err)
	}
	armed.Store(true)
	size, err := b.svc.Fetch(ctx, bigCID, nil)
	if err != nil {
		t.Fatal(err)
	}
	if !killed.Load() {
		t.Fatal("A was never killed")
	}
	if size != int64(len(big)) || blobHash(t, b.st, bigCID) != sha256.Sum256(big) {
		t.Fatalf("fetched %d bytes that differ from the file", size)
	}
	if v, ok := fromAfterKill.Load(c.h.ID()); !ok || v.(*atomic.Int64).Load() == 0 {
		t.Fatal("C delivered nothing after A died")
	}
	if v, ok := fromAfterKill.Load(a.h.ID()); ok && v.(*atomic.Int64).Load() > 0 {
		// Blocks A had already sent may be read after its host closed; never more than a window of them.
		if n := v.(*atomic.Int64).Load(); n > int64(b.svc.cfg.Window) {
			t.Fatalf("%d blocks from A after it died", n)
		}
	}
	if pinned, _ := b.st.Pinned(bigCID); !pinned {
		t.Fatal("a fetched blob is not pinned")
	}
	if st := b.svc.Stats(); st.BlocksFetched < int64(len(records))+51 || st.BadBlocks != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// liar serves well-formed responses whose bytes do not match the CIDs asked for, except for the manifests
// in truth, which it serves as they are.
func liar(t testing.TB, truth *Store) *testNode {
	n := newTestNode(t, Config{}, false, nil)
	n.h.SetStreamHandler(Protocol, func(st network.Stream) {
		defer st.Close()
		br := bufio.NewReader(st)
		bw := bufio.NewWriter(st)
		for {
			msg, err := readFrame(br, maxRequestSize, nil)
			if err != nil {
				return
			}
			cids, err := decodeRequest(msg)
			if err != nil {
				st.Reset()
				return
			}
			for _, raw := range cids {
				data := []byte("not what you asked for")
				if c, _ := castCID(raw); IsManifest(c) {
					if b, err := truth.GetBlock(c); err == nil {
						data = b
					}
				}
				writeResponse(bw, raw, data, false)
			}
			bw.Flush()
		}
	})
	return n
}

func TestAProviderServingWrongBytesIsDropped(t *testing.T) {
	for _, size := range []int{1000, 5*ChunkSize + 7} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			ctx := bounded(t, time.Minute)
			honest := newTestNode(t, Config{}, false, nil)
			bad := liar(t, honest.st)
			// One provider at a time, the liar first: it is asked, dropped, and the honest one finishes.
			// For a large blob the liar serves the right manifest and wrong chunks, so it is dropped in
			// the middle of the transfer.
			b := newTestNode(t, Config{MaxProviders: 1}, false, nil)
			data := randomBytes(uint64(size), size)
			c := add(t, honest, data)
			got, err := b.svc.FetchFrom(ctx, c, []peer.AddrInfo{bad.info(), honest.info()}, nil)
			if err != nil {
				t.Fatal(err)
			}
			if got != int64(size) || blobHash(t, b.st, c) != sha256.Sum256(data) {
				t.Fatal("fetched bytes differ")
			}
			if b.svc.Stats().BadBlocks == 0 {
				t.Fatal("the liar's blocks were not counted as bad")
			}
			// The liar alone: the fetch fails, says why, and keeps nothing.
			b2 := newTestNode(t, Config{}, false, nil)
			_, err = b2.svc.FetchFrom(ctx, c, []peer.AddrInfo{bad.info()}, nil)
			if err == nil || !strings.Contains(err.Error(), bad.h.ID().String()+" (dropped: sent a bad block") || !strings.Contains(err.Error(), "does not hash") {
				t.Fatalf("fetching from the liar alone: %v", err)
			}
			// Only the manifest, which the liar served as it is, was kept.
			if wrote, want := b2.st.Stats().BlocksWritten, int64(min(1, size/ChunkSize)); wrote != want {
				t.Fatalf("%d blocks kept from the liar, want %d", wrote, want)
			}
		})
	}
}

func TestAnInterruptedFetchResumes(t *testing.T) {
	ctx := bounded(t, time.Minute)
	a := newTestNode(t, Config{}, false, nil)
	// Cancelled after a quarter of the chunks are stored; what was already received (at most the window
	// and the storer's queue) is still stored, the rest is missing.
	const chunks = 40
	data := randomBytes(9, chunks*ChunkSize-5)
	c := add(t, a, data)

	fctx, cancel := context.WithCancel(ctx)
	var got atomic.Int64
	b := newTestNode(t, Config{Window: 2, afterBlock: func(_ peer.ID, bc cid.Cid) {
		if !IsManifest(bc) && got.Add(1) == chunks/4 {
			cancel()
		}
	}}, false, nil)
	_, err := b.svc.FetchFrom(fctx, c, []peer.AddrInfo{a.info()}, nil)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("the cancelled fetch: %v", err)
	}
	m, err := b.st.manifest(c)
	if err != nil {
		t.Fatal(err)
	}
	missing, err := b.st.missing(m)
	if err != nil {
		t.Fatal(err)
	}
	if len(missing) == 0 || len(missing) > chunks-chunks/4 {
		t.Fatalf("%d chunks missing after the cancelled fetch, want 1 to %d", len(missing), chunks-chunks/4)
	}
	if pinned, _ := b.st.Pinned(c); pinned {
		t.Fatal("an incomplete blob was pinned")
	}
	before := b.svc.Stats().BlocksFetched
	servedBefore := a.svc.Stats().BlocksServed
	var progress []int64
	size, err := b.svc.FetchFrom(ctx, c, []peer.AddrInfo{a.info()}, func(done, total int64) {
		if total != int64(len(data)) {
			t.Errorf("progress total %d", total)
		}
		progress = append(progress, done)
	})
	if err != nil {
		t.Fatal(err)
	}
	if fetched := b.svc.Stats().BlocksFetched - before; fetched != int64(len(missing)) {
		t.Fatalf("the resumed fetch fetched %d blocks, %d were missing", fetched, len(missing))
	}
	if served := a.svc.Stats().BlocksServed - servedBefore; served != int64(len(missing)) {
		t.Fatalf("the provider served %d blocks for the resumed fetch, %d were missing", served, len(missing))
	}
	if size != int64(len(data)) || blobHash(t, b.st, c) != sha256.Sum256(data) {
		t.Fatal("the resumed fetch's bytes differ")
	}
	if len(progress) == 0 || progress[0] != int64(chunks-len(missing))*ChunkSize || progress[len(progress)-1] != size {
		t.Fatalf("progress %v", progress)
	}
}

func TestFetchOfWhatNobodyHasIsNotFound(t *testing.T) {
	ctx := bounded(t, time.Minute)
	a := newTestNode(t, Config{}, true, nil)
	b := newTestNode(t, Config{}, true, a)
	c := newCID(CodecRaw, []byte("nobody has this"))
	_, err := b.svc.Fetch(ctx, c, nil)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no provider of "+c.String()+" found") {
		t.Fatalf("got %v", err)
	}
	// A peer that is asked and does not have it.
	_, err = b.svc.FetchFrom(ctx, c, []peer.AddrInfo{a.info()}, nil)
	if !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "no provider has it") || !strings.Contains(err.Error(), a.h.ID().String()) {
		t.Fatalf("got %v", err)
	}
}

func TestServerLimitsStreamsPerPeer(t *testing.T) {
	ctx := bounded(t, time.Minute)
	a := newTestNode(t, Config{ServeStreamsPerPeer: 2}, false, nil)
	b := newTestNode(t, Config{}, false, a)
	var open []network.Stream
	for range 2 {
		st, err := b.h.NewStream(ctx, a.h.ID(), Protocol)
		if err != nil {
			t.Fatal(err)
		}
		// A request makes the server take a slot before the next stream opens.
		c := add(t, a, []byte(fmt.Sprint(len(open))))
		bw := bufio.NewWriter(st)
		if err := writeRequest(bw, [][]byte{c.Bytes()}); err != nil {
			t.Fatal(err)
		}
		if _, err := readFrame(bufio.NewReader(st), maxResponseSize, nil); err != nil {
			t.Fatal(err)
		}
		open = append(open, st)
	}
	st, err := b.h.NewStream(ctx, a.h.ID(), Protocol)
	if err != nil {
		t.Fatal(err)
	}
	c := add(t, a, []byte("third"))
	writeRequest(bufio.NewWriter(st), [][]byte{c.Bytes()})
	if _, err := readFrame(bufio.NewReader(st), maxResponseSize, nil); err == nil {
		t.Fatal("a third stream from one peer was served")
	}
	for _, st := range open {
		st.Close()
	}
}
