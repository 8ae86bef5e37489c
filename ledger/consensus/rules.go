package consensus

import "slices"

// This file is the algorithm of "The latest gossip on BFT consensus" (Buchman, Kwon, Milosevic 2018),
// Algorithm 1. Comments name the lines of the paper each rule implements.

// startRound enters round r (lines 11-21).
func (c *Core) startRound(r int32) {
	c.round, c.step = r, StepPropose
	c.timers[timerPrevote].armed = false
	c.timers[timerPrecommit].armed = false
	c.awaitPayload = false
	p := c.proposerAt(r)
	timeout := c.roundTimeout(c.tick.propose, c.tick.proposeDelta, r)
	if p != c.self && c.suspected(p) {
		// Beyond the paper: a proposer not heard from for a whole height is down; waiting the full
		// propose timeout for it is what makes a dead validator cost seconds per turn in CometBFT.
		timeout = c.tick.proposeDown
	}
	c.arm(timerPropose, timeout, r)
	c.arm(timerRebroadcast, c.tick.rebroadcast, r)
	// Beyond the paper: a round that has not ended after twice its three timeouts moves on by itself.
	// The paper assumes every message is eventually delivered; a network that lost a vote for good before
	// it healed, and a signer that crashed and forgot it, can otherwise leave a round one vote short of
	// any quorum forever. Changing rounds never affects safety.
	c.arm(timerRound, 2*(timeout+c.roundTimeout(c.tick.prevote, c.tick.prevoteDelta, r)+
		c.roundTimeout(c.tick.precommit, c.tick.precommitDelta, r)), r)
	if p == c.self && c.sign.after(c.height, r, StepPropose) > 0 {
		if c.validBlock != nil { // lines 14-15: re-propose the valid value with its proof of lock round
			c.propose(c.validBlock, c.validHash, c.validRound)
		} else { // line 17: getValue(), from the driver
			c.awaitPayload, c.payloadRound = true, r
			c.out.ProposalRequest = &ProposalRequest{Height: c.height, Round: r, PrevHash: c.prevHash, MinTime: c.prevTime + 1}
		}
	}
}

// onTimeout handles a timer that fired (lines 57-67).
func (c *Core) onTimeout(k int, r int32) {
	if c.decided != nil || r != c.round {
		return
	}
	switch k {
	case timerPropose: // lines 57-60
		if c.step == StepPropose {
			c.prevote(Hash{})
		}
	case timerPrevote: // lines 61-64
		if c.step == StepPrevote {
			c.precommit(Hash{})
		}
	case timerPrecommit, timerRound: // lines 65-67, and the stuck-round escape
		c.startRound(r + 1)
	case timerRebroadcast:
		c.rebroadcast()
		c.arm(timerRebroadcast, c.tick.rebroadcast, r)
	}
	c.evaluate()
}

// evaluate applies the rules of the current round until none fires.
func (c *Core) evaluate() {
	for c.decided == nil && c.evalOnce() {
	}
}

// evalOnce applies the first rule of the current round whose condition holds and reports whether the
// core moved (changed step or round). Rules that only schedule a timeout or update the valid value
// run as a side effect without reporting progress.
func (c *Core) evalOnce() bool {
	r := c.round
	rs := c.rounds.get(r)
	if rs == nil {
		return false
	}
	pi := rs.proposal
	switch c.step {
	case StepPropose:
		if pi == nil {
			break
		}
		if pi.p.POLRound < 0 { // lines 22-27
			if pi.valid && (c.lockedRound == -1 || c.lockedHash == pi.hash) {
				c.prevote(pi.hash)
			} else {
				c.prevote(Hash{})
			}
			return true
		}
		// Lines 28-33: a re-proposal counts once its proof of lock (2/3+ prevotes in POLRound) is here.
		if pol := c.rounds.get(pi.p.POLRound); pol != nil && c.vals.Quorum(pol.prevotes.power(pi.hash)) {
			if pi.valid && (c.lockedRound <= pi.p.POLRound || c.lockedHash == pi.hash) {
				c.prevote(pi.hash)
			} else {
				c.prevote(Hash{})
			}
			return true
		}
	case StepPrevote:
		if c.polRule(rs) { // lines 36-43, step = prevote: lock and precommit
			return true
		}
		if c.vals.Quorum(rs.prevotes.power(Hash{})) { // lines 44-46
			c.precommit(Hash{})
			return true
		}
		if !rs.prevoteTimer && c.vals.Quorum(rs.prevotes.sum) { // lines 34-35
			rs.prevoteTimer = true
			c.arm(timerPrevote, c.roundTimeout(c.tick.prevote, c.tick.prevoteDelta, r), r)
		}
	case StepPrecommit:
		c.polRule(rs) // lines 36-43, step = precommit: only the valid value moves
	}
	if !rs.precommitTimer && c.vals.Quorum(rs.precommits.sum) { // lines 47-48
		rs.precommitTimer = true
		c.arm(timerPrecommit, c.roundTimeout(c.tick.precommit, c.tick.precommitDelta, r), r)
	}
	if c.vals.Quorum(rs.precommits.power(Hash{})) {
		// Beyond the paper: 2/3+ precommitted nil, so nothing can be decided in this round and waiting
		// out the precommit timeout would only delay the next one.
		c.startRound(r + 1)
		return true
	}
	return false
}

