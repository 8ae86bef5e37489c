package consensus

import (
	"errors"
	"testing"
)

// network runs cores of validators in memory, delivering every message to every other core in order.
type network struct {
	cores []*Core
	queue []envelope
	ready func(i int, rd *Ready) // optional check of each Ready
}

type envelope struct {
	from int
	m    Message
}

func newNetwork(t *testing.T, n int) (*network, []*Ed25519Signer) {
	keys := testKeys(n)
	net := &network{}
	for i := range n {
		net.cores = append(net.cores, newTestCore(t, keys, i))
	}
	return net, keys
}

// run delivers messages and answers proposal requests until done or nothing is left to do.
func (net *network) run(t *testing.T, done func() bool) {
	for step := 0; !done(); step++ {
		if step > 100000 {
			t.Fatal("network does not settle")
		}
		progressed := false
		for i, c := range net.cores {
			for c.HasReady() {
				progressed = true
				rd := c.Ready()
				if net.ready != nil {
					net.ready(i, &rd)
				}
				for _, m := range rd.Messages {
					net.queue = append(net.queue, envelope{i, m})
				}
				rq := rd.ProposalRequest
				c.Advance()
				if rq != nil {
					if err := c.Propose(rq.Height, rq.Round, Payload{Time: rq.MinTime, Txs: [][]byte{[]byte("tx")}}); err != nil {
						t.Fatal(err)
					}
				}
			}
		}
		if len(net.queue) > 0 {
			e := net.queue[0]
			net.queue = net.queue[1:]
			for j, c := range net.cores {
				if j != e.from {
					c.Step(e.m)
				}
			}
			progressed = true
		}
		if !progressed {
			return
		}
	}
}

// TestDecideHeights runs four cores on a perfect network: every height is decided in round 0 by
// everyone, on the same chain, and every message that carries a new signature comes with the SignState
// that covers it.
func TestDecideHeights(t *testing.T) {
	net, _ := newNetwork(t, 4)
	decided := make([][]Hash, 4)
	net.ready = func(i int, rd *Ready) {
		own := 0
		for _, m := range rd.Messages {
			if v, ok := m.(*Vote); ok && int(v.Validator) == i {
				own++
				if rd.SignState == nil || rd.SignState.Height != v.Height || rd.SignState.Round < v.Round {
					t.Fatalf("v%d sends its %v h=%d r=%d without a SignState covering it: %+v", i, v.Type, v.Height, v.Round, rd.SignState)
				}
			}
		}
		if d := rd.Decided; d != nil {
			decided[i] = append(decided[i], d.Hash)
			if err := VerifyCommit(testChain, net.cores[i].Validators(), &Commit{Block: d.Block, Certificate: d.Certificate}, Ed25519Verifier{}); err != nil {
				t.Fatalf("v%d decided a block its certificate does not prove: %v", i, err)
			}
			if d.Certificate.Round != 0 {
				t.Fatalf("v%d decided in round %d on a perfect network", i, d.Certificate.Round)
			}
		}
	}
	all := func() bool {
		for _, d := range decided {
			if len(d) < 5 {
				return false
			}
		}
		return true
	}
	net.run(t, all)
	if !all() {
		t.Fatalf("decided %d, %d, %d, %d heights", len(decided[0]), len(decided[1]), len(decided[2]), len(decided[3]))
	}
	for i := 1; i < 4; i++ {
		for h := range 5 {
			if decided[i][h] != decided[0][h] {
				t.Fatalf("height %d: v%d decided %s, v0 %s", h+1, i, decided[i][h].Short(), decided[0][h].Short())
			}
		}
	}
}

