package sim

import (
	"crypto/sha256"
	"fmt"
	"math/rand/v2"
	"strings"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/store"
)

// node is one simulated validator: a consensus core driven the way the real driver will drive it, a store
// on a crashable in-memory filesystem, and a stand-in application whose state is a hash chain.
type node struct {
	id        int
	behaviour Behaviour
	signer    consensus.Signer

	fs    *vfs.MemFS
	st    *store.Store
	core  *consensus.Core
	up    bool
	clock int64 // the virtual ms the core's clock has reached

	coalition bool // Byzantine: votes for each round's proposal regardless of its own core

	appHash   consensus.Hash // application state after the last committed block
	minTime   int64          // earliest time for the next block
	committed uint64
}

var appKey = []byte("apphash")

// appHashAfter is the stand-in application: its state after a block is a hash of the state before it and
// the block. It is what the next block's AppHash must say.
func appHashAfter(prev, block consensus.Hash) consensus.Hash {
	return sha256.Sum256(append(prev[:], block[:]...))
}

// newFS returns a validator's filesystem: crashable (syncs remembered, so that a crash can lose what was
// not synced) when the run crashes validators, plain otherwise (a crashable one copies a file's data on
// every sync, which is what makes it slower).
func (s *sim) newFS() *vfs.MemFS {
	if s.cfg.Faults&Crash != 0 || s.cfg.scripted {
		return vfs.NewCrashableMem()
	}
	return vfs.NewMem()
}

// start opens the node's store (recovering from a crash if there was one) and starts its core from it.
func (s *sim) start(nd *node) {
	// A small memtable keeps the WAL, which a crashable filesystem copies on every sync, short.
	memtable := uint64(1 << 20)
	if s.cfg.Faults&Crash != 0 || s.cfg.scripted {
		memtable = 64 << 10
	}
	st, err := store.Open("db", store.Options{FS: nd.fs, MemTableSize: memtable})
	if err != nil {
		s.violate("store", "v%d: open: %v", nd.id, err)
		return
	}
	if err := st.Init(s.genesis); err != nil {
		st.Close()
		s.violate("store", "v%d: init: %v", nd.id, err)
		return
	}
	state, err := st.State()
	if err != nil {
		st.Close()
		s.violate("store", "v%d: recover state: %v", nd.id, err)
		return
	}
	nd.appHash = s.genesis.AppHash
	if b, err := st.AppGet(appKey); err == nil {
		copy(nd.appHash[:], b)
	}
	cfg := coreConfig(s.chainID)
	cfg.Signer, cfg.Verifier = nd.signer, s.ver
	cfg.ValidateBlock = func(b *consensus.Block) error {
		if b.Header.AppHash != nd.appHash {
			return fmt.Errorf("app hash %s, want %s", b.Header.AppHash.Short(), nd.appHash.Short())
		}
		return nil
	}
	core, err := consensus.New(cfg, state)
	if err != nil {
		st.Close()
		s.violate("store", "v%d: start core from recovered state: %v", nd.id, err)
		return
	}
	nd.st, nd.core, nd.up, nd.clock = st, core, true, s.now
	nd.committed, nd.minTime = state.Height-1, state.PrevTime+1
	s.chk.restarted(nd)
	line := fmt.Sprintf("v%d starts at height %d", nd.id, state.Height)
	if ss := state.Sign; ss.Step != 0 {
		line += fmt.Sprintf("; last signed %v h=%d r=%d %s", ss.Step, ss.Height, ss.Round, s.name(ss.BlockHash))
		if ss.Height == state.Height && ss.LockedRound >= 0 {
			line += fmt.Sprintf(", locked on %s@%d", s.name(ss.LockedHash), ss.LockedRound)
		}
	}
	s.trace("%s", line)
	s.drain(nd)
}

// crash loses the node's process and whatever its filesystem had not synced: keep percent of the unsynced
// data survives (as on a real disk), a random share if keep is negative.
func (nd *node) crash(rng *rand.Rand, keep int) {
	if keep < 0 {
		keep = rng.IntN(101)
	}
	clone := nd.fs.CrashClone(vfs.CrashCloneCfg{
		UnsyncedDataPercent: keep,
		RNG:                 rand.New(rand.NewPCG(rng.Uint64(), rng.Uint64())),
	})
	nd.stop()
	nd.fs = clone
}

func (nd *node) stop() {
	if nd.st != nil {
		nd.st.Close()
	}
	nd.st, nd.core, nd.up = nil, nil, false
}

