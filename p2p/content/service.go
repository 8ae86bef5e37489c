package content

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/routing"
	"github.com/prometheus/client_golang/prometheus"
	"golang.org/x/sync/errgroup"
)

// Config tunes a Service. Zero values take the defaults named.
type Config struct {
	Log *slog.Logger
	// Registry receives the service's metrics; nil keeps them unregistered.
	Registry prometheus.Registerer
	// ReprovideInterval is how often every pinned blob is provided again (default 12 h).
	ReprovideInterval time.Duration
	// Window is how many blocks a fetch keeps requested from one provider at a time (default 8). Besides
	// those, at most seven received blocks per provider are held in memory: a queue of four for the
	// provider's two storers, one in each, one being read.
	Window int
	// MaxProviders is how many providers one fetch uses at most (default 8, at most 64).
	MaxProviders int
	// BlockTimeout bounds the wait for one block from a provider, and a server's write of one block
	// (default 30 s).
	BlockTimeout time.Duration
	// FindTimeout bounds one DHT lookup of providers (default 30 s).
	FindTimeout time.Duration
	// ServeStreams and ServeStreamsPerPeer bound the fetch streams this node serves at once, in all and to
	// one peer (defaults 64 and 8); a stream over the limit is reset. Each serving stream holds one block
	// at a time.
	ServeStreams, ServeStreamsPerPeer int
	// StreamsPerPeer bounds the fetch streams this node opens to one peer at once, over all its fetches
	// (default 4, under the default ServeStreamsPerPeer of the peer); a fetch waits for a free one.
	StreamsPerPeer int
	// ProvideWorkers is how many DHT provides run at once (default 8).
	ProvideWorkers int

	// afterBlock, in tests, is called after a fetched block is verified and stored, on one of the goroutines
	// storing a provider's blocks (two per provider, so calls may be concurrent).
	afterBlock func(from peer.ID, c cid.Cid)
}

// Defaults.
const (
	DefaultReprovideInterval = 12 * time.Hour
	defaultWindow            = 8
	defaultMaxProviders      = 8
	maxProviders             = 64 // a fetch tracks which providers lack a chunk in a uint64
	defaultBlockTimeout      = 30 * time.Second
	defaultFindTimeout       = 30 * time.Second
	defaultServeStreams      = 64
	defaultServePerPeer      = 8
	defaultStreamsPerPeer    = 4
	defaultProvideWorkers    = 8
	dialTimeout              = 15 * time.Second
	provideTimeout           = time.Minute
	provideBatch             = 256
	maxProvideBackoff        = 5 * time.Minute
)

func (c *Config) validate() error {
	if c.Log == nil {
		c.Log = slog.Default()
	}
	if c.ReprovideInterval == 0 {
		c.ReprovideInterval = DefaultReprovideInterval
	}
	if c.Window == 0 {
		c.Window = defaultWindow
	}
	if c.MaxProviders == 0 {
		c.MaxProviders = defaultMaxProviders
	}
	if c.BlockTimeout == 0 {
		c.BlockTimeout = defaultBlockTimeout
	}
	if c.FindTimeout == 0 {
		c.FindTimeout = defaultFindTimeout
	}
	if c.ServeStreams == 0 {
		c.ServeStreams = defaultServeStreams
	}
	if c.ServeStreamsPerPeer == 0 {
		c.ServeStreamsPerPeer = defaultServePerPeer
	}
	if c.StreamsPerPeer == 0 {
		c.StreamsPerPeer = defaultStreamsPerPeer
	}
	if c.ProvideWorkers == 0 {
		c.ProvideWorkers = defaultProvideWorkers
	}
	switch {
	case c.ReprovideInterval < time.Minute:
		return fmt.Errorf("content: Config.ReprovideInterval %v is under a minute", c.ReprovideInterval)
	case c.Window < 1 || c.Window > MaxRequestCIDs:
		return fmt.Errorf("content: Config.Window %d, want 1 to %d", c.Window, MaxRequestCIDs)
	case c.MaxProviders < 1 || c.MaxProviders > maxProviders:
		return fmt.Errorf("content: Config.MaxProviders %d, want 1 to %d", c.MaxProviders, maxProviders)
	case c.BlockTimeout < 0 || c.FindTimeout < 0:
		return errors.New("content: Config.BlockTimeout and FindTimeout must not be negative")
	case c.ServeStreams < 1 || c.ServeStreamsPerPeer < 1 || c.StreamsPerPeer < 1 || c.ProvideWorkers < 1:
		return errors.New("content: Config.ServeStreams, ServeStreamsPerPeer, StreamsPerPeer and ProvideWorkers must be positive")
	}
	return nil
}

