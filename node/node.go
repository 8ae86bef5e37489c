// Package node owns a Shoulders node: its home directory (config.toml, the Ed25519 key, the Pebble store),
// its lifecycle, the wiring of its parts, and its HTTP API (/v1 for programs and the CLI, /debug for
// researchers, /metrics, pprof). It holds no protocol logic of its own: it builds one of each part by hand
// and runs them under one errgroup, so that when Run returns, every goroutine it started has stopped and the
// store is closed.
//
// Decisions where the design is silent:
//   - Every node announces itself with a worker offer (roles, machine, GPUs, executors) on start and every
//     announce_interval (30 s), valid for three intervals; a node without the worker role still announces,
//     so `shoulders workers` can show what each node is, with its roles.
//   - The API has no mutating endpoints yet, so no token. Bound beyond loopback, the node logs a warning.
//   - The node's Pebble store lives in <home>/data and is shared by the parts that keep node-local state,
//     each under its own key prefix ("catalog/", "content/"). The ledger has a store of its own in
//     <home>/data/ledger: its writes are synced per height, the node's are not.
//   - A node runs the ledger when its home holds a genesis.json: as a validator when it has the validator
//     role and its key is in the genesis validator set, as an observer (following the chain by block sync)
//     otherwise. Without a genesis the ledger API answers 503 and says why.
//   - Datanets: the API reads them from the ledger (/v1/datanets...); POST /v1/datanets/{name}/check is
//     what an owner's CLI calls before it signs an approval: the node fetches each record by CID (from any
//     provider the DHT names), verifies it (its hash, the size the contribution claims, UTF-8 in a text
//     datanet) and keeps it, so the owner's node holds and provides every record it approved. A node whose
//     key owns datanets announces each one's latest version when an approval commits (it watches the
//     ledger's heights) and renews the announcements every announce interval, naming itself as provider.
package node

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/compute"
	"github.com/shouldersnet/shoulders/ledger"
	"github.com/shouldersnet/shoulders/p2p"
	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/catalog"
	"github.com/shouldersnet/shoulders/p2p/content"
	pb "github.com/shouldersnet/shoulders/proto"
	"github.com/shouldersnet/shoulders/version"
)

// StoreFormat is the Pebble format the node's store is created with and kept at. Raising it is a one-way
// migration: a store written with a newer format cannot be opened by older software.
const StoreFormat = pebble.FormatValueSeparation

// Options adjust how a node is built; the zero value is right for production.
type Options struct {
	Log *slog.Logger
	// TraceFile, when set, is a file that receives every gossip trace event as a JSON line.
	TraceFile string
	// Host, when set, is used instead of building one from the config (tests use mocknet hosts). The node
	// owns it from then on and closes it.
	Host host.Host
	// FS is the file system of the node's stores (Pebble, the ledger, content block files); nil means the disk.
	FS vfs.FS
	// NoDiscovery turns off DHT discovery (tests that wire peers by hand).
	NoDiscovery bool
	// SyncInterval overrides the catalog anti-entropy interval (p2p.Config.SyncInterval).
	SyncInterval time.Duration
	// Ledger tunes the ledger's block timing and consensus (tests); zero fields take the defaults.
	Ledger ledger.Config
	// Capabilities, when set, replaces probing the machine.
	Capabilities *compute.Capabilities
}

// Node is one running Shoulders node. Open builds it; Run runs it until its context ends.
type Node struct {
	home    string
	cfg     Validated
	log     *slog.Logger
	key     crypto.PrivKey
	host    host.Host
	db      *pebble.DB
	catalog *catalog.Catalog
	net     *p2p.Network
	blobs   *content.Store
	content *content.Service
	ledger  *ledger.Ledger // nil without a genesis
	reg     *prometheus.Registry
	caps    compute.Capabilities
	api     net.Listener
	token   string // required of mutating API requests when the API is reachable beyond loopback
	trace   *os.File
}