// drain handles the core's Ready the way a driver must: persist (synced), then send, then apply, then
// Advance.
func (s *sim) drain(nd *node) {
	for nd.core != nil && nd.core.HasReady() {
		rd := nd.core.Ready()
		next := nd.appHash
		if d := rd.Decided; d != nil {
			next = appHashAfter(nd.appHash, d.Hash)
			err := nd.st.CommitHeight(d, rd.SignState, func(b *store.Batch) error { return b.Set(appKey, next[:]) })
			if err != nil {
				s.violate("store", "v%d: commit height %d: %v", nd.id, d.Block.Header.Height, err)
				return
			}
		} else if rd.SignState != nil && !s.cfg.brokenDriver {
			if err := nd.st.SaveSignState(rd.SignState, rd.Lock); err != nil {
				s.violate("store", "v%d: save sign state: %v", nd.id, err)
				return
			}
		}
		for _, m := range rd.Messages {
			s.sendOwn(nd, m)
		}
		if rd.Lock != nil && nd.behaviour == Honest && s.cfg.Faults&Crash != 0 && s.manual == nil &&
			s.now+60 < s.gst && s.rng.IntN(3) == 0 {
			// A targeted crash: right after locking, the moment a validator that forgot its lock on
			// restart would be dangerous. Like every crash, it ends before GST.
			at := s.now + s.rng.Int64N(5)
			s.q.push(event{at: at, kind: evCrash, to: nd.id})
			s.q.push(event{at: min(at+50+s.rng.Int64N(1000), s.gst), kind: evRestart, to: nd.id})
		}
		if d := rd.Decided; d != nil {
			if s.tracing() {
				var signers []string
				for i := range s.nodes {
					if d.Certificate.Signers.Has(i) {
						signers = append(signers, fmt.Sprintf("v%d", i))
					}
				}
				s.trace("v%d DECIDES h=%d r=%d %s, certificate signed by %s", nd.id, d.Block.Header.Height, d.Certificate.Round, s.name(d.Hash), strings.Join(signers, " "))
			}
			if nd.behaviour == Honest {
				s.chk.decided(nd, d)
			}
			nd.appHash = next
			nd.committed = d.Block.Header.Height
			nd.minTime = d.Block.Header.Time + 1
			if low := s.lowestHonest(); low > s.low {
				s.low, s.progress = low, s.now
			}
		}
		for i := range rd.Evidence {
			e := &rd.Evidence[i]
			if s.tracing() {
				s.trace("v%d reports evidence: v%d signed %v h=%d r=%d for both %s and %s", nd.id, e.Validator, e.Step, e.Height, e.Round, s.name(e.A.BlockHash), s.name(e.B.BlockHash))
			}
			s.chk.reported(nd, e)
		}
		if rq := rd.ProposalRequest; rq != nil {
			e := event{at: s.now + s.rng.Int64N(3), kind: evPropose, to: nd.id, height: rq.Height, round: rq.Round}
			if s.manual != nil {
				s.manual.requests[nd.id] = &e
				s.trace("v%d is asked to propose h=%d r=%d", nd.id, rq.Height, rq.Round)
			} else {
				s.q.push(e)
			}
		}
		for _, lag := range rd.Lagging {
			s.sendCommits(nd, lag)
		}
		nd.core.Advance()
	}
}

// sendOwn sends one message of the node's Ready: as it is for an honest node, twisted for an equivocating one.
func (s *sim) sendOwn(nd *node, m consensus.Message) {
	if p, ok := m.(*consensus.Proposal); ok {
		s.chk.proposed(p)
	}
	if s.manual != nil {
		if s.tracing() {
			s.trace("v%d -> %s", nd.id, s.describe(m))
		}
	}
	switch nd.behaviour {
	case Honest:
		s.chk.signed(nd, m)
		s.broadcast(nd.id, m)
	case Equivocate:
		if s.manual != nil { // a script decides what a Byzantine validator sends besides its core's messages
			s.broadcast(nd.id, m)
			return
		}
		s.equivocate(nd, m)
	}
}

// equivocate sends m to some peers and a conflicting message, properly signed, to the others (and both to
// some), and now and then garbage: what a Byzantine validator does to split the honest ones.
func (s *sim) equivocate(nd *node, m consensus.Message) {
	if s.rng.IntN(20) == 0 {
		s.junk(nd, m)
	}
	if !own(&s.chk, nd, m) { // relayed: someone else's message
		s.broadcast(nd.id, m)
		return
	}
	switch m := m.(type) {
	case *consensus.Vote:
		a := m
		if nd.coalition {
			// Vote for the round's proposal whatever this validator's own core thinks: the coalition
			// pushes its group towards it, locks or no locks.
			if x, ok := s.chk.firstAt[[2]uint64{m.Height, uint64(m.Round)}]; ok && x != m.BlockHash {
				a = &consensus.Vote{Type: m.Type, Height: m.Height, Round: m.Round, Validator: m.Validator, BlockHash: x}
				a.Signature = nd.signer.Sign(consensus.VoteSignBytes(s.chainID, a))
			}
		}
		b := *a
		b.BlockHash = s.altHash(a.Height, a.BlockHash)
		b.Signature = nd.signer.Sign(consensus.VoteSignBytes(s.chainID, &b))
		s.split(nd.id, a, &b)
	case *consensus.Proposal:
		blk := &consensus.Block{Header: m.Block.Header, Txs: [][]byte{s.randBytes(16)}}
		blk.Header.TxsHash = consensus.TxsHash(blk.Txs)
		blk.Header.Round, blk.Header.Proposer = m.Round, uint16(nd.id) // a fresh block, even against a re-proposal
		alt := &consensus.Proposal{Height: m.Height, Round: m.Round, POLRound: -1, Block: blk}
		alt.Signature = nd.signer.Sign(consensus.ProposalSignBytes(s.chainID, m.Height, m.Round, -1, blk.Hash()))
		s.chk.proposed(alt)
		s.split(nd.id, m, alt)
	default:
		s.broadcast(nd.id, m)
	}
}

