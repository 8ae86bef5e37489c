package consensus

import (
	"errors"
	"fmt"
	"time"
)

// Config configures a Core. Durations are turned into ticks of length Tick; zero fields take the defaults
// noted beside them.
type Config struct {
	// ChainID separates this chain's signatures from every other chain's (1..MaxChainIDLen bytes).
	ChainID string
	// Signer signs this validator's messages; nil runs the core as an observer that follows and decides
	// heights without voting. A signer whose key is not in the validator set is an observer too.
	Signer Signer
	// Verifier checks everyone's signatures. Required.
	Verifier Verifier
	// ValidateBlock, if set, is the application's part of deciding whether a proposed block is valid (for
	// example its AppHash and transactions). It must be deterministic and do no I/O; the core has already
	// checked the header's height, round, proposer, time, previous hash and transactions hash.
	ValidateBlock func(*Block) error

	Tick time.Duration // the time one Tick stands for; default 10ms

	// Round timeouts grow linearly with the round (base + round·delta), up to TimeoutMax.
	TimeoutPropose        time.Duration // default 1s
	TimeoutProposeDelta   time.Duration // default 500ms
	TimeoutPrevote        time.Duration // default 500ms
	TimeoutPrevoteDelta   time.Duration // default 250ms
	TimeoutPrecommit      time.Duration // default 500ms
	TimeoutPrecommitDelta time.Duration // default 250ms
	TimeoutMax            time.Duration // default 60s
	// TimeoutProposeDown replaces the propose timeout when the round's proposer is known to be down: not
	// one message from it at the previous height or this one. Default 50ms.
	TimeoutProposeDown time.Duration
	// Rebroadcast is how long the core stays in one step before it sends its messages of the round again,
	// so that a network that lost them before it healed still converges. Default 1s.
	Rebroadcast time.Duration

	// RoundLookahead is how many rounds beyond the current one the core keeps messages for. Default 8.
	RoundLookahead int32
	// MaxBlockBytes caps a valid block's encoded size. Default and maximum: MaxBlockBytes.
	MaxBlockBytes int
}

func (c Config) withDefaults() (Config, error) {
	def := func(d *time.Duration, v time.Duration, name string) error {
		if *d < 0 {
			return fmt.Errorf("consensus: config %s is negative (%v)", name, *d)
		}
		if *d == 0 {
			*d = v
		}
		return nil
	}
	for _, f := range []struct {
		d    *time.Duration
		v    time.Duration
		name string
	}{
		{&c.Tick, 10 * time.Millisecond, "Tick"},
		{&c.TimeoutPropose, time.Second, "TimeoutPropose"},
		{&c.TimeoutProposeDelta, 500 * time.Millisecond, "TimeoutProposeDelta"},
		{&c.TimeoutPrevote, 500 * time.Millisecond, "TimeoutPrevote"},
		{&c.TimeoutPrevoteDelta, 250 * time.Millisecond, "TimeoutPrevoteDelta"},
		{&c.TimeoutPrecommit, 500 * time.Millisecond, "TimeoutPrecommit"},
		{&c.TimeoutPrecommitDelta, 250 * time.Millisecond, "TimeoutPrecommitDelta"},
		{&c.TimeoutMax, time.Minute, "TimeoutMax"},
		{&c.TimeoutProposeDown, 50 * time.Millisecond, "TimeoutProposeDown"},
		{&c.Rebroadcast, time.Second, "Rebroadcast"},
	} {
		if err := def(f.d, f.v, f.name); err != nil {
			return c, err
		}
	}
	if len(c.ChainID) == 0 || len(c.ChainID) > MaxChainIDLen {
		return c, fmt.Errorf("consensus: config ChainID of %d bytes, want 1..%d", len(c.ChainID), MaxChainIDLen)
	}
	if c.Verifier == nil {
		return c, errors.New("consensus: config Verifier is required")
	}
	if c.RoundLookahead < 0 {
		return c, fmt.Errorf("consensus: config RoundLookahead is negative (%d)", c.RoundLookahead)
	}
	if c.RoundLookahead == 0 {
		c.RoundLookahead = 8
	}
	if c.MaxBlockBytes <= 0 || c.MaxBlockBytes > MaxBlockBytes {
		c.MaxBlockBytes = MaxBlockBytes
	}
	return c, nil
}

