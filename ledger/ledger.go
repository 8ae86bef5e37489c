package ledger

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/mempool"
	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/ledger/store"
	"github.com/shouldersnet/shoulders/p2p"
)

// Options is what Open needs.
type Options struct {
	// Dir is the store's directory.
	Dir string
	FS  vfs.FS // nil: the disk
	// Genesis is the chain to join.
	Genesis *Genesis
	// Key is the node's key. A node whose key is in the validator set and that has the validator role
	// (Validator) votes; any other node follows the chain as an observer.
	Key       crypto.PrivKey
	Validator bool
	Net       *p2p.Network
	Log       *slog.Logger
	// Driver tunes block timing and consensus (zero fields take the defaults).
	Driver Config
}

// Ledger is one node's ledger: store, application, mempool, the consensus driver and the gossip of
// transactions. Open builds it, Run runs it, Close closes the store once Run has returned.
type Ledger struct {
	genesis *Genesis
	chainID string
	store   *store.Store
	app     *state.App
	mempool *mempool.Mempool
	driver  *Driver
	txs     *p2p.GossipTopic
	self    peer.ID
	log     *slog.Logger

	outbox chan []byte // admitted transactions waiting to be gossiped

	// users of the store from outside Run (gossip validators, API submissions) hold users.RLock; Close
	// takes the write lock, so it waits for them, and marks the ledger closed for any that come later.
	users struct {
		sync.RWMutex
		closed bool
	}
}

// Transaction gossip: batches of transactions on /shoulders/<network>/txs/1.
const (
	txBatchMax     = 256                  // transactions per gossip message
	txBatchBytes   = 512 << 10            // bytes per gossip message
	txBatchWait    = 5 * time.Millisecond // how long a partial batch waits for more
	txOutbox       = 16384
	maxSubmitBatch = 10_000 // transactions in one API call
	txValidating   = 64     // gossip batches in validation at once
)

// Open opens (or creates) the ledger in o.Dir.
func Open(o Options) (*Ledger, error) {
	if o.Log == nil {
		o.Log = slog.Default()
	}
	g, err := state.ParseGenesis(o.Genesis.App)
	if err != nil {
		return nil, fmt.Errorf("ledger: genesis app: %w", err)
	}
	if g.ChainID != o.Genesis.ChainID {
		return nil, fmt.Errorf("ledger: genesis app chain_id %q differs from the genesis chain_id %q", g.ChainID, o.Genesis.ChainID)
	}
	cg, err := o.Genesis.Consensus()
	if err != nil {
		return nil, fmt.Errorf("ledger: genesis: %w", err)
	}
	cg.AppHash = g.AppHash()
	peers, err := o.Genesis.ValidatorPeers()
	if err != nil {
		return nil, err
	}
	// A large memtable: a validator at 10,000 tx/s writes several MB a second, and each flush is followed by
	// compactions that compete with consensus for the CPU.
	st, err := store.Open(o.Dir, store.Options{FS: o.FS, MemTableSize: 64 << 20, Logger: o.Log.With("component", "ledger-store")})
	if err != nil {
		return nil, err
	}
	l := &Ledger{genesis: o.Genesis, chainID: g.ChainID, store: st, self: o.Net.Host().ID(), log: o.Log, outbox: make(chan []byte, txOutbox)}
	fail := func(err error) (*Ledger, error) {
		st.Close()
		return nil, err
	}
	if st.Height() == 0 {
		if _, err := st.Genesis(); err != nil {
			if err := st.Init(cg); err != nil {
				return fail(err)
			}
		}
	}
	if sg, err := st.Genesis(); err != nil || sg.ChainID != cg.ChainID || sg.AppHash != cg.AppHash {
		return fail(fmt.Errorf("ledger: the store in %s belongs to another chain than this genesis", o.Dir))
	}
	l.app, err = state.New(g, st, state.Options{})
	if err != nil {
		return fail(err)
	}
	if l.app.Height() != st.Height() {
		return fail(fmt.Errorf("ledger: the application is at height %d, the store at %d", l.app.Height(), st.Height()))
	}
	l.mempool = mempool.New(l.app, mempool.Config{})

	var signer consensus.Signer
	if o.Validator {
		key, err := state.KeyFromLibp2p(o.Key)
		if err != nil {
			return fail(err)
		}
		signer = consensus.NewEd25519Signer(ed25519.PrivateKey(key))
	}
	dcfg := o.Driver
	dcfg.Genesis, dcfg.Store, dcfg.App, dcfg.Mempool = cg, st, l.app, l.mempool
	dcfg.Host, dcfg.Signer, dcfg.Validators, dcfg.Log = o.Net.Host(), signer, peers, o.Log.With("component", "ledger")
	if dcfg.MaxBlockTxs == 0 {
		dcfg.MaxBlockTxs = l.app.Params().MaxBlockTxs
	}
	if dcfg.MaxBlockBytes == 0 {
		dcfg.MaxBlockBytes = l.app.Params().MaxBlockBytes
	}
	dcfg.FindPeer = func(ctx context.Context, id peer.ID) (peer.AddrInfo, error) { return o.Net.DHT().FindPeer(ctx, id) }
	l.driver, err = New(dcfg)
	if err != nil {
		return fail(err)
	}
	// A batch costs up to txBatchMax signature checks and holds up to txBatchBytes: bound how many are in
	// validation at once (gossipsub's own bound is 8,192), with room to spare so that this node's own
	// batches, which are validated too, are not throttled behind a burst from peers.
	l.txs, err = o.Net.JoinTopic("txs", l.validateBatch, func(peer.ID, any) {}, p2p.ValidationConcurrency(txValidating))
	if err != nil {
		return fail(err)
	}
	return l, nil
}