// altHash picks what a conflicting vote says instead of h. The Byzantine validators collude: mostly they
// all name the latest other block proposed at the height, so that together they can push two groups of
// honest validators towards different blocks; sometimes nil, sometimes a hash of nothing at all.
func (s *sim) altHash(height uint64, h consensus.Hash) consensus.Hash {
	x := s.rng.IntN(10)
	if !h.IsZero() && x < 3 {
		return consensus.Hash{}
	}
	blocks := s.chk.blocksAt[height]
	for i := len(blocks) - 1; i >= 0 && x < 9; i-- {
		if blocks[i] != h {
			return blocks[i]
		}
	}
	var r consensus.Hash
	copy(r[:], s.randBytes(32))
	return r
}

// split sends a to one group of validators and b to the other, and both to a few (so that honest
// validators see the double signature and must report it). The groups depend only on the height and
// round, so all Byzantine validators split the honest ones the same way: proposals and prevotes go to
// group A, precommits for the same value to only part of it. That is the classic attack on locking:
// part of group A decides, the rest of A is locked without deciding, and the next round tempts the
// locked ones to a different block.
func (s *sim) split(from int, a, b consensus.Message) {
	var h uint64
	var r int32
	precommit := false
	switch m := a.(type) {
	case *consensus.Vote:
		h, r, precommit = m.Height, m.Round, m.Type == consensus.Precommit
	case *consensus.Proposal:
		h, r = m.Height, m.Round
	}
	ea, eb := consensus.EncodeMessage(a), consensus.EncodeMessage(b)
	for to := range s.nodes {
		if to == from {
			continue
		}
		switch {
		case s.rng.IntN(10) == 0:
			s.send(from, to, ea, false)
			s.send(from, to, eb, false)
		case s.group(h, r, to, 0) && (!precommit || s.group(h, r, to, 1)):
			s.send(from, to, ea, false)
		default:
			s.send(from, to, eb, false)
		}
	}
}

// group is the side validator i is on in the Byzantine validators' split number k of round r of height h.
func (s *sim) group(h uint64, r int32, i, k int) bool {
	x := s.cfg.Seed ^ h*0x9e3779b97f4a7c15 ^ uint64(r)*0xbf58476d1ce4e5b9 ^ uint64(i)*0x94d049bb133111eb ^ uint64(k)<<40
	x ^= x >> 31
	x *= 0xd6e8feb86659fd39
	x ^= x >> 29
	return x&1 == 0
}

// junk sends one piece of garbage to a random peer: bytes that do not decode, a cut-off message, a vote
// with a bad signature, from a non-validator, or for a height far ahead. None may ever be accepted.
func (s *sim) junk(nd *node, m consensus.Message) {
	to := s.rng.IntN(len(s.nodes))
	if to == nd.id {
		return
	}
	st := nd.core.Status()
	v := &consensus.Vote{Type: consensus.Prevote, Height: st.Height, Round: st.Round, Validator: uint16(nd.id)}
	copy(v.BlockHash[:], s.randBytes(32))
	var data []byte
	switch s.rng.IntN(5) {
	case 0:
		data = s.randBytes(s.rng.IntN(200))
	case 1:
		enc := consensus.EncodeMessage(m)
		data = enc[:s.rng.IntN(len(enc))]
	case 2:
		v.Signature = nd.signer.Sign(consensus.VoteSignBytes(s.chainID, v))
		v.Signature[s.rng.IntN(64)] ^= 1 << s.rng.IntN(8)
		data = consensus.EncodeMessage(v)
	case 3:
		v.Validator = uint16(len(s.nodes) + s.rng.IntN(100))
		v.Signature = nd.signer.Sign(consensus.VoteSignBytes(s.chainID, v))
		data = consensus.EncodeMessage(v)
	case 4:
		v.Height += 1000 + uint64(s.rng.IntN(1000)) // far beyond any honest validator in a run
		v.Signature = nd.signer.Sign(consensus.VoteSignBytes(s.chainID, v))
		data = consensus.EncodeMessage(v)
	}
	s.send(nd.id, to, data, true)
}