// Service serves this node's blocks to peers, provides its pinned blobs in the DHT, and fetches blobs from
// providers. NewService starts serving; Run runs the provide loop; Close stops serving.
type Service struct {
	h      host.Host
	router routing.ContentRouting // nil: no DHT (fetches use hint peers only, nothing is provided)
	store  *Store
	cfg    Config
	log    *slog.Logger

	serving struct {
		sync.Mutex
		total   int
		perPeer map[peer.ID]int
	}

	// outgoing counts the fetch streams open to each peer.
	outgoing struct {
		sync.Mutex
		perPeer map[peer.ID]int
		freed   chan struct{} // closed and replaced when a stream is released
	}

	provide struct {
		sync.Mutex
		pending map[cid.Cid]struct{}
	}
	provideWake chan struct{} // capacity 1: something was queued to provide

	// frameBufs recycles buffers for responses read from providers: a block's buffer goes from the worker
	// that read it to its storer and back.
	frameBufs sync.Pool

	blocksFetched, bytesFetched atomic.Int64
	blocksServed, bytesServed   atomic.Int64
	badBlocks                   atomic.Int64
	provided, provideFailures   atomic.Int64

	closeOnce sync.Once
}

// Stats counts what the service did since it started.
type Stats struct {
	BlocksFetched   int64 `json:"blocks_fetched"`
	BytesFetched    int64 `json:"bytes_fetched"`
	BlocksServed    int64 `json:"blocks_served"`
	BytesServed     int64 `json:"bytes_served"`
	BadBlocks       int64 `json:"bad_blocks"` // blocks peers sent that did not match their CID
	Provided        int64 `json:"provided"`
	ProvideFailures int64 `json:"provide_failures"`
	StoreStats
}

// NewService builds the content service of host h and starts serving st's blocks on Protocol. router finds
// providers and announces ours: the node's DHT ((*p2p.Network).DHT()); nil means no DHT.
func NewService(h host.Host, router routing.ContentRouting, st *Store, cfg Config) (*Service, error) {
	if h == nil || st == nil {
		return nil, errors.New("content: NewService needs a host and a store")
	}
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Service{h: h, router: router, store: st, cfg: cfg, log: cfg.Log, provideWake: make(chan struct{}, 1)}
	s.serving.perPeer = map[peer.ID]int{}
	s.outgoing.perPeer = map[peer.ID]int{}
	s.outgoing.freed = make(chan struct{})
	s.provide.pending = map[cid.Cid]struct{}{}
	s.frameBufs.New = func() any { b := make([]byte, 0, ChunkSize+64); return &b }
	if cfg.Registry != nil {
		if err := s.registerMetrics(cfg.Registry); err != nil {
			return nil, err
		}
	}
	h.SetStreamHandler(Protocol, s.serve)
	return s, nil
}

