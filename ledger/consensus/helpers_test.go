package consensus

import (
	"crypto/ed25519"
	"crypto/sha256"
	"testing"
	"time"
)

const testChain = "test-chain"

// testKeys returns n deterministic Ed25519 signers.
func testKeys(n int) []*Ed25519Signer {
	out := make([]*Ed25519Signer, n)
	for i := range out {
		seed := sha256.Sum256([]byte{byte(i), byte(i >> 8), 'k'})
		out[i] = NewEd25519Signer(ed25519.NewKeyFromSeed(seed[:]))
	}
	return out
}

func testGenesis(t testing.TB, keys []*Ed25519Signer, powers ...int64) *Genesis {
	g := &Genesis{ChainID: testChain, Time: 1000}
	for i, k := range keys {
		p := int64(1)
		if i < len(powers) {
			p = powers[i]
		}
		g.Validators = append(g.Validators, Validator{PubKey: k.PublicKey(), Power: p})
	}
	if err := g.Validate(); err != nil {
		t.Fatal(err)
	}
	return g
}

func testConfig(s Signer) Config {
	return Config{ChainID: testChain, Signer: s, Verifier: Ed25519Verifier{}, Tick: time.Millisecond}
}

// newTestCore returns the core of validator i (or an observer for i < 0) at the genesis of keys.
func newTestCore(t testing.TB, keys []*Ed25519Signer, i int) *Core {
	st, err := testGenesis(t, keys).State()
	if err != nil {
		t.Fatal(err)
	}
	var s Signer
	if i >= 0 {
		s = keys[i]
	}
	c, err := New(testConfig(s), st)
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// signedVote returns validator i's signed vote.
func signedVote(keys []*Ed25519Signer, i int, t Step, h uint64, r int32, hash Hash) *Vote {
	v := &Vote{Type: t, Height: h, Round: r, Validator: uint16(i), BlockHash: hash}
	v.Signature = keys[i].Sign(VoteSignBytes(testChain, v))
	return v
}

// testBlock returns a valid block for height 1 proposed in round r by the proposer of that round.
func testBlock(t testing.TB, keys []*Ed25519Signer, r int32, txs ...string) *Block {
	g := testGenesis(t, keys)
	vals, _ := NewValidatorSet(g.Validators)
	b := &Block{Header: Header{Height: 1, Round: r, Proposer: uint16(vals.Proposer(r)), Time: g.Time + 1, PrevHash: g.Hash()}}
	for _, tx := range txs {
		b.Txs = append(b.Txs, []byte(tx))
	}
	b.Header.TxsHash = TxsHash(b.Txs)
	return b
}

func signedProposal(keys []*Ed25519Signer, proposer int, b *Block, r, pol int32) *Proposal {
	p := &Proposal{Height: b.Header.Height, Round: r, POLRound: pol, Block: b}
	p.Signature = keys[proposer].Sign(ProposalSignBytes(testChain, p.Height, r, pol, b.Hash()))
	return p
}

// drain takes every Ready, as a driver that persists nothing would, and returns what came out.
func drain(c *Core) (msgs []Message, decided []*Decision, evidence []Evidence) {
	for c.HasReady() {
		rd := c.Ready()
		msgs = append(msgs, rd.Messages...)
		if rd.Decided != nil {
			decided = append(decided, rd.Decided)
		}
		evidence = append(evidence, rd.Evidence...)
		c.Advance()
	}
	return
}