// polRule is lines 36-43: a valid proposal of the current round with 2/3+ prevotes for it, seen for the
// first time at step prevote or later. At step prevote the validator locks on it and precommits it; in
// both steps it becomes the valid value, which this validator re-proposes when it is proposer.
func (c *Core) polRule(rs *roundState) bool {
	pi := rs.proposal
	if rs.polDone || pi == nil || !pi.valid || !c.vals.Quorum(rs.prevotes.power(pi.hash)) {
		return false
	}
	rs.polDone = true
	c.validRound, c.validBlock, c.validHash = c.round, pi.p.Block, pi.hash
	if c.step != StepPrevote {
		return false
	}
	c.lockedRound, c.lockedHash = c.round, pi.hash
	if c.self >= 0 {
		pol := rs.prevotes.certificate(c.height, c.round, pi.hash)
		c.out.Lock = &LockProof{Block: pi.p.Block, Prevotes: pol}
	}
	c.precommit(pi.hash)
	return true
}

// restoreLock takes back, after a restart, the block this validator is locked on and the prevotes that
// locked it: the block becomes its valid value again, and the prevotes its proof of lock to send along
// when it re-proposes the block.
func (c *Core) restoreLock(l *LockProof) {
	r := l.Prevotes.Round
	vs := c.rounds.at(r).set(Prevote)
	k := 0
	for i := 0; i < c.vals.Len() && k < len(l.Prevotes.Signatures); i++ {
		if l.Prevotes.Signers.Has(i) {
			if !vs.has.Has(i) {
				vs.add(&Vote{Type: Prevote, Height: c.height, Round: r, Validator: uint16(i), BlockHash: c.lockedHash,
					Signature: l.Prevotes.Signatures[k]}, c.vals.vals[i].Power)
			}
			k++
		}
	}
	if !c.validAtHeight(l.Block, c.lockedHash) {
		return
	}
	c.validRound, c.validBlock, c.validHash = r, l.Block, c.lockedHash
}

func (c *Core) prevote(h Hash) {
	c.step = StepPrevote
	c.arm(timerRebroadcast, c.tick.rebroadcast, c.round)
	c.castVote(Prevote, h)
}

func (c *Core) precommit(h Hash) {
	c.step = StepPrecommit
	c.arm(timerRebroadcast, c.tick.rebroadcast, c.round)
	c.castVote(Precommit, h)
}

// castVote signs, sends and counts this validator's vote of the current round (if the guard allows it).
func (c *Core) castVote(t Step, h Hash) {
	if c.self < 0 {
		return
	}
	sig, ok := c.signMsg(t, c.round, -1, h)
	if !ok {
		return
	}
	v := &Vote{Type: t, Height: c.height, Round: c.round, Validator: uint16(c.self), BlockHash: h, Signature: sig}
	c.emit(v)
	vs := c.rounds.at(c.round).set(t)
	if !vs.has.Has(c.self) {
		vs.add(v, c.vals.vals[c.self].Power)
	}
	if t == Precommit {
		c.tryDecide(c.round)
	}
}

// signMsg is the double-sign guard: it signs (height, r, step) with hash h (and polRound, for proposals)
// only if that is later than anything signed before, or identical to the last thing signed. A new
// signature updates the SignState that Ready asks the driver to persist before sending.
func (c *Core) signMsg(s Step, r, polRound int32, h Hash) (Signature, bool) {
	switch c.sign.after(c.height, r, s) {
	case 0:
		if c.sign.BlockHash == h && c.sign.POLRound == polRound {
			return c.sign.Signature, true
		}
		c.counters.SignRefused++
		return Signature{}, false
	case -1:
		c.counters.SignRefused++
		return Signature{}, false
	}
	c.scratch = signBytes(c.scratch[:0], c.cfg.ChainID, s, c.height, r, polRound, &h)
	sig := c.cfg.Signer.Sign(c.scratch)
	c.sign = SignState{Height: c.height, Round: r, Step: s, BlockHash: h, POLRound: polRound, Signature: sig,
		LockedRound: c.lockedRound, LockedHash: c.lockedHash}
	ss := c.sign
	c.out.SignState = &ss
	return sig, true
}

