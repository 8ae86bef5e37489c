// Package ledger runs a node's part of the replicated ledger: the consensus core (as a validator, or as an
// observer when the node's key is not in the validator set), fed by the network and a real clock; the store,
// written before anything leaves the process; the application, to which committed blocks are applied; the
// mempool, from which proposals are built; block sync, for a node that is behind or follows the chain
// without voting; and the gossip of transactions.
//
// One goroutine, Driver.Run's main loop, owns the consensus core and is the only writer of the store and
// the application. Everything else talks to it through channels or reads snapshots.
//
// Decisions where the design is silent:
//   - Consensus messages travel on direct streams between validators (/shoulders/consensus/1), not on a
//     gossip topic: with a handful of validators all talking to all, a stream per pair is the shortest path,
//     with no relaying and no second signature per message.
//   - Block sync (/shoulders/sync/1) fetches commits (block and certificate) in bulk and steps them into the
//     same core, so a synced block is checked and applied exactly as a block decided live. Observers follow
//     the chain with long polls; validators sync when they hear of heights they have not reached.
//   - A proposal is checked for shape before a validator prevotes for it (height, app hash, limits, every
//     transaction decodes); signatures are checked when the block is executed, in one batch (mempool
//     admission already verified most of them): a transaction whose signature fails, like one whose nonce
//     or balance is wrong, is recorded in the block with its reason and changes nothing. Checking them
//     before the prevote would cost every validator a second pass over the block on the critical path.
//   - The proposer proposes at once when it has transactions and MinBlockInterval has passed since the
//     last block, and an empty block after EmptyBlockInterval otherwise: no fixed commit delay, no flood
//     of tiny blocks.
package ledger

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/mempool"
	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/ledger/store"
)

// Config is what a Driver needs.
type Config struct {
	Genesis *consensus.Genesis
	Store   *store.Store
	App     *state.App
	Mempool *mempool.Mempool
	Host    host.Host
	// Signer signs this validator's votes; nil runs an observer.
	Signer consensus.Signer
	// Validators are the validators' peer IDs, in validator-set order.
	Validators []peer.ID
	// FindPeer looks up a validator's addresses when the host has none (the DHT); may be nil.
	FindPeer func(context.Context, peer.ID) (peer.AddrInfo, error)
	Log      *slog.Logger

	MaxBlockTxs        int           // default 10,000
	MaxBlockBytes      int           // default 4 MiB
	MinBlockInterval   time.Duration // default 20ms
	EmptyBlockInterval time.Duration // default 500ms
	// Consensus overrides the core's timing (Tick, timeouts); zero fields keep the core's defaults.
	Consensus consensus.Config
}

func (c *Config) defaults() {
	if c.MaxBlockTxs == 0 {
		c.MaxBlockTxs = 10_000
	}
	if c.MaxBlockBytes == 0 {
		c.MaxBlockBytes = 4 << 20
	}
	if c.MinBlockInterval == 0 {
		c.MinBlockInterval = 20 * time.Millisecond
	}
	if c.EmptyBlockInterval == 0 {
		c.EmptyBlockInterval = 500 * time.Millisecond
	}
	if c.Log == nil {
		c.Log = slog.Default()
	}
}

// Driver runs the ledger for one node.
type Driver struct {
	cfg      Config
	ccfg     consensus.Config
	core     *consensus.Core
	tr       *transport
	syncSrv  *syncServer
	heights  *heightNotifier
	synced   chan *consensus.Commit // commits fetched by sync, for the main loop
	behind   chan uint64            // heights heard of that this node has not reached, for the syncer
	added    chan struct{}          // the mempool took transactions (a proposal may be due)
	debugReq chan chan DebugView    // the API asks the main loop for a DebugView

	observer bool // no signer, or a key outside the validator set: follows by sync, never votes

	// Owned by the main loop.
	request    *consensus.ProposalRequest // a proposal the core waits for
	lastCommit time.Time
	lastBlock  struct {
		hash string
		time time.Time
	}
	validators []ValidatorView // the set is fixed by the genesis

	mu struct {
		sync.Mutex
		status  Status
		waiters map[state.Hash][]chan state.TxResult
	}
}

