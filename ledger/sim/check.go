package sim

import (
	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// checker holds what the simulator, seeing everything, knows about the run, and checks the invariants
// against it. It trusts nothing the cores say about themselves beyond their output: certificates are
// re-verified signature by signature, proposers recomputed from the validator set.
type checker struct {
	s          *sim
	vals       []*consensus.ValidatorSet    // vals[h-1]: the set of height h
	decisions  map[uint64]consensus.Hash    // first honest decision per height
	proposals  map[consensus.Hash]uint64    // every block anyone signed a proposal for, with its height
	blocksAt   map[uint64][]consensus.Hash  // the same, by height
	firstAt    map[[2]uint64]consensus.Hash // the first block proposed in each (height, round)
	signatures map[signKey]content          // every message an honest validator signed
	seen       []map[signKey]content        // per honest validator: first message per key it got in its window
	reports    []map[signKey]bool           // per validator: evidence it reported
	owed       map[signKey]bool             // double signatures that reached an honest validator in its window
	found      map[signKey]bool             // double signatures an honest validator reported
	roundAtGST map[uint64]int32             // highest round honest validators were in at each height at GST
}

// signKey names a slot a validator may sign at most one message for.
type signKey struct {
	val    uint16
	height uint64
	round  int32
	step   consensus.Step
}

type content struct {
	hash consensus.Hash
	pol  int32
}

func keyOf(m consensus.Message, proposer int) (signKey, content, bool) {
	switch m := m.(type) {
	case *consensus.Vote:
		return signKey{m.Validator, m.Height, m.Round, m.Type}, content{m.BlockHash, -1}, true
	case *consensus.Proposal:
		return signKey{uint16(proposer), m.Height, m.Round, consensus.StepPropose}, content{m.Block.Hash(), m.POLRound}, true
	}
	return signKey{}, content{}, false
}

func (c *checker) init(s *sim) {
	n := s.cfg.Validators
	c.s = s
	c.decisions = map[uint64]consensus.Hash{}
	c.proposals = map[consensus.Hash]uint64{}
	c.blocksAt = map[uint64][]consensus.Hash{}
	c.firstAt = map[[2]uint64]consensus.Hash{}
	c.signatures = map[signKey]content{}
	c.seen = make([]map[signKey]content, n)
	c.reports = make([]map[signKey]bool, n)
	for i := range n {
		c.seen[i] = map[signKey]content{}
		c.reports[i] = map[signKey]bool{}
	}
	c.owed = map[signKey]bool{}
	c.found = map[signKey]bool{}
	c.roundAtGST = map[uint64]int32{}
	vals, _ := consensus.NewValidatorSet(s.genesis.Validators)
	c.vals = []*consensus.ValidatorSet{vals}
}

// valsAt returns the validator set of height h.
func (c *checker) valsAt(h uint64) *consensus.ValidatorSet {
	for uint64(len(c.vals)) < h {
		c.vals = append(c.vals, c.vals[len(c.vals)-1].Next())
	}
	return c.vals[h-1]
}

// proposerOf returns who must sign a proposal for round r of height h.
func (c *checker) proposerOf(h uint64, r int32) int { return c.valsAt(h).Proposer(r) }

// proposed records a proposal someone signed: the only blocks a decision may name.
func (c *checker) proposed(p *consensus.Proposal) {
	h := p.Block.Hash()
	if _, ok := c.proposals[h]; !ok {
		c.proposals[h] = p.Height
		c.blocksAt[p.Height] = append(c.blocksAt[p.Height], h)
	}
	if k := [2]uint64{p.Height, uint64(p.Round)}; c.firstAt[k].IsZero() {
		c.firstAt[k] = h
	}
}

// signed checks an honest validator's outgoing message against everything it signed before, across
// restarts: no two different messages for one (height, round, step).
func (c *checker) signed(nd *node, m consensus.Message) {
	if !own(c, nd, m) {
		return // a forwarded message of someone else
	}
	k, ct, _ := keyOf(m, nd.id)
	if prev, ok := c.signatures[k]; ok && prev != ct {
		c.s.violate("double_sign", "honest v%d signed %v h=%d r=%d for %s/pol %d, earlier for %s/pol %d",
			nd.id, k.step, k.height, k.round, ct.hash.Short(), ct.pol, prev.hash.Short(), prev.pol)
		return
	}
	c.signatures[k] = ct
}

// decided checks an honest validator's decision: agreement with every other honest decision at the
// height, validity (a block someone proposed, from the right proposer, on the agreed chain, with a
// certificate that verifies), and, after GST, the rounds it took.
func (c *checker) decided(nd *node, d *consensus.Decision) {
	s, b := c.s, d.Block
	h := b.Header.Height
	if h != nd.committed+1 {
		s.violate("validity", "v%d decided height %d after %d", nd.id, h, nd.committed)
	}
	if prev, ok := c.decisions[h]; ok {
		if prev != d.Hash {
			s.violate("agreement", "v%d decided %s at height %d, another honest validator decided %s", nd.id, d.Hash.Short(), h, prev.Short())
		}
		return
	}
	if ph, ok := c.proposals[d.Hash]; !ok || ph != h {
		s.violate("validity", "v%d decided block %s at height %d that nobody proposed", nd.id, d.Hash.Short(), h)
	}
	prevHash := s.genesis.Hash()
	if h > 1 {
		prevHash = c.decisions[h-1]
	}
	if b.Header.PrevHash != prevHash {
		s.violate("validity", "v%d decided block %s at height %d on %s, the chain is at %s", nd.id, d.Hash.Short(), h, b.Header.PrevHash.Short(), prevHash.Short())
	}
	if p := c.proposerOf(h, b.Header.Round); int(b.Header.Proposer) != p {
		s.violate("validity", "block %s at height %d names proposer %d of round %d, which is %d's", d.Hash.Short(), h, b.Header.Proposer, b.Header.Round, p)
	}
	c.checkCertificate(nd, d)
	c.decisions[h] = d.Hash
	s.res.CommitTimes = append(s.res.CommitTimes, s.now)
	if s.healed && s.cfg.Faults != 0 {
		rounds := int(d.Certificate.Round) - int(c.roundAtGST[h]) + 1
		rounds = max(rounds, 1)
		s.res.RoundsAfterHeal = append(s.res.RoundsAfterHeal, rounds)
		if limit := maxRoundsAfterHeal(s.cfg.Validators); rounds > limit {
			s.violate("liveness", "height %d took %d rounds after GST, bound %d", h, rounds, limit)
		}
	} else if s.healed {
		s.res.RoundsAfterHeal = append(s.res.RoundsAfterHeal, int(d.Certificate.Round)+1)
	}
}

// maxRoundsAfterHeal bounds the rounds a height may take after GST. Once the network is timely, a round
// with an honest proposer decides unless some honest validator is locked on a block whose proof of lock
// the proposer has not seen. The honest validator with the highest lock proposes within n rounds and
// sends its proof along, so without Byzantine help n+1 rounds suffice. Byzantine validators that split
// their prevotes can form proofs of lock only some honest validators see, raising the highest lock
// again; each time costs at most another turn of the proposers. 2n+1 leaves room for that: the worst
// seen over 10^4 seeds per size was 6 rounds.
func maxRoundsAfterHeal(n int) int { return 2*n + 1 }

// checkCertificate verifies a decision's certificate vote by vote, independently of VerifyCertificate.
func (c *checker) checkCertificate(nd *node, d *consensus.Decision) {
	s, cert := c.s, d.Certificate
	h := d.Block.Header.Height
	vals := c.valsAt(h)
	if cert.Height != h || cert.BlockHash != d.Hash {
		s.violate("validity", "v%d: certificate for %d/%s, decision %d/%s", nd.id, cert.Height, cert.BlockHash.Short(), h, d.Hash.Short())
		return
	}
	var power int64
	k := 0
	for i := 0; i < vals.Len(); i++ {
		if !cert.Signers.Has(i) {
			continue
		}
		if k >= len(cert.Signatures) {
			s.violate("validity", "v%d: certificate has fewer signatures than signers", nd.id)
			return
		}
		v := consensus.Vote{Type: consensus.Precommit, Height: h, Round: cert.Round, Validator: uint16(i), BlockHash: d.Hash, Signature: cert.Signatures[k]}
		pub := vals.Validator(i).PubKey
		if !s.ver.Verify(&pub, consensus.VoteSignBytes(s.chainID, &v), &v.Signature) {
			s.violate("validity", "v%d: certificate signature of validator %d does not verify", nd.id, i)
			return
		}
		power += vals.Validator(i).Power
		k++
	}
	if k != len(cert.Signatures) || 3*power <= 2*vals.TotalPower() {
		s.violate("validity", "v%d: certificate with %d signatures for %d signers, power %d of %d", nd.id, len(cert.Signatures), k, power, vals.TotalPower())
	}
}

// window reports whether honest validator nd is in a position to catch a double signature in m: it is at
// m's height, undecided, and m's round is within its lookahead. Only messages that arrive this way owe
// evidence when they conflict.
func (c *checker) window(nd *node, m consensus.Message) bool {
	st := nd.core.Status()
	switch m := m.(type) {
	case *consensus.Vote:
		return int(m.Validator) < len(c.s.nodes) && m.Height == st.Height && !st.Decided && m.Round <= st.Round+c.s.lookahead
	case *consensus.Proposal:
		return m.Height == st.Height && !st.Decided && m.Round <= st.Round+c.s.lookahead
	}
	return false
}

// delivered records that honest validator nd processed m inside its window, and checks that if m
// conflicts with an earlier such message, nd reported the evidence.
func (c *checker) delivered(nd *node, m consensus.Message) {
	proposer := 0
	if p, ok := m.(*consensus.Proposal); ok {
		proposer = c.proposerOf(p.Height, p.Round)
	}
	k, ct, ok := keyOf(m, proposer)
	if !ok {
		return
	}
	prev, ok := c.seen[nd.id][k]
	if !ok {
		c.seen[nd.id][k] = ct
		return
	}
	if prev == ct || (k.step != consensus.StepPropose && prev.hash == ct.hash) {
		return
	}
	c.owed[k] = true
	if !c.reports[nd.id][k] {
		c.s.violate("evidence", "v%d received conflicting %v from v%d at h=%d r=%d (%s, %s) and reported nothing", nd.id, k.step, k.val, k.height, k.round, prev.hash.Short(), ct.hash.Short())
	}
}

// reported checks evidence an honest or Byzantine validator's core reported: it must verify, and name a
// Byzantine validator.
func (c *checker) reported(nd *node, e *consensus.Evidence) {
	s := c.s
	if err := consensus.VerifyEvidence(s.chainID, c.valsAt(e.Height), e, s.ver); err != nil {
		s.violate("evidence", "v%d reported evidence that does not verify: %v", nd.id, err)
		return
	}
	if s.nodes[e.Validator].behaviour == Honest {
		s.violate("evidence", "v%d reported evidence against honest v%d", nd.id, e.Validator)
	}
	k := signKey{e.Validator, e.Height, e.Round, e.Step}
	c.reports[nd.id][k] = true
	if nd.behaviour == Honest {
		c.found[k] = true
	}
}

// restarted forgets what a validator received before a crash: its core forgot it too.
func (c *checker) restarted(nd *node) {
	clear(c.seen[nd.id])
}

func (c *checker) evidenceCounts() (owed, found int) { return len(c.owed), len(c.found) }

// own reports whether m was signed by nd itself rather than relayed.
func own(c *checker, nd *node, m consensus.Message) bool {
	switch m := m.(type) {
	case *consensus.Vote:
		return int(m.Validator) == nd.id
	case *consensus.Proposal:
		return c.proposerOf(m.Height, m.Round) == nd.id
	}
	return false
}
