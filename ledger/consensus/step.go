package consensus

import "fmt"

// This file takes messages in: checks them cheaply first (form, height, round, duplicates), verifies
// signatures only for what could matter, and files them where the rules look for them.

// stepVote handles a vote. verified is set for votes replayed from the next-height buffer.
func (c *Core) stepVote(v *Vote, verified bool) error {
	if (v.Type != Prevote && v.Type != Precommit) || v.Round < 0 || v.Round > MaxRound {
		return fmt.Errorf("%w: vote type %d round %d", ErrMalformed, v.Type, v.Round)
	}
	i := int(v.Validator)
	if i >= c.vals.Len() {
		return ErrNotValidator
	}
	switch {
	case v.Height < c.height || (v.Height == c.height && c.decided != nil):
		c.lagging(i, v.Height, v.Round)
		return ErrOldHeight
	case v.Height == c.height+1:
		return c.bufferNext(v, i, func() bool { return c.verifyVote(v) })
	case v.Height > c.height+1:
		return ErrFutureHeight
	}
	if v.Round > c.round+c.cfg.RoundLookahead {
		// Too far ahead to keep, but a verified vote still counts for the round-skip rule.
		if v.Round > c.maxRound[i] {
			if !verified && !c.verifyVote(v) {
				return ErrBadSignature
			}
			c.heard(i, v.Height, v.Round)
			c.evaluate()
		}
		if v.Round > c.round+c.cfg.RoundLookahead {
			return ErrFarRound
		}
		verified = true
	}
	vs := c.rounds.at(v.Round).set(v.Type)
	if vs.has.Has(i) {
		// A second vote of this validator in this set: a copy, or a double signature.
		if vs.holds(i, v.BlockHash) {
			return ErrDuplicate
		}
		counts := !v.BlockHash.IsZero() && c.knownBlock(v.BlockHash) != nil && !vs.extraFull()
		if vs.evid.Has(i) && !counts {
			return ErrDuplicate // already reported, and nothing to count
		}
		if !verified && !c.verifyVote(v) {
			return ErrBadSignature
		}
		if !vs.evid.Has(i) {
			vs.evid.Set(i)
			prev := &vs.votes[i]
			c.report(Evidence{Validator: v.Validator, Height: v.Height, Round: v.Round, Step: v.Type,
				A: Signed{BlockHash: prev.BlockHash, POLRound: -1, Signature: prev.Signature},
				B: Signed{BlockHash: v.BlockHash, POLRound: -1, Signature: v.Signature}})
		}
		if !counts {
			return ErrConflict
		}
		vs.addExtra(v, c.vals.vals[i].Power)
	} else {
		if !verified && !c.verifyVote(v) {
			return ErrBadSignature
		}
		vs.add(v, c.vals.vals[i].Power)
	}
	c.heard(i, v.Height, v.Round)
	if v.Type == Precommit {
		c.tryDecide(v.Round)
	}
	c.evaluate()
	return nil
}

func (c *Core) verifyVote(v *Vote) bool {
	c.scratch = signBytes(c.scratch[:0], c.cfg.ChainID, v.Type, v.Height, v.Round, -1, &v.BlockHash)
	return c.cfg.Verifier.Verify(&c.vals.vals[v.Validator].PubKey, c.scratch, &v.Signature)
}

func (c *Core) verifyProposal(p *Proposal, proposer int, h *Hash) bool {
	c.scratch = signBytes(c.scratch[:0], c.cfg.ChainID, StepPropose, p.Height, p.Round, p.POLRound, h)
	return c.cfg.Verifier.Verify(&c.vals.vals[proposer].PubKey, c.scratch, &p.Signature)
}

// stepProposal handles a proposal. verified is set for proposals replayed from the next-height buffer.
func (c *Core) stepProposal(p *Proposal, verified bool) error {
	if p.Round < 0 || p.Round > MaxRound || p.POLRound < -1 || p.POLRound >= p.Round {
		return fmt.Errorf("%w: proposal round %d pol_round %d", ErrMalformed, p.Round, p.POLRound)
	}
	switch {
	case p.Height < c.height || (p.Height == c.height && c.decided != nil):
		return ErrOldHeight
	case p.Height == c.height+1:
		if p.Round > c.cfg.RoundLookahead {
			return ErrFarRound
		}
		proposer := c.nextProposerAt(p.Round)
		return c.bufferNext(p, proposer, func() bool {
			h := p.Block.Hash()
			return c.verifyProposal(p, proposer, &h) && TxsHash(p.Block.Txs) == p.Block.Header.TxsHash
		})
	case p.Height > c.height+1:
		return ErrFutureHeight
	}
	if p.Round > c.round+c.cfg.RoundLookahead {
		return ErrFarRound
	}
	proposer := c.proposerAt(p.Round)
	h := p.Block.Hash()
	rs := c.rounds.at(p.Round)
	if old := rs.proposal; old != nil {
		if old.hash == h && old.p.POLRound == p.POLRound || rs.proposalEvidence {
			return ErrDuplicate
		}
	}
	if !verified && !c.verifyProposal(p, proposer, &h) {
		return ErrBadSignature
	}
	// The signature covers the header only. Anyone relaying the proposal could swap its transactions, so a
	// mismatch says nothing about the proposer: drop the copy and keep waiting for an intact one.
	if TxsHash(p.Block.Txs) != p.Block.Header.TxsHash {
		return fmt.Errorf("%w: transactions do not match the header's hash", ErrMalformed)
	}
	c.heard(proposer, p.Height, p.Round)
	if old := rs.proposal; old != nil {
		rs.proposalEvidence = true
		c.report(Evidence{Validator: uint16(proposer), Height: p.Height, Round: p.Round, Step: StepPropose,
			A: Signed{BlockHash: old.hash, POLRound: old.p.POLRound, Signature: old.p.Signature},
			B: Signed{BlockHash: h, POLRound: p.POLRound, Signature: p.Signature}})
		return ErrConflict
	}
	rs.proposal = &proposalInfo{p: p, hash: h, valid: c.blockValid(p.Block, h, p.Round, p.POLRound)}
	c.blockArrived(h)
	c.evaluate()
	return nil
}