// Open loads the node at home (config, key, store), starts its libp2p host and binds its API address.
// Nothing runs until Run; a node that is opened must be Run or Closed.
func Open(ctx context.Context, home string, opts Options) (n *Node, err error) {
	cfg, err := LoadConfig(home)
	if err != nil {
		return nil, err
	}
	key, err := LoadKey(filepath.Join(home, KeyFile))
	if err != nil {
		return nil, err
	}
	log := opts.Log
	if log == nil {
		log = slog.Default()
	}
	if opts.FS == nil {
		opts.FS = vfs.Default
	}
	n = &Node{home: home, cfg: cfg, log: log, key: key, reg: prometheus.NewRegistry()}
	defer func() {
		if err != nil {
			n.close()
		}
	}()
	n.reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))

	n.db, err = openStore(filepath.Join(home, DataDir), opts.FS, log)
	if err != nil {
		return nil, err
	}
	n.catalog, err = catalog.Open(n.db, catalog.Config{Network: cfg.Network, Now: time.Now, Log: log.With("component", "catalog")})
	if err != nil {
		return nil, err
	}

	if opts.Host != nil {
		n.host = opts.Host
	} else {
		n.host, err = p2p.NewHost(p2p.HostConfig{Key: key, Listen: cfg.Config.Listen, Registry: n.reg})
		if err != nil {
			return nil, err
		}
	}
	if n.host.ID() != mustID(key) {
		return nil, fmt.Errorf("node: host identity %s is not the key's %s", n.host.ID(), mustID(key))
	}

	var traceFile io.Writer
	if opts.TraceFile != "" {
		n.trace, err = os.OpenFile(opts.TraceFile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("node: trace file: %w", err)
		}
		traceFile = n.trace
	}
	n.net, err = p2p.New(n.host, n.catalog, p2p.Config{
		Network:      cfg.Network,
		Bootstrap:    cfg.BootstrapPeers,
		Log:          log.With("component", "p2p"),
		Registry:     n.reg,
		TraceFile:    traceFile,
		NoDiscovery:  opts.NoDiscovery,
		SyncInterval: opts.SyncInterval,
	})
	if err != nil {
		return nil, err
	}
	n.registerMetrics()
	n.blobs, err = content.OpenStore(n.db, opts.FS, filepath.Join(home, DataDir, BlocksDir))
	if err != nil {
		return nil, err
	}
	n.content, err = content.NewService(n.host, n.net.DHT(), n.blobs, content.Config{Log: log.With("component", "content"), Registry: n.reg})
	if err != nil {
		return nil, err
	}

	if gpath := filepath.Join(home, ledger.GenesisFile); fileExists(gpath) {
		g, err := ledger.ReadGenesis(gpath)
		if err != nil {
			return nil, err
		}
		n.ledger, err = ledger.Open(ledger.Options{
			Dir: filepath.Join(home, DataDir, "ledger"), FS: opts.FS, Genesis: g, Key: key,
			Validator: slices.Contains(cfg.Roles, announce.RoleValidator), Net: n.net,
			Log: log.With("component", "ledger"), Driver: opts.Ledger,
		})
		if err != nil {
			return nil, err
		}
	}

	if opts.Capabilities != nil {
		n.caps = *opts.Capabilities
	} else {
		n.caps = compute.Probe(ctx, compute.ProbeConfig{})
		if n.caps.GPUError != "" {
			log.Warn("could not list GPUs; offering none", "err", n.caps.GPUError)
		}
	}

	n.api, err = net.Listen("tcp", cfg.API)
	if err != nil {
		return nil, fmt.Errorf("node: API address %s: %w", cfg.API, err)
	}
	if host, _, _ := net.SplitHostPort(cfg.API); !isLoopback(host) {
		n.token, err = loadOrCreateToken(filepath.Join(home, TokenFile))
		if err != nil {
			return nil, err
		}
		log.Warn("the API is reachable beyond this machine; mutating requests need the token in "+TokenFile, "api", cfg.API)
	}
	return n, nil
}

func fileExists(path string) bool {
	_, err := os.Stat(path)
	return err == nil
}

// Ledger is the node's ledger, or nil when its home has no genesis.
func (n *Node) Ledger() *ledger.Ledger { return n.ledger }

func mustID(k crypto.PrivKey) peer.ID {
	id, err := peer.IDFromPrivateKey(k)
	if err != nil {
		panic(err) // LoadKey accepts only Ed25519 keys, which always make an ID
	}
	return id
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func openStore(dir string, fs vfs.FS, log *slog.Logger) (*pebble.DB, error) {
	opts := &pebble.Options{
		FS:                 fs,
		FormatMajorVersion: StoreFormat,
		Logger:             pebbleLogger{log.With("component", "pebble")},
	}
	content.StoreOptions(opts)
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("node: opening store %s: %w", dir, err)
	}
	return db, nil
}

// pebbleLogger routes Pebble's log lines to slog.
type pebbleLogger struct{ log *slog.Logger }

func (l pebbleLogger) Infof(format string, args ...any)  { l.log.Debug(fmt.Sprintf(format, args...)) }
func (l pebbleLogger) Errorf(format string, args ...any) { l.log.Error(fmt.Sprintf(format, args...)) }
func (l pebbleLogger) Fatalf(format string, args ...any) {
	l.log.Error(fmt.Sprintf(format, args...))
	panic(fmt.Sprintf("pebble: "+format, args...))
}

// Run runs the node until ctx ends, then stops every part and closes the store. It returns the first error
// of any part, or nil after a clean stop.
func (n *Node) Run(ctx context.Context) error {
	defer n.close()
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return n.net.Run(ctx) })
	g.Go(func() error { return n.catalog.Run(ctx, time.Minute) })
	g.Go(func() error { return n.content.Run(ctx) })
	g.Go(func() error { return n.announce(ctx) })
	g.Go(func() error { return n.serveAPI(ctx) })
	if n.ledger != nil {
		g.Go(func() error { return n.ledger.Run(ctx) })
		g.Go(func() error { return n.announceDatanets(ctx) })
	}
	n.log.Info("node running", "peer_id", n.host.ID(), "network", n.cfg.Network, "api", n.APIURL(), "roles", n.cfg.Roles)
	err := g.Wait()
	if err != nil {
		return err
	}
	n.log.Info("node stopped")
	return nil
}