// ticks is the number of ticks that covers d (at least one).
func (c *Config) ticks(d time.Duration) uint64 {
	t := uint64((d + c.Tick - 1) / c.Tick)
	if t == 0 {
		t = 1
	}
	return t
}

// State is where a core starts: the height to decide next and what it builds on, the validator set of that
// height, and the signer's state last persisted. A store recovers it after a restart; Genesis.State gives
// it for a new chain.
type State struct {
	Height     uint64 // the next height to decide (last committed + 1)
	PrevHash   Hash   // hash of block Height-1, or the genesis hash
	PrevTime   int64  // time of block Height-1, or the genesis time
	Validators *ValidatorSet
	Sign       SignState
	// Lock is the last persisted LockProof, if any; the core uses it only if it is the lock Sign names.
	Lock *LockProof
}

// Payload is what the driver supplies when the core asks it to propose (Ready.ProposalRequest): the block's
// time, the application hash after the previous block, and the transactions.
type Payload struct {
	Time    int64
	AppHash Hash
	Txs     [][]byte
}

// ProposalRequest asks the driver for a Payload: this validator proposes round Round of Height and has no
// block from an earlier round to re-propose. The driver answers with Propose, at once if it has
// transactions or after a short interval if not; the other validators wait up to the propose timeout.
type ProposalRequest struct {
	Height   uint64
	Round    int32
	PrevHash Hash
	MinTime  int64 // the block time must be at least this: the previous block's time + 1ns
}

// Decision is a decided block with the certificate that proves it and the validator set (with advanced
// proposer priorities) of the next height.
type Decision struct {
	Block       *Block
	Hash        Hash
	Certificate *Certificate
	Next        *ValidatorSet
}

// Lag says validator Validator sent a message for Height, a height this core has decided: it is behind,
// and the driver may send it the commit of that height (and the ones after it).
type Lag struct {
	Validator uint16
	Height    uint64
}

// Ready is what the core has for its driver after some input. All fields are read-only and valid until
// Advance. The driver must, in this order:
//
//  1. persist SignState and Lock (if non-nil) and Decided (if non-nil), synced to stable storage;
//  2. send Messages to every other validator, only after step 1 returned;
//  3. apply Decided to the application, report Evidence, answer ProposalRequest (with Propose) and
//     Lagging (with Commit messages from its store) as it sees fit;
//  4. call Advance.
//
// The core enters the next height at the Advance after the Ready that carried Decided.
type Ready struct {
	SignState       *SignState
	Lock            *LockProof // with SignState: persist both in the same synced write
	Messages        []Message
	Decided         *Decision
	ProposalRequest *ProposalRequest
	Evidence        []Evidence
	Lagging         []Lag
}

func (rd *Ready) empty() bool {
	return rd.SignState == nil && len(rd.Messages) == 0 && rd.Decided == nil && rd.ProposalRequest == nil &&
		len(rd.Evidence) == 0 && len(rd.Lagging) == 0
}

// Status is a snapshot of the core's position, for drivers, debug endpoints and the simulator.
type Status struct {
	Height      uint64
	Round       int32
	Step        Step
	Decided     bool // the height is decided and waits for Advance
	Proposer    int  // proposer of the current round
	Self        int  // this validator's index, -1 for an observer
	LockedRound int32
	LockedHash  Hash
	ValidRound  int32
	ValidHash   Hash
	Now         uint64 // ticks since the core started
}

// Timers the core runs, each for a round of the current height.
const (
	timerPropose = iota
	timerPrevote
	timerPrecommit
	timerRebroadcast
	timerRound
	numTimers
)

type timer struct {
	armed bool
	at    uint64 // tick at which it fires
	round int32
}

// Bounds on what the core holds for the next height before it gets there.
const nextPerValidator = 4

