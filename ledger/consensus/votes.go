package consensus

// voteSet holds the prevotes or the precommits of one round: the first valid vote of each validator,
// indexed by validator, the power behind each block hash, and a bounded number of extra votes.
//
// Extra votes are the second (third...) votes of validators that equivocated, kept when they are for a
// block this core knows at the height. They count towards that block's power: a Byzantine validator's
// prevote for B is a real prevote for B, and without it an honest validator locked on B through it could
// never show the others its proof of lock (they hold the Byzantine's other vote). Counting them is safe:
// with Byzantine power b < T/3, two quorums (> 2T/3 each) for different blocks in one round would need
// honest power above 2(2T/3 - b) > T - b, more than there is. The power of "any" votes (sum) counts each
// validator once.
//
// Memory is O(validators), allocated once; sets are recycled across heights, so counting a vote
// allocates nothing.
type voteSet struct {
	votes   []Vote // votes[i] is valid where has.Has(i)
	has     Bitmap
	evid    Bitmap  // validators already reported for a conflicting vote in this set
	extra   []Vote  // further votes of equivocating validators for known blocks; at most 2 per validator slot
	tallies []tally // power per distinct hash voted for (nil included)
	sum     int64   // power of all validators that voted
}

type tally struct {
	hash  Hash
	power int64
}

func (vs *voteSet) init(n int) {
	if cap(vs.votes) < n {
		vs.votes = make([]Vote, n)
		vs.has = NewBitmap(n)
		vs.evid = NewBitmap(n)
	}
	vs.votes = vs.votes[:n]
	vs.has = vs.has[:(n+7)/8]
	vs.evid = vs.evid[:(n+7)/8]
	vs.reset()
}

func (vs *voteSet) reset() {
	vs.has.clear()
	vs.evid.clear()
	vs.tallies = vs.tallies[:0]
	vs.extra = vs.extra[:0]
	vs.sum = 0
}

// holds reports whether the set already counts validator i's vote for h.
func (vs *voteSet) holds(i int, h Hash) bool {
	if !vs.has.Has(i) {
		return false
	}
	if vs.votes[i].BlockHash == h {
		return true
	}
	for k := range vs.extra {
		if int(vs.extra[k].Validator) == i && vs.extra[k].BlockHash == h {
			return true
		}
	}
	return false
}

// extraFull reports whether the set holds as many extra votes as it may.
func (vs *voteSet) extraFull() bool { return len(vs.extra) >= 2*len(vs.votes) }

func (vs *voteSet) add(v *Vote, power int64) {
	i := int(v.Validator)
	vs.votes[i] = *v
	vs.has.Set(i)
	vs.sum += power
	vs.tally(v.BlockHash, power)
}

// addExtra counts a further vote of a validator that already voted differently.
func (vs *voteSet) addExtra(v *Vote, power int64) {
	vs.extra = append(vs.extra, *v)
	vs.tally(v.BlockHash, power)
}

func (vs *voteSet) tally(h Hash, power int64) {
	for k := range vs.tallies {
		if vs.tallies[k].hash == h {
			vs.tallies[k].power += power
			return
		}
	}
	vs.tallies = append(vs.tallies, tally{hash: h, power: power})
}

// vote returns validator i's vote for h in the set, or nil.
func (vs *voteSet) vote(i int, h Hash) *Vote {
	if !vs.has.Has(i) {
		return nil
	}
	if vs.votes[i].BlockHash == h {
		return &vs.votes[i]
	}
	for k := range vs.extra {
		if int(vs.extra[k].Validator) == i && vs.extra[k].BlockHash == h {
			return &vs.extra[k]
		}
	}
	return nil
}

// power returns the voting power behind hash h (the zero hash: nil).
func (vs *voteSet) power(h Hash) int64 {
	for k := range vs.tallies {
		if vs.tallies[k].hash == h {
			return vs.tallies[k].power
		}
	}
	return 0
}

// certificate returns the signatures of the votes for h, as a Certificate.
func (vs *voteSet) certificate(height uint64, round int32, h Hash) *Certificate {
	c := &Certificate{Height: height, Round: round, BlockHash: h, Signers: NewBitmap(len(vs.votes))}
	for i := range vs.votes {
		if v := vs.vote(i, h); v != nil {
			c.Signers.Set(i)
			c.Signatures = append(c.Signatures, v.Signature)
		}
	}
	return c
}

// roundState is everything the core knows about one round of the current height.
type roundState struct {
	prevotes   voteSet
	precommits voteSet
	proposal   *proposalInfo // the first proposal signed by the round's proposer

	proposalEvidence bool // conflicting proposal already reported
	polDone          bool // rule "proposal and 2/3+ prevotes for it" has fired (lines 36-43)
	prevoteTimer     bool // timeout prevote has been scheduled (line 34)
	precommitTimer   bool // timeout precommit has been scheduled (line 47)
}

func (rs *roundState) init(n int) {
	rs.prevotes.init(n)
	rs.precommits.init(n)
	rs.proposal = nil
	rs.proposalEvidence, rs.polDone, rs.prevoteTimer, rs.precommitTimer = false, false, false, false
}

func (rs *roundState) set(t Step) *voteSet {
	if t == Prevote {
		return &rs.prevotes
	}
	return &rs.precommits
}

// proposalInfo is a verified proposal with its block's hash and whether the block is valid at this height.
type proposalInfo struct {
	p     *Proposal
	hash  Hash
	valid bool
}

// rounds holds the round states of the current height, indexed by round, and recycles them.
type rounds struct {
	n     int
	byNum []*roundState
	free  []*roundState
}

// get returns round r's state, or nil if nothing was recorded for it.
func (rr *rounds) get(r int32) *roundState {
	if r < 0 || int(r) >= len(rr.byNum) {
		return nil
	}
	return rr.byNum[r]
}

// at returns round r's state, creating it. The caller bounds r (current round + lookahead).
func (rr *rounds) at(r int32) *roundState {
	for int(r) >= len(rr.byNum) {
		rr.byNum = append(rr.byNum, nil)
	}
	rs := rr.byNum[r]
	if rs == nil {
		if k := len(rr.free); k > 0 {
			rs, rr.free = rr.free[k-1], rr.free[:k-1]
		} else {
			rs = new(roundState)
		}
		rs.init(rr.n)
		rr.byNum[r] = rs
	}
	return rs
}

// reset forgets every round (a new height), keeping the memory for reuse.
func (rr *rounds) reset(n int) {
	if n != rr.n {
		rr.free = rr.free[:0]
	}
	for _, rs := range rr.byNum {
		if rs != nil && n == rr.n {
			rr.free = append(rr.free, rs)
		}
	}
	clear(rr.byNum)
	rr.byNum = rr.byNum[:0]
	rr.n = n
}