// close releases what the node holds, users first: the API, then the network (pubsub validators and stream
// handlers read the ledger), then the stores they read.
func (n *Node) close() {
	if n.api != nil {
		n.api.Close()
	}
	if n.net != nil {
		n.net.Close()
	}
	if n.content != nil {
		n.content.Close()
	}
	if n.host != nil {
		n.host.Close()
	}
	if n.catalog != nil {
		// What gossip delivered after the catalog's own last flush.
		if err := n.catalog.Flush(); err != nil {
			n.log.Error("flushing the catalog", "err", err)
		}
	}
	if n.ledger != nil {
		if err := n.ledger.Close(); err != nil {
			n.log.Error("closing the ledger store", "err", err)
		}
		n.ledger = nil
	}
	if n.db != nil {
		if err := n.db.Flush(); err != nil {
			n.log.Error("flushing store", "err", err)
		}
		if err := n.db.Close(); err != nil {
			n.log.Error("closing store", "err", err)
		}
		n.db = nil
	}
	if n.trace != nil {
		n.trace.Close()
		n.trace = nil
	}
}

// announce publishes this node's worker offer now and every AnnounceInterval.
func (n *Node) announce(ctx context.Context) error {
	t := time.NewTicker(n.cfg.AnnounceInterval)
	defer t.Stop()
	for {
		if _, err := n.publishOffer(ctx); err != nil && ctx.Err() == nil {
			n.log.Warn("publishing worker offer", "err", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// Offer is this node's current worker offer.
func (n *Node) Offer() *pb.WorkerOffer {
	o := &pb.WorkerOffer{
		Roles:       n.cfg.Roles,
		CpuCores:    n.caps.CPUCores,
		MemoryBytes: n.caps.MemoryBytes,
		Executors:   n.caps.Executors,
		Version:     version.Version,
	}
	for _, a := range n.host.Addrs() {
		if len(o.Addrs) == announce.MaxAddrs {
			break
		}
		o.Addrs = append(o.Addrs, a.String())
	}
	for _, g := range n.caps.GPUs {
		o.Gpus = append(o.Gpus, &pb.GPU{Index: g.Index, Uuid: g.UUID, Name: g.Name, MemoryMib: g.MemoryMiB, DriverVersion: g.DriverVersion})
	}
	return o
}

func (n *Node) publishOffer(ctx context.Context) (*announce.Verified, error) {
	ttl := min(3*n.cfg.AnnounceInterval, announce.MaxTTL)
	return n.net.Publish(ctx, pb.Kind_KIND_WORKER_OFFER, n.Offer(), ttl)
}

// ID is the node's peer ID, which is also its ledger address.
func (n *Node) ID() peer.ID { return n.host.ID() }

// Host is the node's libp2p host.
func (n *Node) Host() host.Host { return n.host }

// Network is the node's p2p layer.
func (n *Node) Network() *p2p.Network { return n.net }

// Content is the node's content service: it serves, provides and fetches blobs.
func (n *Node) Content() *content.Service { return n.content }

// Blobs is the node's store of content-addressed blobs.
func (n *Node) Blobs() *content.Store { return n.blobs }

// Catalog is the node's catalog of announcements.
func (n *Node) Catalog() *catalog.Catalog { return n.catalog }

// APIURL is the base URL of the node's HTTP API (http://host:port, with the port bound).
func (n *Node) APIURL() string { return "http://" + n.api.Addr().String() }

// Addrs are the node's full multiaddrs, each ending in /p2p/<peer ID>: what another node's bootstrap list
// needs.
func (n *Node) Addrs() []string {
	addrs, err := peer.AddrInfoToP2pAddrs(&peer.AddrInfo{ID: n.host.ID(), Addrs: n.host.Addrs()})
	if err != nil {
		return []string{}
	}
	out := make([]string, 0, len(addrs))
	for _, a := range addrs {
		out = append(out, a.String())
	}
	return out
}

func (n *Node) registerMetrics() {
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoulders_peers_connected", Help: "Peers this node has at least one connection to.",
	}, func() float64 { return float64(len(n.host.Network().Peers())) }))
	for _, k := range announce.Kinds() {
		n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "shoulders_catalog_entries", Help: "Live announcements in the catalog, by kind.",
			ConstLabels: prometheus.Labels{"kind": announce.KindName(k)},
		}, func() float64 { return float64(n.catalog.Count(k)) }))
	}
	n.reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{
		Name: "shoulders_build_info", Help: "Always 1; the labels say what software runs.",
		ConstLabels: prometheus.Labels{"version": version.Version},
	}, func() float64 { return 1 }))
}
