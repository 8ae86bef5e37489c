package content

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"path/filepath"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
	dht "github.com/libp2p/go-libp2p-kad-dht"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/p2p"
)

// FetchBenchConfig describes one content benchmark run.
type FetchBenchConfig struct {
	Size int64 // bytes of the random blob (default 256 MiB)
	// Dir holds the nodes' stores (Pebble and block files); empty means a temporary directory, removed
	// afterwards. InMemory keeps them in Pebble's in-memory file system instead.
	Dir      string
	InMemory bool
	Seed     uint64
	// Rounds runs each measurement this many times, alternating them, and keeps the best of each (default 2).
	Rounds int
	Log    *slog.Logger
}

// FetchBenchResult is one measurement: bytes moved and how long it took.
type FetchBenchResult struct {
	Name     string        `json:"name"`
	Bytes    int64         `json:"bytes"`
	Duration time.Duration `json:"duration_ns"`
	MBps     float64       `json:"mb_per_s"` // 10^6 bytes per second
}

func result(name string, n int64, d time.Duration) FetchBenchResult {
	return FetchBenchResult{Name: name, Bytes: n, Duration: d, MBps: float64(n) / d.Seconds() / 1e6}
}

// BenchFetch starts libp2p hosts on loopback TCP with a real DHT (two providers and, per fetch, a fresh
// fetcher that bootstraps from the first provider), adds a random blob of cfg.Size bytes on both providers,
// and measures, in this process: a plain single-stream TCP copy of the same bytes over loopback (the
// baseline), the same copy over one libp2p stream between the providers (the transport's ceiling: TLS and
// yamux, no hashing, no storage), a fetch of the blob from one provider, and a fetch from the two at once.
// Each fetch finds its providers through the DHT, verifies every chunk and stores it. It returns
// [tcp, libp2p stream, one provider, two].
func BenchFetch(ctx context.Context, cfg FetchBenchConfig) ([]FetchBenchResult, error) {
	if cfg.Size == 0 {
		cfg.Size = 256 << 20
	}
	if cfg.Rounds == 0 {
		cfg.Rounds = 2
	}
	if cfg.Log == nil {
		cfg.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if cfg.Size <= 0 || cfg.Size > 4<<30 {
		return nil, fmt.Errorf("content: bench size %d, want 1 byte to 4 GiB", cfg.Size)
	}
	if cfg.Dir == "" && !cfg.InMemory {
		dir, err := os.MkdirTemp("", "shoulders-bench-content-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(dir)
		cfg.Dir = dir
	}
	data := make([]byte, cfg.Size)
	rng := rand.NewChaCha8([32]byte{byte(cfg.Seed), byte(cfg.Seed >> 8), 1})
	rng.Read(data)

	r := &benchRig{cfg: cfg}
	defer r.close()
	p1, err := r.node(nil)
	if err != nil {
		return nil, err
	}
	p2, err := r.node(p1)
	if err != nil {
		return nil, err
	}
	var root cid.Cid
	for _, p := range []*benchNode{p1, p2} {
		c, _, err := p.svc.Add(bytes.NewReader(data))
		if err != nil {
			return nil, err
		}
		root = c
	}
	if err := p1.svc.Provide(ctx, root); err != nil {
		return nil, err
	}

	best := make([]FetchBenchResult, 4)
	keep := func(i int, res FetchBenchResult) {
		if best[i].Duration == 0 || res.Duration < best[i].Duration {
			best[i] = res
		}
	}
	for round := range cfg.Rounds {
		d, err := tcpCopy(ctx, data)
		if err != nil {
			return nil, fmt.Errorf("content: bench TCP copy: %w", err)
		}
		keep(0, result("plain TCP copy, one stream", cfg.Size, d))
		if d, err = streamCopy(ctx, p1.h, p2.h, data); err != nil {
			return nil, fmt.Errorf("content: bench libp2p stream copy: %w", err)
		}
		keep(1, result("libp2p stream copy (TLS, yamux)", cfg.Size, d))
		for i, provs := range [][]*benchNode{{p1}, {p1, p2}} {
			d, err := r.fetch(ctx, root, provs)
			if err != nil {
				return nil, fmt.Errorf("content: bench round %d, fetch from %d providers: %w", round, len(provs), err)
			}
			keep(i+2, result(fmt.Sprintf("fetch from %d provider(s)", len(provs)), cfg.Size, d))
		}
	}
	return best, nil
}

// tcpCopy sends data over one loopback TCP connection to a reader that discards it, and times it.
func tcpCopy(ctx context.Context, data []byte) (time.Duration, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer ln.Close()
	type res struct {
		n   int64
		err error
	}
	got := make(chan res, 1)
	// Owned by tcpCopy: it ends when the sender closes the connection (or the listener is closed).
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- res{err: err}
			return
		}
		defer c.Close()
		n, err := io.CopyBuffer(io.Discard, c, make([]byte, ChunkSize))
		got <- res{n, err}
	}()
	var d net.Dialer
	c, err := d.DialContext(ctx, "tcp", ln.Addr().String())
	if err != nil {
		return 0, err
	}
	start := time.Now()
	if _, err := c.Write(data); err != nil {
		c.Close()
		return 0, err
	}
	c.Close()
	r := <-got
	if r.err != nil {
		return 0, r.err
	}
	if r.n != int64(len(data)) {
		return 0, fmt.Errorf("received %d of %d bytes", r.n, len(data))
	}
	return time.Since(start), nil
}

// benchCopyProtocol is the protocol of streamCopy's stream.
const benchCopyProtocol = "/shoulders/contentbench/copy/1"