// TestBadInputIsCountedNotFatal feeds a core every kind of bad message: each is refused with its own
// reason, counted, and changes nothing.
func TestBadInputIsCountedNotFatal(t *testing.T) {
	keys := testKeys(4)
	c := newTestCore(t, keys, 1)
	drain(c)
	b := testBlock(t, keys, 0, "tx")
	other := testKeys(5)[4]

	badSig := signedVote(keys, 2, Prevote, 1, 0, b.Hash())
	badSig.Signature[0] ^= 1
	wrongKey := &Vote{Type: Prevote, Height: 1, Validator: 2, BlockHash: b.Hash()}
	wrongKey.Signature = other.Sign(VoteSignBytes(testChain, wrongKey))
	notProposer := signedProposal(keys, 2, b, 0, -1) // round 0 belongs to v0
	swapped := signedProposal(keys, 0, b, 0, -1)
	swapped.Block = &Block{Header: b.Header, Txs: [][]byte{[]byte("not the signed transactions")}}
	badCert := &Commit{Block: b, Certificate: &Certificate{Height: 1, BlockHash: b.Hash(), Signers: NewBitmap(4), Signatures: []Signature{{}}}}
	badCert.Certificate.Signers.Set(0)

	cases := []struct {
		m    Message
		want error
		why  DropReason
	}{
		{badSig, ErrBadSignature, DropBadSignature},
		{wrongKey, ErrBadSignature, DropBadSignature},
		{&Vote{Type: Prevote, Height: 1, Validator: 7}, ErrNotValidator, DropNotValidator},
		{&Vote{Type: StepPropose, Height: 1}, ErrMalformed, DropMalformed},
		{&Vote{Type: Prevote, Height: 1, Round: -1}, ErrMalformed, DropMalformed},
		{signedVote(keys, 2, Prevote, 0, 0, b.Hash()), ErrOldHeight, DropOldHeight},
		{signedVote(keys, 2, Prevote, 3, 0, b.Hash()), ErrFutureHeight, DropFutureHeight},
		{signedVote(keys, 2, Prevote, 1<<60, 0, b.Hash()), ErrFutureHeight, DropFutureHeight},
		{signedVote(keys, 2, Prevote, 1, 100, b.Hash()), ErrFarRound, DropFarRound},
		{&Proposal{Height: 1}, ErrMalformed, DropMalformed},
		{notProposer, ErrBadSignature, DropBadSignature},
		{swapped, ErrMalformed, DropMalformed},
		{badCert, ErrInvalidCommit, DropInvalidCommit},
		{(*Vote)(nil), ErrMalformed, DropMalformed},
		{nil, ErrMalformed, DropMalformed},
	}
	for i, tc := range cases {
		before := c.Counters().Dropped[tc.why]
		err := c.Step(tc.m)
		if !errors.Is(err, tc.want) {
			t.Errorf("case %d (%T): err %v, want %v", i, tc.m, err, tc.want)
		}
		if got := c.Counters().Dropped[tc.why]; got != before+1 {
			t.Errorf("case %d: %v counted %d times, want %d", i, tc.why, got, before+1)
		}
	}
	if msgs, dec, ev := drain(c); len(msgs)+len(dec)+len(ev) != 0 {
		t.Fatalf("bad input produced output: %v %v %v", msgs, dec, ev)
	}
	if c.Counters().Accepted != 0 {
		t.Fatalf("accepted %d bad messages", c.Counters().Accepted)
	}

	// A good vote is accepted once; its copy is a duplicate.
	good := signedVote(keys, 2, Prevote, 1, 0, b.Hash())
	if err := c.Step(good); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(good); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("duplicate: %v", err)
	}
	// Messages for the next height are held, a few per validator.
	for r := int32(0); r < nextPerValidator; r++ {
		if err := c.Step(signedVote(keys, 3, Prevote, 2, r, Hash{})); err != nil {
			t.Fatalf("next-height vote %d: %v", r, err)
		}
	}
	if err := c.Step(signedVote(keys, 3, Prevote, 2, 5, Hash{})); !errors.Is(err, ErrBufferFull) {
		t.Fatalf("over the next-height budget: %v", err)
	}
}

// TestMemoryBounded floods a core with validly signed votes of one validator (less than a third of the
// power) for ever higher rounds, and of all validators for the next height: what it keeps stays bounded.
func TestMemoryBounded(t *testing.T) {
	keys := testKeys(4)
	st, _ := testGenesis(t, keys).State()
	cfg := testConfig(keys[0])
	cfg.Verifier = acceptAll{} // every flooding vote counts as validly signed
	c, err := New(cfg, st)
	if err != nil {
		t.Fatal(err)
	}
	drain(c)
	for r := int32(0); r < 5000; r++ {
		c.Step(&Vote{Type: Prevote, Height: 1, Round: r, Validator: 3, BlockHash: Hash{byte(r)}})
		c.Step(&Vote{Type: Precommit, Height: 1, Round: r, Validator: 3, BlockHash: Hash{byte(r), 1}})
		c.Step(&Vote{Type: Prevote, Height: 2, Round: r, Validator: 2})
		drain(c)
	}
	if c.round != 0 {
		t.Fatalf("one validator of four moved the core to round %d", c.round)
	}
	if n := len(c.rounds.byNum); n > int(c.cfg.RoundLookahead)+1 {
		t.Fatalf("%d rounds held, lookahead is %d", n, c.cfg.RoundLookahead)
	}
	if n := len(c.next); n > nextPerValidator*4 {
		t.Fatalf("%d next-height messages held", n)
	}
	if got := c.Counters().Dropped[DropFarRound]; got == 0 {
		t.Fatal("far rounds not counted")
	}
}