// Status is a snapshot of the driver, for the API.
type Status struct {
	Height        uint64          `json:"height"`
	AppHash       string          `json:"app_hash"`
	LastBlockHash string          `json:"last_block_hash"`
	LastBlockTime time.Time       `json:"last_block_time"`
	Validator     bool            `json:"validator"`
	Round         int32           `json:"round"`
	Step          string          `json:"step"`
	Validators    []ValidatorView `json:"validators"`
	Mempool       int             `json:"mempool"`
}

// ValidatorView is one validator as the API shows it.
type ValidatorView struct {
	Address string `json:"address"`
	Power   int64  `json:"power"`
}

// New builds a driver on a store initialised with the genesis (Open does that).
func New(cfg Config) (*Driver, error) {
	cfg.defaults()
	st, err := cfg.Store.State()
	if err != nil {
		return nil, err
	}
	ccfg := cfg.Consensus
	ccfg.ChainID = cfg.Genesis.ChainID
	ccfg.Signer = cfg.Signer
	ccfg.Verifier = consensus.Ed25519Verifier{}
	ccfg.ValidateBlock = cfg.App.ValidateBlock
	core, err := consensus.New(ccfg, st)
	if err != nil {
		return nil, err
	}
	if tp := core.Config().TimeoutPropose; cfg.EmptyBlockInterval >= tp {
		// The others would give up on every empty block's proposer before it proposed.
		return nil, fmt.Errorf("ledger: EmptyBlockInterval %v must be shorter than the propose timeout %v", cfg.EmptyBlockInterval, tp)
	}
	d := &Driver{
		cfg:      cfg,
		ccfg:     ccfg,
		core:     core,
		heights:  newHeightNotifier(),
		synced:   make(chan *consensus.Commit, syncMaxCommits),
		behind:   make(chan uint64, 1),
		added:    make(chan struct{}, 1),
		debugReq: make(chan chan DebugView),
	}
	d.observer = cfg.Signer == nil || core.Status().Self < 0
	d.tr = newTransport(cfg.Host, cfg.Validators, d.observer, cfg.FindPeer, cfg.Log.With("component", "consensus-transport"))
	d.syncSrv = newSyncServer(cfg.Store, d.heights)
	d.mu.waiters = make(map[state.Hash][]chan state.TxResult)
	if h := cfg.Store.Height(); h > 0 {
		b, err := cfg.Store.Block(h)
		if err != nil {
			return nil, err
		}
		d.noteBlock(b)
	}
	vals := core.Validators()
	for i := range vals.Len() {
		addr := ""
		if i < len(cfg.Validators) {
			addr = cfg.Validators[i].String()
		}
		d.validators = append(d.validators, ValidatorView{Address: addr, Power: vals.Validator(i).Power})
	}
	d.updateStatus()
	return d, nil
}

// Run runs the ledger until ctx ends.
func (d *Driver) Run(ctx context.Context) error {
	d.cfg.Host.SetStreamHandler(SyncProtocol, d.syncSrv.handle)
	defer d.syncSrv.shutdown()
	defer d.cfg.Host.RemoveStreamHandler(SyncProtocol)
	g, ctx := errgroup.WithContext(ctx)
	g.Go(func() error { return d.tr.run(ctx) })
	g.Go(func() error { return d.syncer(ctx) })
	g.Go(func() error { return d.loop(ctx) })
	return g.Wait()
}

// maxCatchUpTicks bounds the ticks one wake of the main loop gives the core beyond the ones it slept for.
const maxCatchUpTicks = 10

// ticksDue returns how many ticks of length tick have passed between last and now, and the new last, for a
// loop that meant to sleep for wake. Time the process did not run (it was stopped, or starved) is not made
// up in a burst of ticks: each would fire a timeout before any message could arrive, running through rounds
// alone. What the loop meant to sleep counts in full; oversleeping beyond it by more than maxCatchUpTicks
// is dropped.
func ticksDue(last, now time.Time, wake, tick time.Duration) (int, time.Time) {
	if limit := wake + maxCatchUpTicks*tick; now.Sub(last) > limit {
		last = now.Add(-limit)
	}
	n := int(now.Sub(last) / tick)
	return n, last.Add(time.Duration(n) * tick)
}