// Run runs the driver, the transaction gossip and its batcher until ctx ends.
func (l *Ledger) Run(ctx context.Context) error {
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return l.driver.Run(ctx) })
	g.Go(func() error { return l.txs.Run(ctx) })
	g.Go(func() error { return l.gossipOutbox(ctx) })
	return g.Wait()
}

// Close closes the store. Call it after Run returned; it waits for submissions and gossip validations
// under way, and refuses later ones.
func (l *Ledger) Close() error {
	l.users.Lock()
	defer l.users.Unlock()
	if l.users.closed {
		return nil
	}
	l.users.closed = true
	return l.store.Close()
}

// ErrClosed is returned by Submit once the ledger is closed.
var ErrClosed = errors.New("ledger: closed")

// enter admits a user of the store; leave must follow when it returns true.
func (l *Ledger) enter() bool {
	l.users.RLock()
	if l.users.closed {
		l.users.RUnlock()
		return false
	}
	return true
}

func (l *Ledger) leave() { l.users.RUnlock() }

// Genesis is the chain's genesis.
func (l *Ledger) Genesis() *Genesis { return l.genesis }

// ChainID is the chain's ID.
func (l *Ledger) ChainID() string { return l.chainID }

// App is the application, for queries.
func (l *Ledger) App() *state.App { return l.app }

// Store is the block store, for queries.
func (l *Ledger) Store() *store.Store { return l.store }

// Mempool is the mempool, for queries.
func (l *Ledger) Mempool() *mempool.Mempool { return l.mempool }

// Driver is the consensus driver.
func (l *Ledger) Driver() *Driver { return l.driver }

// SubmitResult is what became of one submitted transaction.
type SubmitResult struct {
	Hash state.Hash
	Err  error // nil: admitted to the mempool, and gossiped
}