// Core is one validator's (or observer's) Tendermint state machine. It is not safe for concurrent use:
// one goroutine owns it and calls Step, Tick, Propose, Ready and Advance.
type Core struct {
	cfg  Config
	tick struct {
		propose, proposeDelta, prevote, prevoteDelta, precommit, precommitDelta, max, proposeDown, rebroadcast uint64
	}
	self int // index in vals, -1 for an observer
	vals *ValidatorSet

	height   uint64
	round    int32
	step     Step
	prevHash Hash
	prevTime int64

	lockedRound int32
	lockedHash  Hash
	validRound  int32
	validBlock  *Block
	validHash   Hash

	rounds    rounds
	blocks    []knownBlock // blocks seen at this height (one per proposal round at most), with their validity
	sched     []int64      // proposer priorities being stepped through for the rounds of this height
	proposers []uint16     // proposers[r]: proposer of round r, computed so far
	maxRound  []int32      // highest round each validator sent a message for at this height; -1 none
	lastHeard []uint64     // highest height each validator sent a verified message for
	lastHint  []uint64     // tick of the last Lag reported for each validator
	skip      []roundPower // scratch for the round-skip rule

	enteredAt     uint64 // tick at which this height started
	decided       *Decision
	decidedRound  int32 // round of the last height's decision
	awaitPayload  bool  // a ProposalRequest for (height, round) is outstanding
	payloadRound  int32
	readyOut      bool // Ready was called and Advance is due
	decisionGiven bool // the outstanding Ready carried the decision

	now    uint64
	timers [numTimers]timer

	next     []Message // verified messages for height+1, in arrival order
	nextUsed []uint8   // per validator: how many of next are theirs

	sign    SignState
	scratch []byte

	out      Ready
	spare    []Message
	counters Counters
}

type knownBlock struct {
	hash  Hash
	block *Block
	valid bool
}

type roundPower struct {
	round int32
	power int64
}

// Config is the core's configuration, defaults filled in.
func (c *Core) Config() Config { return c.cfg }

// New returns a core that starts deciding st.Height.
func New(cfg Config, st State) (*Core, error) {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return nil, err
	}
	if st.Height == 0 {
		return nil, errors.New("consensus: state height must be at least 1")
	}
	if st.Validators == nil {
		return nil, errors.New("consensus: state has no validator set")
	}
	c := &Core{cfg: cfg, self: -1, sign: st.Sign}
	t := &c.tick
	t.propose, t.proposeDelta = cfg.ticks(cfg.TimeoutPropose), cfg.ticks(cfg.TimeoutProposeDelta)
	t.prevote, t.prevoteDelta = cfg.ticks(cfg.TimeoutPrevote), cfg.ticks(cfg.TimeoutPrevoteDelta)
	t.precommit, t.precommitDelta = cfg.ticks(cfg.TimeoutPrecommit), cfg.ticks(cfg.TimeoutPrecommitDelta)
	t.max, t.proposeDown, t.rebroadcast = cfg.ticks(cfg.TimeoutMax), cfg.ticks(cfg.TimeoutProposeDown), cfg.ticks(cfg.Rebroadcast)
	if cfg.Signer != nil {
		if i, ok := st.Validators.Index(cfg.Signer.PublicKey()); ok {
			c.self = i
		}
	}
	if c.sign.Step == 0 {
		c.sign.LockedRound = -1
		c.sign.POLRound = -1
	}
	n := st.Validators.Len()
	c.lastHeard = make([]uint64, n)
	c.lastHint = make([]uint64, n)
	for i := range c.lastHeard {
		c.lastHeard[i] = st.Height // everyone counts as up until a whole height passes without a word
	}
	c.enterHeight(st.Height, st.PrevHash, st.PrevTime, st.Validators)

	startRound := int32(0)
	if c.sign.Height == c.height && c.sign.Step != 0 {
		// Restarted in the middle of this height: resume in the round last signed in, with the lock.
		startRound = c.sign.Round
		if c.sign.LockedRound >= 0 {
			c.lockedRound, c.lockedHash = c.sign.LockedRound, c.sign.LockedHash
			if l := st.Lock; l != nil && l.Prevotes != nil && l.Block != nil && l.Prevotes.Height == c.height &&
				l.Prevotes.Round == c.lockedRound && l.Prevotes.BlockHash == c.lockedHash && l.Block.Hash() == c.lockedHash {
				c.restoreLock(l)
			}
		}
		if c.sign.Step != StepPropose && c.self >= 0 {
			// The last vote may have been lost in the crash; sending it again is always allowed.
			v := &Vote{Type: c.sign.Step, Height: c.height, Round: c.sign.Round, Validator: uint16(c.self),
				BlockHash: c.sign.BlockHash, Signature: c.sign.Signature}
			c.emit(v)
			if vs := c.rounds.at(v.Round).set(v.Type); !vs.has.Has(c.self) {
				vs.add(v, c.vals.vals[c.self].Power)
			}
		}
	}
	c.startRound(startRound)
	c.evaluate()
	return c, nil
}