// tick is the real time one consensus tick stands for.
func (d *Driver) tick() time.Duration {
	if d.ccfg.Tick > 0 {
		return d.ccfg.Tick
	}
	return 10 * time.Millisecond
}

// loop is the one goroutine that owns the core: it steps messages and commits into it, ticks it with real
// time, answers its proposal requests, and drains its Ready after every input.
func (d *Driver) loop(ctx context.Context) error {
	tick := d.tick()
	lastTick := time.Now()
	timer := time.NewTimer(tick)
	defer timer.Stop()
	d.lastCommit = time.Now()
	if err := d.drain(); err != nil {
		return err
	}
	for {
		// Sleep until the core's next deadline, a proposal can be made, or input arrives.
		wake := tick
		if t, armed := d.core.TicksToDeadline(); armed {
			wake = max(time.Duration(t)*tick, time.Millisecond)
		}
		var added <-chan struct{}
		if d.request != nil {
			added = d.added
			wake = min(wake, max(d.proposeAt().Sub(time.Now()), 0))
		}
		timer.Reset(wake)
		select {
		case <-ctx.Done():
			return nil
		case in := <-d.tr.inbox:
			d.step(in.msg, in.from)
		case c := <-d.synced:
			d.step(c, "")
		case <-added:
		case req := <-d.debugReq:
			req <- d.debugView()
		case <-timer.C:
		}
		if !timer.Stop() {
			select {
			case <-timer.C:
			default:
			}
		}
		var due int
		due, lastTick = ticksDue(lastTick, time.Now(), wake, tick)
		for range due {
			d.core.Tick()
		}
		if err := d.drain(); err != nil {
			return err
		}
		if err := d.maybePropose(); err != nil {
			return err
		}
	}
}

func (d *Driver) step(m consensus.Message, from peer.ID) {
	err := d.core.Step(m)
	if errors.Is(err, consensus.ErrFutureHeight) {
		// Someone is ahead: sync up to it.
		select {
		case d.behind <- heightOf(m):
		default:
		}
	}
}

func heightOf(m consensus.Message) uint64 {
	switch m := m.(type) {
	case *consensus.Vote:
		return m.Height
	case *consensus.Proposal:
		return m.Height
	case *consensus.Commit:
		return m.Block.Header.Height
	}
	return 0
}

// drain handles the core's Ready as the core's contract says: persist (synced), send, apply, Advance.
func (d *Driver) drain() error {
	for d.core.HasReady() {
		rd := d.core.Ready()
		var executed *state.Result
		if dec := rd.Decided; dec != nil {
			proposer := state.Address(d.core.Validators().Validator(int(dec.Block.Header.Proposer)).PubKey)
			var err error
			executed, err = d.cfg.App.Execute(dec.Block, proposer, d.cfg.Mempool.Get)
			if err != nil {
				return fmt.Errorf("ledger: executing height %d: %w", dec.Block.Header.Height, err)
			}
			err = d.cfg.Store.CommitHeight(dec, rd.SignState, func(b *store.Batch) error { return executed.Write(b.Set) })
			if err != nil {
				return fmt.Errorf("ledger: committing height %d: %w", dec.Block.Header.Height, err)
			}
		} else if rd.SignState != nil {
			if err := d.cfg.Store.SaveSignState(rd.SignState, rd.Lock); err != nil {
				return fmt.Errorf("ledger: saving the signer's state: %w", err)
			}
		}
		for _, m := range rd.Messages {
			d.tr.broadcast(m)
		}
		if rd.Decided != nil {
			if err := d.cfg.App.Commit(executed); err != nil {
				return fmt.Errorf("ledger: applying height %d: %w", executed.Height, err)
			}
			if err := d.cfg.Mempool.Update(executed); err != nil {
				return fmt.Errorf("ledger: updating the mempool at height %d: %w", executed.Height, err)
			}
			d.lastCommit = time.Now()
			d.noteBlock(rd.Decided.Block)
			d.updateStatus() // before anyone is told of the height, so Status never lags what they saw
			d.notifyWaiters(executed.Txs)
			d.heights.notify()
		}
		for _, e := range rd.Evidence {
			d.cfg.Log.Warn("evidence of equivocation", "validator", e.Validator, "height", e.Height, "round", e.Round, "step", e.Step)
		}
		if rq := rd.ProposalRequest; rq != nil {
			r := *rq
			d.request = &r
		}
		for _, lag := range rd.Lagging {
			d.sendCommits(lag)
		}
		d.core.Advance()
	}
	d.updateStatus()
	return nil
}