// Submit admits transactions to the mempool (signatures checked in one batch) and gossips the ones it
// took. Each result says why a transaction was refused.
func (l *Ledger) Submit(raws [][]byte) ([]SubmitResult, error) {
	if len(raws) > maxSubmitBatch {
		return nil, fmt.Errorf("ledger: %d transactions in one submission, the limit is %d", len(raws), maxSubmitBatch)
	}
	if !l.enter() {
		return nil, ErrClosed
	}
	defer l.leave()
	out := make([]SubmitResult, len(raws))
	var txs []*state.Tx
	var at []int
	for i, raw := range raws {
		out[i].Hash = state.HashTx(raw)
		tx, err := state.DecodeTx(raw)
		if err != nil {
			out[i].Err = err
			continue
		}
		txs, at = append(txs, tx), append(at, i)
	}
	admitted := 0
	for j, err := range l.mempool.Add(txs) {
		out[at[j]].Err = err
		if err == nil {
			admitted++
			select {
			case l.outbox <- txs[j].Bytes():
			default:
				// The gossip backlog is full: the transaction stays in this node's mempool and reaches the
				// others in a block this node proposes.
			}
		}
	}
	if admitted > 0 {
		l.driver.TxsAdded()
	}
	return out, nil
}

// gossipOutbox publishes admitted transactions in batches: up to txBatchMax of them, or what arrived within
// txBatchWait of the first.
func (l *Ledger) gossipOutbox(ctx context.Context) error {
	for {
		var first []byte
		select {
		case <-ctx.Done():
			return nil
		case first = <-l.outbox:
		}
		batch := appendTx(nil, first)
		count := 1
		timer := time.NewTimer(txBatchWait)
	fill:
		for count < txBatchMax && len(batch) < txBatchBytes {
			select {
			case tx := <-l.outbox:
				batch = appendTx(batch, tx)
				count++
			case <-timer.C:
				break fill
			case <-ctx.Done():
				timer.Stop()
				return nil
			}
		}
		timer.Stop()
		if err := l.txs.Publish(ctx, batch); err != nil && ctx.Err() == nil {
			l.log.Debug("gossiping transactions", "count", count, "err", err)
		}
	}
}

func appendTx(b, tx []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(tx))), tx...)
}

// txBatch is a decoded gossip batch, as the trace shows it.
type txBatch struct {
	count, admitted int
}

func (b txBatch) TraceView() any {
	return map[string]int{"transactions": b.count, "admitted": b.admitted}
}

var errBadSignature = errors.New("a transaction's signature does not verify")

// validateBatch decodes a gossiped batch and admits its transactions to the mempool: the mempool checks
// their signatures in one batch, so each is verified once on this node. A batch holding a transaction that
// does not decode or whose signature does not verify is rejected (its sender is penalised); one that
// brought nothing new is ignored (not forwarded); the rest is accepted and forwarded. This node's own
// batches hold transactions Submit already admitted: they are only checked for framing, and accepted.
func (l *Ledger) validateBatch(from peer.ID, data []byte) (any, error) {
	if len(data) > txBatchBytes+64<<10 {
		return nil, fmt.Errorf("batch of %d bytes, the limit is %d", len(data), txBatchBytes)
	}
	var txs []*state.Tx
	r := bytes.NewReader(data)
	for r.Len() > 0 {
		if len(txs) == txBatchMax {
			return nil, fmt.Errorf("more than %d transactions in a batch", txBatchMax)
		}
		n, err := binary.ReadUvarint(r)
		if err != nil || n > uint64(r.Len()) {
			return nil, errors.New("batch framing is broken")
		}
		raw := make([]byte, n)
		r.Read(raw)
		tx, err := state.DecodeTx(raw)
		if err != nil {
			return nil, fmt.Errorf("transaction %d: %w", len(txs), err)
		}
		txs = append(txs, tx)
	}
	if from == l.self {
		return txBatch{count: len(txs), admitted: len(txs)}, nil
	}
	if !l.enter() {
		return nil, fmt.Errorf("%w: the ledger is closed", p2p.ErrIgnore)
	}
	defer l.leave()
	admitted := 0
	for i, err := range l.mempool.Add(txs) {
		switch {
		case err == nil:
			admitted++
		case errors.Is(err, state.ErrBadSignature):
			return nil, fmt.Errorf("transaction %d (%s): %w", i, txs[i].Hash(), errBadSignature)
		}
	}
	if admitted > 0 {
		l.driver.TxsAdded()
	}
	if admitted == 0 {
		return nil, fmt.Errorf("%w: nothing new in %d transactions", p2p.ErrIgnore, len(txs))
	}
	return txBatch{count: len(txs), admitted: admitted}, nil
}