func (s *Service) registerMetrics(reg prometheus.Registerer) error {
	counter := func(name, help string, v *atomic.Int64) prometheus.Collector {
		return prometheus.NewCounterFunc(prometheus.CounterOpts{Name: name, Help: help}, func() float64 { return float64(v.Load()) })
	}
	for _, c := range []prometheus.Collector{
		counter("shoulders_content_blocks_fetched_total", "Blocks fetched from peers, verified and stored.", &s.blocksFetched),
		counter("shoulders_content_bytes_fetched_total", "Bytes of blocks fetched from peers.", &s.bytesFetched),
		counter("shoulders_content_blocks_served_total", "Blocks served to peers.", &s.blocksServed),
		counter("shoulders_content_bytes_served_total", "Bytes of blocks served to peers.", &s.bytesServed),
		counter("shoulders_content_bad_blocks_total", "Blocks peers sent that did not hash to their CID.", &s.badBlocks),
		counter("shoulders_content_provided_total", "Provider records put in the DHT.", &s.provided),
		counter("shoulders_content_provide_failures_total", "Provides that failed (retried later).", &s.provideFailures),
		counter("shoulders_content_blocks_written_total", "Blocks written to the store.", &s.store.blocksWritten),
		counter("shoulders_content_bytes_written_total", "Bytes of blocks written to the store.", &s.store.bytesWritten),
	} {
		if err := reg.Register(c); err != nil {
			return fmt.Errorf("content: metrics: %w", err)
		}
	}
	return nil
}