// streamCopy sends data over one libp2p stream from one host to another (TLS and yamux over loopback TCP,
// what a fetch's stream rides on) to a reader that discards it, and times it: the transport's ceiling.
func streamCopy(ctx context.Context, from, to host.Host, data []byte) (time.Duration, error) {
	type res struct {
		n   int64
		err error
	}
	got := make(chan res, 1)
	// The handler runs on to's goroutine for the stream; it ends when the sender closes its side.
	to.SetStreamHandler(benchCopyProtocol, func(st network.Stream) {
		defer st.Close()
		n, err := io.CopyBuffer(io.Discard, st, make([]byte, ChunkSize))
		got <- res{n, err}
	})
	defer to.RemoveStreamHandler(benchCopyProtocol)
	if err := from.Connect(ctx, peer.AddrInfo{ID: to.ID(), Addrs: to.Addrs()}); err != nil {
		return 0, err
	}
	st, err := from.NewStream(ctx, to.ID(), benchCopyProtocol)
	if err != nil {
		return 0, err
	}
	start := time.Now()
	for b := data; len(b) > 0; b = b[min(len(b), ChunkSize):] {
		if _, err := st.Write(b[:min(len(b), ChunkSize)]); err != nil {
			st.Reset()
			return 0, err
		}
	}
	if err := st.CloseWrite(); err != nil {
		st.Reset()
		return 0, err
	}
	var r res
	select {
	case r = <-got:
	case <-ctx.Done():
		st.Reset()
		return 0, ctx.Err()
	}
	st.Close()
	if r.err != nil {
		return 0, r.err
	}
	if r.n != int64(len(data)) {
		return 0, fmt.Errorf("received %d of %d bytes", r.n, len(data))
	}
	return time.Since(start), nil
}

type benchRig struct {
	cfg   FetchBenchConfig
	nodes []*benchNode
	n     int
}

type benchNode struct {
	h   host.Host
	dht *dht.IpfsDHT
	db  *pebble.DB
	svc *Service
}

func (r *benchRig) close() {
	for _, n := range r.nodes {
		n.close()
	}
}

func (n *benchNode) close() {
	n.svc.Close()
	n.dht.Close()
	n.h.Close()
	n.db.Close()
}

func (n *benchNode) info() peer.AddrInfo { return peer.AddrInfo{ID: n.h.ID(), Addrs: n.h.Addrs()} }

// node starts a node; with bootstrap set it connects to it and each puts the other in its routing table.
func (r *benchRig) node(bootstrap *benchNode) (*benchNode, error) {
	r.n++
	opts := &pebble.Options{FormatMajorVersion: pebble.FormatValueSeparation, Logger: quietLogger{}}
	StoreOptions(opts)
	dir := filepath.Join(r.cfg.Dir, fmt.Sprint("node", r.n))
	opts.FS = vfs.Default
	if r.cfg.InMemory {
		opts.FS, dir = vfs.NewMem(), ""
	}
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, err
	}
	key, _, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		db.Close()
		return nil, err
	}
	h, err := p2p.NewHost(p2p.HostConfig{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		db.Close()
		return nil, err
	}
	d, err := dht.New(h, dht.Mode(dht.ModeServer), dht.ProtocolPrefix("/shoulders/contentbench"), dht.DisableAutoRefresh())
	if err != nil {
		h.Close()
		db.Close()
		return nil, err
	}
	st, err := OpenStore(db, opts.FS, opts.FS.PathJoin(dir, "blocks"))
	if err != nil {
		db.Close()
		return nil, err
	}
	svc, err := NewService(h, d, st, Config{Log: r.cfg.Log})
	if err != nil {
		d.Close()
		h.Close()
		db.Close()
		return nil, err
	}
	n := &benchNode{h: h, dht: d, db: db, svc: svc}
	r.nodes = append(r.nodes, n)
	if bootstrap != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		if err := h.Connect(ctx, bootstrap.info()); err != nil {
			return nil, err
		}
		// The DHTs add each other once identify has run; adding them here saves waiting for it.
		d.RoutingTable().TryAddPeer(bootstrap.h.ID(), true, false)
		bootstrap.dht.RoutingTable().TryAddPeer(h.ID(), true, false)
	}
	return n, nil
}

// fetch starts a fresh fetcher bootstrapping from the first of provs and times its fetch of root. Only provs
// are asked: the providers are found through the DHT when there is one, named as hints when there are two
// (both have provided, but the bench must not depend on which records the DHT returns first).
func (r *benchRig) fetch(ctx context.Context, root cid.Cid, provs []*benchNode) (time.Duration, error) {
	f, err := r.node(provs[0])
	if err != nil {
		return 0, err
	}
	defer func() {
		r.nodes = r.nodes[:len(r.nodes)-1]
		f.close()
	}()
	var hints []peer.AddrInfo
	for _, p := range provs[1:] {
		hints = append(hints, p.info())
	}
	start := time.Now()
	size, err := f.svc.FetchFrom(ctx, root, hints, nil)
	if err != nil {
		return 0, err
	}
	d := time.Since(start)
	if want, err := provs[0].svc.store.Size(root); err != nil || size != want {
		return 0, errors.Join(err, fmt.Errorf("fetched %d bytes, want %d", size, want))
	}
	return d, nil
}

type quietLogger struct{}

func (quietLogger) Infof(string, ...any)           {}
func (quietLogger) Errorf(string, ...any)          {}
func (quietLogger) Fatalf(format string, a ...any) { panic(fmt.Sprintf(format, a...)) }