// enterHeight resets the per-height state for height h.
func (c *Core) enterHeight(h uint64, prevHash Hash, prevTime int64, vals *ValidatorSet) {
	n := vals.Len()
	c.height, c.prevHash, c.prevTime, c.vals = h, prevHash, prevTime, vals
	c.round, c.step = 0, StepPropose
	c.lockedRound, c.lockedHash = -1, Hash{}
	c.validRound, c.validBlock, c.validHash = -1, nil, Hash{}
	c.rounds.reset(n)
	clear(c.blocks)
	c.blocks = c.blocks[:0]
	c.sched = append(c.sched[:0], vals.prio...)
	c.proposers = c.proposers[:0]
	if len(c.maxRound) != n {
		c.maxRound = make([]int32, n)
		c.nextUsed = make([]uint8, n)
	}
	for i := range c.maxRound {
		c.maxRound[i] = -1
	}
	c.decided = nil
	c.awaitPayload = false
	c.enteredAt = c.now
	for i := range c.timers {
		c.timers[i].armed = false
	}
}

// Step gives the core a message from another validator (or a commit from a peer). It returns nil if the
// message was used, or an error saying why it was ignored (each reason is counted in Counters). The core
// keeps m: the caller must not modify it afterwards. Step never panics on bad input.
func (c *Core) Step(m Message) error {
	var err error
	switch m := m.(type) {
	case *Vote:
		if m == nil {
			err = fmt.Errorf("%w: nil vote", ErrMalformed)
		} else {
			err = c.stepVote(m, false)
		}
	case *Proposal:
		if m == nil || m.Block == nil {
			err = fmt.Errorf("%w: proposal without a block", ErrMalformed)
		} else {
			err = c.stepProposal(m, false)
		}
	case *Commit:
		if m == nil || m.Block == nil || m.Certificate == nil {
			err = fmt.Errorf("%w: commit without block or certificate", ErrMalformed)
		} else {
			err = c.stepCommit(m)
		}
	default:
		err = fmt.Errorf("%w: unknown message type %T", ErrMalformed, m)
	}
	c.count(err)
	return err
}

func (c *Core) count(err error) {
	if err == nil {
		c.counters.Accepted++
		return
	}
	for r, e := range dropErrors {
		if errors.Is(err, e) {
			c.counters.Dropped[r]++
			return
		}
	}
	c.counters.Dropped[DropMalformed]++
}

// Tick advances the core's clock by one tick and fires the timeouts that are due.
func (c *Core) Tick() {
	c.now++
	for k := range c.timers {
		t := &c.timers[k]
		if t.armed && t.at <= c.now {
			t.armed = false
			c.onTimeout(k, t.round)
		}
	}
}

// TicksToDeadline returns how many Ticks remain until the next timeout fires, and false if none is armed.
// A driver may sleep that long instead of ticking at a fixed rate; the simulator uses it to skip idle time.
func (c *Core) TicksToDeadline() (uint64, bool) {
	best, ok := uint64(0), false
	for _, t := range c.timers {
		if t.armed && (!ok || t.at-c.now < best) {
			best, ok = t.at-c.now, true
		}
	}
	return best, ok
}