// sendCommits sends a lagging validator the commits from the height it is at, a bounded number at a time
// (it asks for more by block sync if it needs them).
func (d *Driver) sendCommits(lag consensus.Lag) {
	if int(lag.Validator) >= len(d.cfg.Validators) {
		return
	}
	to := d.cfg.Validators[lag.Validator]
	for h := lag.Height; h <= d.cfg.Store.Height() && h < lag.Height+4; h++ {
		c, err := d.cfg.Store.Commit(h)
		if err != nil {
			return
		}
		d.tr.sendTo(to, c)
	}
}

// proposeAt is when a pending proposal may be made: MinBlockInterval after the last commit if transactions
// wait, EmptyBlockInterval after it if none do.
func (d *Driver) proposeAt() time.Time {
	if d.cfg.Mempool.Len() > 0 {
		return d.lastCommit.Add(d.cfg.MinBlockInterval)
	}
	return d.lastCommit.Add(d.cfg.EmptyBlockInterval)
}

func (d *Driver) maybePropose() error {
	rq := d.request
	if rq == nil {
		return nil
	}
	if st := d.core.Status(); st.Height != rq.Height || st.Round != rq.Round {
		d.request = nil // the round moved on without us
		return nil
	}
	now := time.Now()
	full := d.cfg.Mempool.Len() >= d.cfg.MaxBlockTxs
	if !full && now.Before(d.proposeAt()) {
		return nil
	}
	d.request = nil
	reaped := d.cfg.Mempool.Reap(d.cfg.MaxBlockTxs, d.cfg.MaxBlockBytes)
	txs := make([][]byte, len(reaped))
	for i, tx := range reaped {
		txs[i] = tx.Bytes()
	}
	payload := consensus.Payload{Time: max(now.UnixNano(), rq.MinTime), AppHash: d.cfg.App.AppHash(), Txs: txs}
	if err := d.core.Propose(rq.Height, rq.Round, payload); err != nil {
		d.cfg.Log.Debug("proposal refused by the core", "height", rq.Height, "round", rq.Round, "err", err)
		return nil
	}
	return d.drain()
}

// syncer fetches commits this node lacks. An observer follows the chain for ever (a long poll on a
// validator); a validator asks once at start, keeps fetching while a peer is ahead of it, and otherwise waits
// until it hears of a height it has not reached.
func (d *Driver) syncer(ctx context.Context) error {
	observer := d.observer
	stalled := time.Duration(0) // backoff while a peer is ahead but nothing it sends gets applied
	for ctx.Err() == nil {
		wait := time.Duration(0)
		if observer {
			wait = 5 * time.Second
		}
		before := d.cfg.Store.Height()
		height, err := d.fetch(ctx, wait)
		if err == nil && height > before && d.cfg.Store.Height() == before {
			stalled = min(max(2*stalled, 100*time.Millisecond), 5*time.Second)
			select {
			case <-ctx.Done():
			case <-time.After(stalled):
			}
			continue
		}
		stalled = 0
		switch {
		case err != nil:
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
		case observer || height > d.cfg.Store.Height():
			// keep going
		default:
			select {
			case <-ctx.Done():
			case <-d.behind:
			}
		}
	}
	return nil
}