// TestRoundSkip checks line 55: messages from more than a third of the power in a higher round move the
// core there; from a third or less, they do not.
func TestRoundSkip(t *testing.T) {
	keys := testKeys(4)
	c := newTestCore(t, keys, 0)
	drain(c)
	c.Step(signedVote(keys, 1, Prevote, 1, 5, Hash{}))
	if c.round != 0 {
		t.Fatalf("one of four moved the core to round %d", c.round)
	}
	c.Step(signedVote(keys, 2, Prevote, 1, 7, Hash{}))
	if c.round != 5 {
		t.Fatalf("two of four at rounds 5 and 7: core at round %d, want 5", c.round)
	}
}

// TestEvidence checks that two conflicting votes, or proposals, of one validator are reported once, with
// evidence that verifies, and that the second vote does not count twice.
func TestEvidence(t *testing.T) {
	keys := testKeys(4)
	c := newTestCore(t, keys, 0)
	drain(c)
	b := testBlock(t, keys, 0, "a")
	b2 := testBlock(t, keys, 0, "b")
	if err := c.Step(signedVote(keys, 3, Prevote, 1, 0, b.Hash())); err != nil {
		t.Fatal(err)
	}
	if err := c.Step(signedVote(keys, 3, Prevote, 1, 0, Hash{})); !errors.Is(err, ErrConflict) {
		t.Fatalf("conflicting vote: %v", err)
	}
	if err := c.Step(signedVote(keys, 3, Prevote, 1, 0, Hash{7})); !errors.Is(err, ErrDuplicate) {
		t.Fatalf("third vote, already reported: %v", err)
	}
	_, _, ev := drain(c)
	if len(ev) != 1 || ev[0].Validator != 3 || ev[0].Step != Prevote {
		t.Fatalf("evidence %+v", ev)
	}
	vals := c.Validators()
	if err := VerifyEvidence(testChain, vals, &ev[0], Ed25519Verifier{}); err != nil {
		t.Fatal(err)
	}
	forged := ev[0]
	forged.B.Signature[5] ^= 1
	if err := VerifyEvidence(testChain, vals, &forged, Ed25519Verifier{}); !errors.Is(err, ErrEvidence) {
		t.Fatalf("forged evidence: %v", err)
	}
	if rs := c.rounds.get(0); rs.prevotes.sum != vals.Validator(3).Power {
		t.Fatalf("an equivocating validator counts %d toward any-votes, want its power once", rs.prevotes.sum)
	}

	// v1 proposes round 1 twice, differently: evidence of a double proposal.
	c2 := newTestCore(t, keys, 2)
	drain(c2)
	p1 := signedProposal(keys, 1, testBlockAt(t, keys, 1, "x"), 1, -1)
	p2 := signedProposal(keys, 1, testBlockAt(t, keys, 1, "y"), 1, -1)
	if err := c2.Step(p1); err != nil {
		t.Fatal(err)
	}
	if err := c2.Step(p2); !errors.Is(err, ErrConflict) {
		t.Fatalf("second proposal: %v", err)
	}
	_, _, ev = drain(c2)
	if len(ev) != 1 || ev[0].Step != StepPropose || VerifyEvidence(testChain, vals, &ev[0], Ed25519Verifier{}) != nil {
		t.Fatalf("proposal evidence %+v", ev)
	}
	_ = b2
}

// testBlockAt is testBlock for round r.
func testBlockAt(t testing.TB, keys []*Ed25519Signer, r int32, txs ...string) *Block {
	return testBlock(t, keys, r, txs...)
}