// Propose answers the ProposalRequest for (height, round) with the driver's payload. It returns an error if
// no such request is outstanding any more (the round moved on) or the payload's time is too early.
func (c *Core) Propose(height uint64, round int32, p Payload) error {
	if !c.awaitPayload || c.decided != nil || height != c.height || round != c.round || c.payloadRound != round || c.step != StepPropose {
		return fmt.Errorf("consensus: no proposal is due for height %d round %d (now %d/%d, step %v)", height, round, c.height, c.round, c.step)
	}
	if p.Time <= c.prevTime {
		return fmt.Errorf("consensus: payload time %d is not after the previous block's %d", p.Time, c.prevTime)
	}
	c.awaitPayload = false
	b := &Block{Header: Header{
		Height: c.height, Round: c.round, Proposer: uint16(c.self), Time: p.Time,
		PrevHash: c.prevHash, AppHash: p.AppHash, TxsHash: TxsHash(p.Txs),
	}, Txs: p.Txs}
	c.propose(b, b.Hash(), -1)
	c.evaluate()
	return nil
}

// HasReady reports whether Ready has anything.
func (c *Core) HasReady() bool { return !c.out.empty() }

// Ready returns what the core has for the driver (see Ready for the contract) and must be followed by
// Advance before it is called again.
func (c *Core) Ready() Ready {
	if c.readyOut {
		panic("consensus: Ready called again before Advance")
	}
	rd := c.out
	c.readyOut = true
	c.decisionGiven = rd.Decided != nil
	c.out = Ready{Messages: c.spare[:0]}
	c.spare = nil
	return rd
}

// Advance tells the core that the last Ready was handled: persisted, sent and applied. After the Ready that
// carried a decision, the core enters the next height here.
func (c *Core) Advance() {
	if !c.readyOut {
		return
	}
	c.readyOut = false
	if c.decisionGiven && c.decided != nil {
		c.decisionGiven = false
		d := c.decided
		c.decidedRound = d.Certificate.Round
		c.enterHeight(c.height+1, d.Hash, d.Block.Header.Time, d.Next)
		c.startRound(0)
		c.replayNext()
		c.evaluate()
	}
}

// Status returns a snapshot of the core's position.
func (c *Core) Status() Status {
	return Status{
		Height: c.height, Round: c.round, Step: c.step, Decided: c.decided != nil,
		Proposer: c.proposerAt(c.round), Self: c.self,
		LockedRound: c.lockedRound, LockedHash: c.lockedHash,
		ValidRound: c.validRound, ValidHash: c.validHash, Now: c.now,
	}
}

// Counters returns what the core did with its input so far.
func (c *Core) Counters() Counters { return c.counters }

// Validators returns the validator set of the current height.
func (c *Core) Validators() *ValidatorSet { return c.vals }

// SignState returns the signer's current state (what the last Ready asked to persist, or the initial one).
func (c *Core) SignState() SignState { return c.sign }

// emit queues m for broadcast.
func (c *Core) emit(m Message) { c.out.Messages = append(c.out.Messages, m) }

// proposerAt returns the proposer of round r of the current height, extending the schedule as needed.
// Callers bound r: the current round plus the lookahead, or a round proven by a certificate.
func (c *Core) proposerAt(r int32) int {
	for int32(len(c.proposers)) <= r {
		c.proposers = append(c.proposers, uint16(c.vals.step(c.sched)))
	}
	return int(c.proposers[r])
}

// nextProposerAt returns the proposer of round r at the next height: with the same validators, the proposer
// of round r+1 at this one.
func (c *Core) nextProposerAt(r int32) int { return c.proposerAt(r + 1) }

// suspected reports whether validator i is known to be down: nothing verified from it at the previous
// height or this one.
func (c *Core) suspected(i int) bool { return c.lastHeard[i]+1 < c.height }

func (c *Core) roundTimeout(base, delta uint64, r int32) uint64 {
	t := base + uint64(r)*delta
	if t > c.tick.max || t < base {
		t = c.tick.max
	}
	return t
}

func (c *Core) arm(k int, after uint64, r int32) {
	c.timers[k] = timer{armed: true, at: c.now + after, round: r}
}