// acquireStream waits until this node has fewer than StreamsPerPeer fetch streams open to p and takes one;
// the caller calls the returned release when its stream is done.
func (s *Service) acquireStream(ctx context.Context, p peer.ID) (release func(), err error) {
	for {
		s.outgoing.Lock()
		if s.outgoing.perPeer[p] < s.cfg.StreamsPerPeer {
			s.outgoing.perPeer[p]++
			s.outgoing.Unlock()
			return func() {
				s.outgoing.Lock()
				defer s.outgoing.Unlock()
				if s.outgoing.perPeer[p]--; s.outgoing.perPeer[p] == 0 {
					delete(s.outgoing.perPeer, p)
				}
				close(s.outgoing.freed)
				s.outgoing.freed = make(chan struct{})
			}, nil
		}
		freed := s.outgoing.freed
		s.outgoing.Unlock()
		select {
		case <-freed:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
}

// Stats returns what the service did since it started.
func (s *Service) Stats() Stats {
	return Stats{
		BlocksFetched: s.blocksFetched.Load(), BytesFetched: s.bytesFetched.Load(),
		BlocksServed: s.blocksServed.Load(), BytesServed: s.bytesServed.Load(),
		BadBlocks: s.badBlocks.Load(), Provided: s.provided.Load(), ProvideFailures: s.provideFailures.Load(),
		StoreStats: s.store.Stats(),
	}
}

// Store is the service's block store.
func (s *Service) Store() *Store { return s.store }

// Close stops serving blocks. Streams being served finish within their deadlines.
func (s *Service) Close() {
	s.closeOnce.Do(func() { s.h.RemoveStreamHandler(Protocol) })
}

// Add stores the blob r reads (Store.Add), pins it, and queues it to be provided.
func (s *Service) Add(r io.Reader) (cid.Cid, int64, error) {
	c, size, err := s.store.Add(r)
	if err != nil {
		return cid.Undef, 0, err
	}
	s.queueProvide(c)
	return c, size, nil
}

// queueProvide asks Run to provide c soon.
func (s *Service) queueProvide(c cid.Cid) {
	if s.router == nil {
		return
	}
	s.provide.Lock()
	s.provide.pending[c] = struct{}{}
	s.provide.Unlock()
	select {
	case s.provideWake <- struct{}{}:
	default:
	}
}

// Provide announces in the DHT that this node provides c, and waits for the announcement to be placed.
func (s *Service) Provide(ctx context.Context, c cid.Cid) error {
	if s.router == nil {
		return errors.New("content: no DHT to provide in")
	}
	ctx, cancel := context.WithTimeout(ctx, provideTimeout)
	defer cancel()
	if err := s.router.Provide(ctx, c, true); err != nil {
		s.provideFailures.Add(1)
		return fmt.Errorf("content: providing %s: %w", c, err)
	}
	s.provided.Add(1)
	return nil
}

// Providers looks up, through the DHT, up to limit peers that provide c (this node among them if it does).
func (s *Service) Providers(ctx context.Context, c cid.Cid, limit int) ([]peer.AddrInfo, error) {
	if err := checkCID(c); err != nil {
		return nil, err
	}
	if s.router == nil {
		return nil, errors.New("content: no DHT to look providers up in")
	}
	if limit <= 0 || limit > 100 {
		return nil, fmt.Errorf("content: provider limit %d, want 1 to 100", limit)
	}
	ctx, cancel := context.WithTimeout(ctx, s.cfg.FindTimeout)
	defer cancel()
	out := []peer.AddrInfo{}
	for ai := range s.router.FindProvidersAsync(ctx, c, limit) {
		if ai.ID == s.h.ID() && len(ai.Addrs) == 0 {
			ai.Addrs = s.h.Addrs()
		}
		out = append(out, ai)
	}
	return out, nil
}

// Run provides every pinned blob now and every ReprovideInterval, and whatever is queued (added or fetched)
// as soon as it is, until ctx ends. A provide that fails (no DHT peers yet, a timeout) is retried with
// backoff from a second up to five minutes. The provides run on goroutines Run owns and waits for.
func (s *Service) Run(ctx context.Context) error {
	if s.router == nil {
		<-ctx.Done()
		return nil
	}
	reprovide := time.NewTicker(s.cfg.ReprovideInterval)
	defer reprovide.Stop()
	retry := time.NewTimer(time.Hour)
	retry.Stop()
	defer retry.Stop()
	backoff := time.Second
	s.queuePins()
	for {
		failed := s.provideBatch(ctx)
		if ctx.Err() != nil {
			return nil
		}
		if failed {
			retry.Reset(backoff)
			backoff = min(2*backoff, maxProvideBackoff)
		} else if s.pendingCount() == 0 {
			backoff = time.Second
		} else {
			continue // more than one batch queued
		}
		select {
		case <-ctx.Done():
			return nil
		case <-s.provideWake:
		case <-retry.C:
		case <-reprovide.C:
			s.queuePins()
		}
	}
}

func (s *Service) queuePins() {
	pins, err := s.store.Pins()
	if err != nil {
		s.log.Error("content: listing pins to provide", "err", err)
		return
	}
	s.provide.Lock()
	for _, c := range pins {
		s.provide.pending[c] = struct{}{}
	}
	s.provide.Unlock()
}

func (s *Service) pendingCount() int {
	s.provide.Lock()
	defer s.provide.Unlock()
	return len(s.provide.pending)
}

// provideBatch provides up to provideBatch pending CIDs, ProvideWorkers at a time, and puts back those that
// failed. It reports whether any failed.
func (s *Service) provideBatch(ctx context.Context) bool {
	s.provide.Lock()
	batch := make([]cid.Cid, 0, min(provideBatch, len(s.provide.pending)))
	for c := range s.provide.pending {
		if len(batch) == provideBatch {
			break
		}
		batch = append(batch, c)
		delete(s.provide.pending, c)
	}
	s.provide.Unlock()
	if len(batch) == 0 {
		return false
	}
	var failed atomic.Bool
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(s.cfg.ProvideWorkers)
	for _, c := range batch {
		g.Go(func() error {
			if err := s.Provide(gctx, c); err != nil {
				if gctx.Err() == nil {
					s.log.Debug("content: provide failed; will retry", "cid", c, "err", err)
				}
				failed.Store(true)
				s.provide.Lock()
				s.provide.pending[c] = struct{}{}
				s.provide.Unlock()
			}
			return nil
		})
	}
	g.Wait()
	return failed.Load()
}
