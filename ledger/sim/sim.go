package sim

import (
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// Timing of the simulated world, in virtual milliseconds. One consensus tick is one millisecond.
const (
	linkDelayMin = 1  // every message takes 1..10 ms, also after GST
	linkDelayMax = 10 //
	stallLimit   = 120_000
)

// coreConfig is the consensus configuration every simulated validator runs: the production defaults,
// with a one-millisecond tick.
func coreConfig(chainID string) consensus.Config {
	return consensus.Config{ChainID: chainID, Tick: time.Millisecond}
}

// Behaviour is what a validator does.
type Behaviour uint8

// The behaviours. Byzantine validators are Silent or Equivocating.
const (
	Honest     Behaviour = iota
	Silent               // never sends anything
	Equivocate           // runs the protocol but sends conflicting proposals and votes to different peers, and garbage
)

func (b Behaviour) String() string {
	return [...]string{"honest", "silent", "equivocate"}[b]
}

// Violation is an invariant that failed, with the virtual time it failed at.
type Violation struct {
	At     int64  // virtual milliseconds
	Kind   string // agreement, validity, double_sign, evidence, junk_accepted, store, liveness
	Detail string
}

func (v Violation) String() string { return fmt.Sprintf("t=%dms %s: %s", v.At, v.Kind, v.Detail) }

// Safety reports whether v is a safety (or accountability) violation rather than a liveness one.
func (v Violation) Safety() bool { return v.Kind != "liveness" }

// Result is the outcome of one run.
type Result struct {
	Seed       uint64
	Validators int
	Byzantine  int
	Faults     Faults
	Behaviours []Behaviour
	Powers     []int64

	GST     int64  // virtual ms at which faults stopped
	End     int64  // virtual ms at which the run ended
	Heights uint64 // heights committed by every honest validator

	Violations []Violation
	// Equivocations is the number of distinct double signatures (validator, height, round, step) that
	// reached an honest validator inside its window; Evidence the number an honest validator reported.
	Equivocations int
	Evidence      int
	// RoundsAfterHeal holds, per height decided after GST, how many rounds it took counted from where the
	// validators were at GST (1: decided in the first round tried).
	RoundsAfterHeal []int
	// CommitTimes holds the virtual ms at which each height was first decided by an honest validator.
	CommitTimes []int64

	Steps     uint64 // messages given to cores (Step)
	Ticks     uint64 // ticks given to cores
	Delivered uint64
	Dropped   uint64
	Crashes   int
}

// Failed reports whether any invariant failed.
func (r *Result) Failed() bool { return len(r.Violations) > 0 }

// Run runs one simulation. It is deterministic: the same Config gives the same Result.
func Run(cfg Config) Result {
	cfg, err := cfg.withDefaults()
	if err != nil {
		return Result{Seed: cfg.Seed, Violations: []Violation{{Kind: "config", Detail: err.Error()}}}
	}
	s := newSim(cfg)
	s.run()
	s.close()
	return s.res
}

type sim struct {
	cfg       Config
	rng       *rand.Rand
	chainID   string
	genesis   *consensus.Genesis
	signers   []consensus.Signer
	ver       consensus.Verifier
	nodes     []*node
	now       int64
	q         queue
	net       network
	chk       checker
	res       Result
	gst       int64
	healed    bool
	target    uint64
	lookahead int32
	// syncDelay is how long a validator's driver takes to answer a lagging peer with commits. Block sync
	// is slower than consensus messages; a slow one also leaves validators that missed a decision
	// running rounds at the old height, where a locking bug shows.
	syncDelay int64
	low       uint64 // the lowest height every honest validator has committed
	progress  int64  // virtual ms at which low last grew
	// manual, when set, replaces the random network and driver timing with a script's explicit steps
	// (the scenario tests): messages wait in manual.pending until the script delivers them.
	manual *manual
}

// manual is the state of a scripted run.
type manual struct {
	pending  []event        // messages sent and not yet delivered or dropped, in order
	requests map[int]*event // outstanding proposal requests, by validator
	aliases  map[consensus.Hash]string
	out      []byte
}

func newSim(cfg Config) *sim {
	n := cfg.Validators
	s := &sim{
		cfg:     cfg,
		rng:     rand.New(rand.NewPCG(cfg.Seed, 0x5348_4f55_4c44_4552)),
		chainID: "sim",
		res:     Result{Seed: cfg.Seed, Validators: n, Byzantine: cfg.Byzantine, Faults: cfg.Faults},
		target:  uint64(cfg.Heights),
	}
	s.lookahead = 8 // consensus default RoundLookahead
	s.signers, s.ver = keys(n, cfg.Seed, cfg.Ed25519)

	// Who is Byzantine, how, and the voting powers. With unequal powers Byzantine validators get the
	// smallest power (1), so their share stays below a third whenever their count does.
	behaviours := make([]Behaviour, n)
	for _, i := range s.rng.Perm(n)[:cfg.Byzantine] {
		behaviours[i] = Silent
		if s.rng.IntN(5) < 4 {
			behaviours[i] = Equivocate
		}
	}
	if cfg.Behaviours != nil {
		copy(behaviours, cfg.Behaviours)
	}
	powers := make([]int64, n)
	weighted := s.rng.IntN(2) == 0
	vals := make([]consensus.Validator, n)
	for i := range vals {
		powers[i] = 1
		if weighted && behaviours[i] == Honest {
			powers[i] = 1 + s.rng.Int64N(4)
		}
		vals[i] = consensus.Validator{PubKey: s.signers[i].PublicKey(), Power: powers[i]}
	}
	if cfg.powers != nil {
		copy(powers, cfg.powers)
		for i := range vals {
			vals[i].Power = powers[i]
		}
	}
	s.res.Behaviours, s.res.Powers = behaviours, powers
	s.genesis = &consensus.Genesis{ChainID: s.chainID, Time: 1, AppHash: sha256.Sum256([]byte("sim app")), Validators: vals}
	s.chk.init(s)
	if s.rng.IntN(2) == 0 {
		s.syncDelay = s.rng.Int64N(1000)
	}

	if cfg.scripted {
		s.manual = &manual{requests: map[int]*event{}, aliases: map[consensus.Hash]string{}}
	}
	s.net.init(s)
	s.schedule()
	for i := range n {
		nd := &node{id: i, behaviour: behaviours[i], signer: s.signers[i], coalition: s.rng.IntN(4) > 0}
		s.nodes = append(s.nodes, nd)
		if nd.behaviour != Silent {
			nd.fs = s.newFS()
			s.start(nd)
		}
	}
	return s
}

// schedule plans the faults of the run: GST, crashes and partitions, all before GST.
func (s *sim) schedule() {
	f := s.cfg.Faults
	if f == 0 {
		s.gst = 0
		s.healed = true
		s.res.GST = 0
		return
	}
	s.gst = 2000 + s.rng.Int64N(4000)
	s.res.GST = s.gst
	s.q.push(event{at: s.gst, kind: evGST})
	n := s.cfg.Validators
	if f&Crash != 0 {
		for k := 1 + s.rng.IntN(n); k > 0; k-- {
			i := s.rng.IntN(n)
			at := s.rng.Int64N(s.gst - 50)
			up := min(at+50+s.rng.Int64N(2000), s.gst)
			s.q.push(event{at: at, kind: evCrash, to: i})
			s.q.push(event{at: up, kind: evRestart, to: i})
		}
	}
	if f&Partition != 0 {
		for k := 1 + s.rng.IntN(3); k > 0; k-- {
			at := s.rng.Int64N(s.gst)
			end := min(at+200+s.rng.Int64N(1300), s.gst)
			sides := make([]bool, n)
			for i := range sides {
				sides[i] = s.rng.IntN(2) == 0
			}
			sides[s.rng.IntN(n)] = !sides[0] // never everyone on one side
			id := k
			s.q.push(event{at: at, kind: evPartition, sides: sides, id: id})
			s.q.push(event{at: end, kind: evPartition, id: id})
		}
	}
}

func (s *sim) close() {
	for _, nd := range s.nodes {
		nd.stop()
	}
}

func (s *sim) violate(kind, format string, args ...any) {
	v := Violation{At: s.now, Kind: kind, Detail: fmt.Sprintf(format, args...)}
	s.res.Violations = append(s.res.Violations, v)
	s.trace("VIOLATION %s", v)
}

// tracing reports whether trace lines go anywhere; callers whose arguments cost something check it.
func (s *sim) tracing() bool { return s.manual != nil || s.cfg.Trace != nil }

func (s *sim) trace(format string, args ...any) {
	if s.manual != nil {
		s.manual.out = fmt.Appendf(s.manual.out, format+"\n", args...)
		return
	}
	if s.cfg.Trace != nil {
		fmt.Fprintf(s.cfg.Trace, "%7d "+format+"\n", append([]any{s.now}, args...)...)
	}
}

// run is the event loop: it moves virtual time to the next event or timeout, ticks the cores up to it,
// handles the event, and checks the invariants after every step.
func (s *sim) run() {
	for len(s.res.Violations) == 0 && !s.done() {
		t, ok := s.nextTime()
		if since := max(s.gst, s.progress); !ok || t > since+stallLimit {
			s.now = max(s.now, since+stallLimit)
			s.violate("liveness", "no progress: the lowest honest validator stayed at height %d (target %d) for %ds after GST; %s", s.lowestHonest(), s.target, stallLimit/1000, s.statuses())
			break
		}
		s.advance(t)
		for s.q.len() > 0 && s.q.top().at <= s.now && len(s.res.Violations) == 0 {
			s.handle(s.q.pop())
		}
	}
	s.res.End = s.now
	s.res.Heights = s.lowestHonest()
	s.res.Equivocations, s.res.Evidence = s.chk.evidenceCounts()
}

func (s *sim) done() bool {
	if !s.healed {
		return false
	}
	for _, nd := range s.nodes {
		if nd.behaviour == Honest && (!nd.up || nd.committed < s.target) {
			return false
		}
	}
	return true
}

func (s *sim) lowestHonest() uint64 {
	low := uint64(1<<63 - 1)
	for _, nd := range s.nodes {
		if nd.behaviour == Honest && nd.committed < low {
			low = nd.committed
		}
	}
	return low
}

// nextTime is the earliest of the next event and every running core's next timeout.
func (s *sim) nextTime() (int64, bool) {
	t, ok := int64(0), false
	if s.q.len() > 0 {
		t, ok = s.q.top().at, true
	}
	for _, nd := range s.nodes {
		if nd.core == nil {
			continue
		}
		if d, armed := nd.core.TicksToDeadline(); armed {
			if at := nd.clock + int64(d); !ok || at < t {
				t, ok = at, true
			}
		}
	}
	return max(t, s.now), ok
}

// advance moves virtual time to t, ticking every running core.
func (s *sim) advance(t int64) {
	s.now = t
	for _, nd := range s.nodes {
		for nd.core != nil && nd.clock < t {
			nd.clock++
			nd.core.Tick()
			s.res.Ticks++
			s.drain(nd)
		}
	}
}

func (s *sim) handle(e event) {
	switch e.kind {
	case evDeliver:
		s.deliver(e)
	case evSync:
		nd := s.nodes[e.to]
		for _, b := range e.bundle {
			if nd.core == nil {
				return
			}
			m, err := consensus.DecodeMessage(b)
			if err != nil {
				s.violate("codec", "commit from the store does not decode: %v", err)
				return
			}
			s.res.Steps++
			err = nd.core.Step(m)
			if s.tracing() {
				s.trace("v%d <- v%d sync %s: %v", e.to, e.from, s.describe(m), errString(err))
			}
			s.drain(nd)
		}
	case evPropose:
		nd := s.nodes[e.to]
		if nd.core == nil {
			return
		}
		st := nd.core.Status()
		if st.Height != e.height || st.Round != e.round {
			return
		}
		txs := make([][]byte, 1+s.rng.IntN(4))
		for i := range txs {
			txs[i] = s.randBytes(8 + s.rng.IntN(56))
		}
		err := nd.core.Propose(e.height, e.round, consensus.Payload{Time: max(s.now*1e6, nd.minTime), AppHash: nd.appHash, Txs: txs})
		if s.tracing() {
			s.trace("v%d proposes h=%d r=%d: %v", e.to, e.height, e.round, errString(err))
		}
		s.drain(nd)
	case evCrash:
		nd := s.nodes[e.to]
		if nd.behaviour != Honest || !nd.up || s.healed {
			return
		}
		s.res.Crashes++
		s.trace("v%d CRASH", e.to)
		nd.crash(s.rng, -1)
	case evRestart:
		nd := s.nodes[e.to]
		if nd.behaviour != Honest || nd.up {
			return
		}
		s.trace("v%d RESTART", e.to)
		s.start(nd)
	case evPartition:
		if e.sides != nil {
			s.net.sides, s.net.partition = e.sides, e.id
			s.trace("PARTITION %v", e.sides)
		} else if s.net.partition == e.id {
			s.net.sides, s.net.partition = nil, 0
			s.trace("PARTITION healed")
		}
	case evGST:
		s.heal()
	}
}

// heal is GST: faults stop, crashed validators come back, and the liveness clock starts.
func (s *sim) heal() {
	s.trace("GST")
	s.healed = true
	s.net.sides = nil
	for _, nd := range s.nodes {
		if nd.behaviour == Honest && !nd.up {
			s.start(nd)
		}
	}
	var top uint64
	for _, nd := range s.nodes {
		if nd.behaviour != Honest {
			continue
		}
		top = max(top, nd.committed)
		st := nd.core.Status()
		if r, ok := s.chk.roundAtGST[st.Height]; !ok || st.Round > r {
			s.chk.roundAtGST[st.Height] = st.Round
		}
	}
	s.target = max(s.target, top+uint64(s.cfg.PostHeal))
}

func (s *sim) deliver(e event) {
	nd := s.nodes[e.to]
	if nd.core == nil {
		s.res.Dropped++
		return
	}
	s.res.Delivered++
	m, err := consensus.DecodeMessage(e.data)
	if err != nil {
		if !e.junk {
			s.violate("codec", "v%d: message from v%d does not decode: %v", e.to, e.from, err)
		}
		return
	}
	var inWindow bool
	if nd.behaviour == Honest && !e.junk {
		inWindow = s.chk.window(nd, m)
	}
	s.res.Steps++
	err = nd.core.Step(m)
	if s.tracing() {
		s.trace("v%d <- v%d %s: %v", e.to, e.from, s.describe(m), errString(err))
	}
	if e.junk && err == nil {
		s.violate("junk_accepted", "v%d accepted garbage from v%d: %s", e.to, e.from, s.describe(m))
	}
	s.drain(nd)
	if inWindow {
		s.chk.delivered(nd, m)
	}
}

// send puts data on the wire from one validator to another, through the faults in force.
func (s *sim) send(from, to int, data []byte, junk bool) {
	if s.manual != nil {
		s.manual.pending = append(s.manual.pending, event{kind: evDeliver, from: from, to: to, data: data, junk: junk})
		return
	}
	for _, at := range s.net.route(from, to) {
		s.q.push(event{at: at, kind: evDeliver, from: from, to: to, data: data, junk: junk})
	}
}

func (s *sim) broadcast(from int, m consensus.Message) {
	data := consensus.EncodeMessage(m)
	for to := range s.nodes {
		if to != from {
			s.send(from, to, data, false)
		}
	}
}

// sendCommits answers a Lag: the commits of the lagging validator's height and up to 15 after it, in one
// bundle, the way block sync would.
func (s *sim) sendCommits(nd *node, lag consensus.Lag) {
	var bundle [][]byte
	for h := lag.Height; h <= nd.st.Height() && h < lag.Height+16; h++ {
		c, err := nd.st.Commit(h)
		if err != nil {
			s.violate("store", "v%d: commit %d: %v", nd.id, h, err)
			return
		}
		bundle = append(bundle, consensus.EncodeMessage(c))
	}
	if len(bundle) == 0 {
		return
	}
	if s.manual != nil {
		s.manual.pending = append(s.manual.pending, event{kind: evSync, from: nd.id, to: int(lag.Validator), bundle: bundle})
		return
	}
	for _, at := range s.net.route(nd.id, int(lag.Validator)) {
		s.q.push(event{at: at + s.syncDelay, kind: evSync, from: nd.id, to: int(lag.Validator), bundle: bundle})
	}
}

func (s *sim) randBytes(n int) []byte {
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		var w [8]byte
		binary.LittleEndian.PutUint64(w[:], s.rng.Uint64())
		copy(b[i:], w[:])
	}
	return b
}