// stepCommit handles a decided block with its certificate, sent by a peer because this core is behind.
func (c *Core) stepCommit(m *Commit) error {
	cert := m.Certificate
	switch {
	case cert.Height < c.height || (cert.Height == c.height && c.decided != nil):
		return ErrOldHeight
	case cert.Height > c.height:
		return ErrFutureHeight
	}
	h := m.Block.Hash()
	if cert.BlockHash != h {
		return fmt.Errorf("%w: certificate is for block %s, block is %s", ErrInvalidCommit, cert.BlockHash.Short(), h.Short())
	}
	if TxsHash(m.Block.Txs) != m.Block.Header.TxsHash {
		return fmt.Errorf("%w: transactions do not match the header's hash", ErrInvalidCommit)
	}
	if err := VerifyCertificate(c.cfg.ChainID, c.vals, cert, c.cfg.Verifier); err != nil {
		return fmt.Errorf("%w: %w", ErrInvalidCommit, err)
	}
	// The certificate proves the round is real, so computing its schedule is bounded by honest progress.
	if !c.blockValid(m.Block, h, cert.Round, cert.Round) {
		return fmt.Errorf("%w: block is not valid at height %d", ErrInvalidCommit, c.height)
	}
	c.decide(m.Block, h, cert)
	return nil
}

// blockValid is valid(v) of the paper for a block proposed in round with polRound: the block was first
// proposed by the right proposer (a fresh proposal carries its own round in the header; a re-proposal a
// round no later than its proof of lock) and is valid at this height (validAtHeight). The caller has
// checked the transactions against the header's hash.
func (c *Core) blockValid(b *Block, h Hash, round, polRound int32) bool {
	hr := b.Header.Round
	if hr < 0 || (polRound < 0 && hr != round) || (polRound >= 0 && hr > polRound) {
		return false
	}
	return c.validAtHeight(b, h)
}

// validAtHeight checks what does not depend on the round a block is proposed in: it extends the chain at
// this height, at a later time, from the proposer of its header's round, within the size limit, and the
// application accepts it. The answer is remembered per block hash for the height, and a block found here
// is one a decision may name.
func (c *Core) validAtHeight(b *Block, h Hash) bool {
	if kb := c.knownBlock(h); kb != nil {
		return kb.valid
	}
	hd := &b.Header
	valid := hd.Height == c.height && hd.PrevHash == c.prevHash && hd.Time > c.prevTime &&
		int(hd.Proposer) == c.proposerAt(hd.Round) && blockSize(b) <= c.cfg.MaxBlockBytes &&
		(c.cfg.ValidateBlock == nil || c.cfg.ValidateBlock(b) == nil)
	c.blocks = append(c.blocks, knownBlock{hash: h, block: b, valid: valid})
	return valid
}

func (c *Core) knownBlock(h Hash) *knownBlock {
	for i := range c.blocks {
		if c.blocks[i].hash == h {
			return &c.blocks[i]
		}
	}
	return nil
}

// report queues evidence for the driver.
func (c *Core) report(e Evidence) {
	c.out.Evidence = append(c.out.Evidence, e)
	c.counters.Evidence++
}

// lagging notes that validator i sent a message for a height this core has decided. It reports a Lag when
// the sender is clearly stuck there rather than a moment behind: two or more heights back, past the round
// that height was decided in, or still there a rebroadcast interval after this core moved on. At most
// one Lag per validator per rebroadcast interval.
func (c *Core) lagging(i int, height uint64, round int32) {
	if c.decided != nil && height == c.height {
		return
	}
	stuck := height+1 < c.height || round > c.decidedRound || c.now-c.enteredAt >= c.tick.rebroadcast
	if !stuck || (c.lastHint[i] != 0 && c.now-c.lastHint[i] < c.tick.rebroadcast) || i == c.self {
		return
	}
	c.lastHint[i] = c.now
	if c.lastHint[i] == 0 {
		c.lastHint[i] = 1
	}
	c.out.Lagging = append(c.out.Lagging, Lag{Validator: uint16(i), Height: height})
}

// bufferNext keeps a verified message for the next height, at most nextPerValidator per validator.
func (c *Core) bufferNext(m Message, i int, verify func() bool) error {
	if c.nextUsed[i] >= nextPerValidator {
		return ErrBufferFull
	}
	if !verify() {
		return ErrBadSignature
	}
	c.nextUsed[i]++
	c.lastHeard[i] = c.height + 1
	c.next = append(c.next, m)
	return nil
}

// replayNext feeds the buffered messages of the height just entered through the usual path, without
// verifying their signatures again. (The validator set does not change between heights yet; when it
// does, buffered messages must be verified against the new set here instead.)
func (c *Core) replayNext() {
	msgs := c.next
	c.next = nil
	clear(c.nextUsed)
	for _, m := range msgs {
		var err error
		switch m := m.(type) {
		case *Vote:
			err = c.stepVote(m, true)
		case *Proposal:
			err = c.stepProposal(m, true)
		}
		if err != nil { // accepted ones were counted when they were buffered
			c.count(err)
		}
	}
	clear(msgs)
	if c.next == nil {
		c.next = msgs[:0]
	}
}