// TestGuardAfterRestart restarts a validator that precommitted block A in round 0 and shows it block B:
// it must not prevote or precommit B in round 0, and it sends its old precommit again, identical.
func TestGuardAfterRestart(t *testing.T) {
	keys := testKeys(4)
	a := testBlock(t, keys, 0, "a")
	st, _ := testGenesis(t, keys).State()
	pre := signedVote(keys, 1, Precommit, 1, 0, a.Hash())
	st.Sign = SignState{Height: 1, Round: 0, Step: StepPrecommit, BlockHash: a.Hash(), POLRound: -1, Signature: pre.Signature,
		LockedRound: 0, LockedHash: a.Hash()}
	c, err := New(testConfig(keys[1]), st)
	if err != nil {
		t.Fatal(err)
	}
	msgs, _, _ := drain(c)
	if len(msgs) != 1 || *msgs[0].(*Vote) != *pre {
		t.Fatalf("after restart sent %v, want its last precommit again", msgs)
	}
	if s := c.Status(); s.LockedRound != 0 || s.LockedHash != a.Hash() {
		t.Fatalf("lock lost: %+v", s)
	}
	// v0 proposes B in round 0 (a Byzantine proposer would): v1 must not sign anything for it.
	b := testBlock(t, keys, 0, "b")
	c.Step(signedProposal(keys, 0, b, 0, -1))
	for _, i := range []int{0, 2, 3} {
		c.Step(signedVote(keys, i, Prevote, 1, 0, b.Hash()))
	}
	msgs, _, _ = drain(c)
	for _, m := range msgs {
		if v, ok := m.(*Vote); ok && v.Validator == 1 && v.Round == 0 {
			t.Fatalf("restarted validator signed %v for %s in round 0", v.Type, v.BlockHash.Short())
		}
	}
	if c.Counters().SignRefused == 0 {
		t.Fatal("the guard refused nothing")
	}
}

// TestObserverDecides runs an observer (no key) beside the validators: it decides the same blocks and
// never sends a vote.
func TestObserverDecides(t *testing.T) {
	net, keys := newNetwork(t, 4)
	obs := newTestCore(t, keys, -1)
	net.cores = append(net.cores, obs)
	var got []Hash
	net.ready = func(i int, rd *Ready) {
		if i == 4 {
			for _, m := range rd.Messages {
				if _, ok := m.(*Vote); ok && rd.SignState != nil {
					t.Fatal("observer signed a vote")
				}
			}
			if rd.Decided != nil {
				got = append(got, rd.Decided.Hash)
			}
		}
	}
	net.run(t, func() bool { return len(got) >= 3 })
	if len(got) < 3 {
		t.Fatalf("observer decided %d heights", len(got))
	}
}

// TestLockSurvivesRestart locks a validator, restarts it from exactly what its Ready asked to persist,
// and checks that it is still locked, holds the block, and re-proposes it with its proof of lock when it
// is the proposer.
func TestLockSurvivesRestart(t *testing.T) {
	keys := testKeys(4)
	c := newTestCore(t, keys, 1)
	drain(c)
	b := testBlock(t, keys, 0, "a")
	c.Step(signedProposal(keys, 0, b, 0, -1))
	c.Step(signedVote(keys, 0, Prevote, 1, 0, b.Hash()))
	c.Step(signedVote(keys, 2, Prevote, 1, 0, b.Hash()))
	var ss *SignState
	var lock *LockProof
	for c.HasReady() {
		rd := c.Ready()
		if rd.SignState != nil {
			ss = rd.SignState
		}
		if rd.Lock != nil {
			lock = rd.Lock
		}
		c.Advance()
	}
	if ss == nil || lock == nil || ss.Step != Precommit || ss.LockedRound != 0 || ss.LockedHash != b.Hash() {
		t.Fatalf("after locking, Ready asked to persist %+v and lock %v", ss, lock != nil)
	}
	st, _ := testGenesis(t, keys).State()
	st.Sign, st.Lock = *ss, lock
	r, err := New(testConfig(keys[1]), st)
	if err != nil {
		t.Fatal(err)
	}
	if s := r.Status(); s.LockedRound != 0 || s.LockedHash != b.Hash() || s.ValidRound != 0 || s.ValidHash != b.Hash() {
		t.Fatalf("after restart: %+v", s)
	}
	drain(r)
	for _, i := range []int{0, 2, 3} {
		r.Step(signedVote(keys, i, Precommit, 1, 0, Hash{}))
	}
	msgs, _, _ := drain(r)
	var prop *Proposal
	pol := 0
	for _, m := range msgs {
		switch m := m.(type) {
		case *Proposal:
			prop = m
		case *Vote:
			if m.Type == Prevote && m.Round == 0 && m.BlockHash == b.Hash() {
				pol++
			}
		}
	}
	if prop == nil || prop.Round != 1 || prop.POLRound != 0 || prop.Block.Hash() != b.Hash() || pol != 3 {
		t.Fatalf("round 1: proposal %+v with %d proof-of-lock prevotes", prop, pol)
	}
}