func errString(err error) string {
	if err == nil {
		return "ok"
	}
	return err.Error()
}

func (s *sim) describe(m consensus.Message) string {
	switch m := m.(type) {
	case *consensus.Vote:
		return fmt.Sprintf("%v h=%d r=%d v%d %s", m.Type, m.Height, m.Round, m.Validator, s.name(m.BlockHash))
	case *consensus.Proposal:
		return fmt.Sprintf("proposal h=%d r=%d pol=%d %s", m.Height, m.Round, m.POLRound, s.name(m.Block.Hash()))
	case *consensus.Commit:
		return fmt.Sprintf("commit h=%d r=%d %s", m.Certificate.Height, m.Certificate.Round, s.name(m.Block.Hash()))
	}
	return fmt.Sprintf("%T", m)
}

// name is how logs call a block: its short hash, or in scripts B1, B2... in order of first appearance.
func (s *sim) name(h consensus.Hash) string {
	if s.manual == nil || h.IsZero() {
		return h.Short()
	}
	a, ok := s.manual.aliases[h]
	if !ok {
		a = fmt.Sprintf("B%d", len(s.manual.aliases)+1)
		s.manual.aliases[h] = a
	}
	return a
}

// statuses describes where every running validator is.
func (s *sim) statuses() string {
	var b []byte
	for _, nd := range s.nodes {
		if nd.core == nil {
			b = fmt.Appendf(b, "v%d down; ", nd.id)
			continue
		}
		st := nd.core.Status()
		b = fmt.Appendf(b, "v%d h=%d r=%d %v locked=%d valid=%d; ", nd.id, st.Height, st.Round, st.Step, st.LockedRound, st.ValidRound)
	}
	return string(b)
}