// fetch asks one validator after another (a different one first each time) for the commits after this
// node's height, queues them for the main loop and waits until they are applied. It returns the committed
// height of the validator that answered.
func (d *Driver) fetch(ctx context.Context, wait time.Duration) (uint64, error) {
	n := len(d.cfg.Validators)
	start := int(d.cfg.Store.Height()) % max(n, 1)
	for i := range n {
		p := d.cfg.Validators[(start+i)%n]
		if p == d.cfg.Host.ID() {
			continue
		}
		next := d.cfg.Store.Height() + 1
		height, commits, err := fetchCommits(ctx, d.cfg.Host, p, next, syncMaxCommits, wait)
		if err != nil && len(commits) == 0 {
			continue
		}
		for _, c := range commits {
			select {
			case d.synced <- c:
			case <-ctx.Done():
				return height, ctx.Err()
			}
		}
		// Wait until the main loop applied them (or decided them live), so the next request starts where
		// this one ended; commits the core refused leave the height short, and the next peer is asked.
		// The main loop gets applyStall between two heights before this peer's commits are given up on.
		want := next + uint64(len(commits)) - 1
		deadline := time.NewTimer(applyStall)
		for d.cfg.Store.Height() < want {
			changed := d.heights.changed()
			if d.cfg.Store.Height() >= want {
				break
			}
			select {
			case <-changed:
				deadline.Reset(applyStall)
			case <-ctx.Done():
				deadline.Stop()
				return height, ctx.Err()
			case <-deadline.C:
				want = 0 // give up on this peer's commits
			}
		}
		deadline.Stop()
		if d.cfg.Store.Height() >= next+uint64(len(commits))-1 {
			return height, nil
		}
	}
	return 0, errNoPeer
}

// TxsAdded tells the driver the mempool took transactions, so a proposer waiting for some can go ahead.
func (d *Driver) TxsAdded() {
	select {
	case d.added <- struct{}{}:
	default:
	}
}

func (d *Driver) notifyWaiters(txs []state.TxResult) {
	d.mu.Lock()
	defer d.mu.Unlock()
	for _, tx := range txs {
		for _, ch := range d.mu.waiters[tx.Hash] {
			ch <- tx
		}
		delete(d.mu.waiters, tx.Hash)
	}
}

// Waiter registers interest in a transaction before it is submitted (so its commit cannot be missed); wait
// returns its result once a block carries it, or ctx's error. A waiter stays registered until wait returns:
// one that will not be waited on (its transaction was refused) is released by calling wait with a context
// that is already done.
func (d *Driver) Waiter(hash state.Hash) (wait func(ctx context.Context) (state.TxResult, error)) {
	ch := make(chan state.TxResult, 1)
	d.mu.Lock()
	d.mu.waiters[hash] = append(d.mu.waiters[hash], ch)
	d.mu.Unlock()
	return func(ctx context.Context) (state.TxResult, error) { return d.waitTx(ctx, hash, ch) }
}

func (d *Driver) waitTx(ctx context.Context, hash state.Hash, ch chan state.TxResult) (state.TxResult, error) {
	select {
	case o := <-ch:
		return o, nil
	case <-ctx.Done():
		d.mu.Lock()
		list := d.mu.waiters[hash]
		for i, c := range list {
			if c == ch {
				d.mu.waiters[hash] = append(list[:i], list[i+1:]...)
				break
			}
		}
		if len(d.mu.waiters[hash]) == 0 {
			delete(d.mu.waiters, hash)
		}
		d.mu.Unlock()
		return state.TxResult{}, ctx.Err()
	}
}

// updateStatus publishes the main loop's view for Status. It runs after every input, so it reads nothing
// from the store.
func (d *Driver) updateStatus() {
	st := d.core.Status()
	s := Status{
		Height:    d.cfg.Store.Height(),
		AppHash:   d.cfg.App.AppHash().String(),
		Validator: st.Self >= 0,
		Round:     st.Round,
		Step:      st.Step.String(),
		Mempool:   d.cfg.Mempool.Len(),
	}
	s.LastBlockHash, s.LastBlockTime, s.Validators = d.lastBlock.hash, d.lastBlock.time, d.validators
	d.mu.Lock()
	d.mu.status = s
	d.mu.Unlock()
}

func (d *Driver) noteBlock(b *consensus.Block) {
	d.lastBlock.hash, d.lastBlock.time = b.Hash().String(), time.Unix(0, b.Header.Time).UTC()
}

// Status returns a snapshot of the driver.
func (d *Driver) Status() Status {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.mu.status
}

// Heights returns a channel closed at the next committed height.
func (d *Driver) Heights() <-chan struct{} { return d.heights.changed() }