// propose signs and sends a proposal of b for the current round, with the proof of lock when it is a
// re-proposal (the prevotes of polRound for it), and takes it in like a received one.
func (c *Core) propose(b *Block, h Hash, polRound int32) {
	sig, ok := c.signMsg(StepPropose, c.round, polRound, h)
	if !ok {
		return
	}
	p := &Proposal{Height: c.height, Round: c.round, POLRound: polRound, Block: b, Signature: sig}
	c.emit(p)
	if polRound >= 0 {
		c.emitPOL(polRound, h)
	}
	rs := c.rounds.at(c.round)
	if rs.proposal == nil {
		rs.proposal = &proposalInfo{p: p, hash: h, valid: c.blockValid(b, h, c.round, polRound)}
		c.blockArrived(h)
	}
}

// emitPOL sends the prevotes of round r for h that this core holds. Beyond the paper: a proposer that
// re-proposes a locked value sends its proof along, so validators that lost those prevotes to the network
// can still accept the re-proposal.
func (c *Core) emitPOL(r int32, h Hash) {
	rs := c.rounds.get(r)
	if rs == nil {
		return
	}
	vs := &rs.prevotes
	for i := range vs.votes {
		if v := vs.vote(i, h); v != nil {
			cp := *v
			c.emit(&cp)
		}
	}
}

// rebroadcast sends everything this core holds for the current round again: the proposal (with its proof
// of lock), and every validator's prevote and precommit, its own included. It runs only when the core has
// been in one round for a rebroadcast interval, which a healthy network never allows; then it is the
// gossip that repairs what the network lost, including votes whose signer crashed and forgot them.
func (c *Core) rebroadcast() {
	rs := c.rounds.get(c.round)
	if rs == nil {
		return
	}
	if pi := rs.proposal; pi != nil {
		c.emit(pi.p)
		if pi.p.POLRound >= 0 {
			c.emitPOL(pi.p.POLRound, pi.hash)
		}
	}
	for _, vs := range []*voteSet{&rs.prevotes, &rs.precommits} {
		for i := range vs.votes {
			if vs.has.Has(i) {
				v := vs.votes[i]
				c.emit(&v)
			}
		}
	}
}

// tryDecide is lines 49-54 for round r: 2/3+ precommits for a block whose content this core holds and
// found valid. The block may have come in a proposal of any round of the height.
func (c *Core) tryDecide(r int32) {
	if c.decided != nil {
		return
	}
	rs := c.rounds.get(r)
	if rs == nil {
		return
	}
	for _, t := range rs.precommits.tallies {
		if t.hash.IsZero() || !c.vals.Quorum(t.power) {
			continue
		}
		if kb := c.knownBlock(t.hash); kb != nil && kb.valid {
			c.decide(kb.block, t.hash, rs.precommits.certificate(c.height, r, t.hash))
		}
		return
	}
}

// blockArrived checks every round for a commit of the block with hash h, which just became known.
func (c *Core) blockArrived(h Hash) {
	for r := range c.rounds.byNum {
		if rs := c.rounds.byNum[r]; rs != nil && c.vals.Quorum(rs.precommits.power(h)) {
			c.tryDecide(int32(r))
			return
		}
	}
}

func (c *Core) decide(b *Block, h Hash, cert *Certificate) {
	c.decided = &Decision{Block: b, Hash: h, Certificate: cert, Next: c.vals.Next()}
	c.out.Decided = c.decided
	c.awaitPayload = false
	for i := range c.timers {
		c.timers[i].armed = false
	}
	c.counters.Decided++
}

// heard records a verified message from validator i for round r of the current height, and applies the
// round-skip rule (line 55) if it moved i beyond the current round.
func (c *Core) heard(i int, height uint64, r int32) {
	if height > c.lastHeard[i] {
		c.lastHeard[i] = height
	}
	if height != c.height || r <= c.maxRound[i] {
		return
	}
	c.maxRound[i] = r
	if r > c.round && c.decided == nil {
		c.roundSkip()
	}
}

// roundSkip is line 55: when validators with more than a third of the power have sent messages for rounds
// above ours, at least one of them is honest and there: move to the highest round R such that more than
// a third of the power is at R or beyond.
func (c *Core) roundSkip() {
	c.skip = c.skip[:0]
	for i, r := range c.maxRound {
		if r > c.round {
			c.skip = append(c.skip, roundPower{round: r, power: c.vals.vals[i].Power})
		}
	}
	slices.SortFunc(c.skip, func(a, b roundPower) int { return int(b.round - a.round) })
	var sum int64
	for _, rp := range c.skip {
		sum += rp.power
		if c.vals.OneThird(sum) {
			c.startRound(rp.round)
			return
		}
	}
}
