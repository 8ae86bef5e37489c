package consensus

import (
	"encoding/binary"
	"testing"
)

// recordingSigner signs with an Ed25519 key and remembers every message it signed, by (height, round,
// step), failing the test on a second, different one: the double-sign guard's contract, checked at the
// only place a signature is made.
type recordingSigner struct {
	*Ed25519Signer
	t      *testing.T
	signed map[[3]uint64]string
}

func (r *recordingSigner) Sign(msg []byte) Signature {
	// Sign bytes: domain, chain ID (length-prefixed), step, height, round, [pol round,] hash.
	rest := msg[len(signDomain)+1+len(testChain):]
	k := [3]uint64{binary.BigEndian.Uint64(rest[1:9]), uint64(binary.BigEndian.Uint32(rest[9:13])), uint64(rest[0])}
	what := string(rest[13:])
	if prev, ok := r.signed[k]; ok && prev != what {
		r.t.Fatalf("signed two different messages for %v at height %d round %d", Step(k[2]), k[0], k[1])
	}
	r.signed[k] = what
	return r.Ed25519Signer.Sign(msg)
}

// acceptAll is a Verifier that accepts every signature, so that fuzzed messages reach every rule of the
// state machine instead of stopping at signature checks.
type acceptAll struct{}

func (acceptAll) Verify(*PublicKey, []byte, *Signature) bool { return true }
func (acceptAll) VerifyBatch([]SignedMessage) bool           { return true }

// FuzzStep drives one validator's core (v0 of 4) with a program read from the fuzz input: ticks, votes
// and proposals built from input bytes (from any validator, height, round and block, signatures
// accepted), raw bytes through the decoder, and answers to proposal requests. It checks that the core
// never panics, never signs two different messages for one height, round and step (recordingSigner), and
// after every operation holds no more than its bounds allow.
func FuzzStep(f *testing.F) {
	f.Add([]byte{0, 200, 1, 2, 0, 0, 0, 1, 1, 2, 0, 0, 1, 1, 1, 2, 0, 0, 2, 1, 3})
	f.Add([]byte{4, 0, 0, 0, 0, 1, 2, 0, 0, 1, 0, 1, 2, 0, 0, 2, 0, 1, 3, 0, 0, 1, 0, 0, 250, 0, 250})
	f.Add([]byte{5, 0, 112, 2, 2, 0, 0, 0, 0, 0, 0, 0, 1})
	f.Add([]byte{0, 255, 0, 255, 0, 255, 0, 255, 1, 2, 9, 9, 1, 1, 1, 2, 9, 9, 2, 1})
	keys := testKeys(4)
	g := testGenesis(f, keys)
	f.Fuzz(func(t *testing.T, prog []byte) {
		st, _ := g.State()
		cfg := testConfig(&recordingSigner{Ed25519Signer: keys[0], t: t, signed: map[[3]uint64]string{}})
		cfg.Verifier = acceptAll{}
		c, err := New(cfg, st)
		if err != nil {
			t.Fatal(err)
		}
		blocks := make([]*Block, 3)
		for i := range blocks {
			blocks[i] = &Block{Header: Header{Height: 1, Round: int32(i), Proposer: uint16(i), Time: g.Time + 1, PrevHash: g.Hash()}, Txs: [][]byte{{byte(i)}}}
			blocks[i].Header.TxsHash = TxsHash(blocks[i].Txs)
		}
		hashes := []Hash{{}, blocks[0].Hash(), blocks[1].Hash(), blocks[2].Hash()}
		var req *ProposalRequest
		next := func() byte {
			if len(prog) == 0 {
				return 0
			}
			b := prog[0]
			prog = prog[1:]
			return b
		}
		for ops := 0; len(prog) > 0 && ops < 2000; ops++ {
			switch next() % 6 {
			case 0: // ticks
				for k := int(next()) * 8; k > 0; k-- {
					c.Tick()
				}
			case 1: // a vote
				typ := Prevote
				if next()%2 == 1 {
					typ = Precommit
				}
				v := &Vote{Type: typ, Height: c.height + uint64(next()%3) - 1, Round: int32(next() % 12), Validator: uint16(next() % 5), BlockHash: hashes[next()%4]}
				c.Step(v)
			case 2: // answer a proposal request
				if req != nil {
					c.Propose(req.Height, req.Round, Payload{Time: req.MinTime + int64(next()), Txs: [][]byte{{next()}}})
					req = nil
				}
			case 3: // raw bytes through the decoder
				n := int(next())
				if n > len(prog) {
					n = len(prog)
				}
				if m, err := DecodeMessage(prog[:n]); err == nil {
					c.Step(m)
				}
				prog = prog[n:]
			case 4: // a proposal of one of the blocks, possibly re-proposed with a POL round
				b := *blocks[next()%3]
				b.Header.Height = c.height
				b.Header.PrevHash = c.prevHash
				b.Header.Time = c.prevTime + 1
				r := int32(next() % 12)
				pol := int32(next()%12) - 1
				if pol >= r {
					pol = -1
				}
				c.Step(&Proposal{Height: c.height, Round: r, POLRound: pol, Block: &b})
			case 5: // a commit for the current height
				b := *blocks[next()%3]
				b.Header.Height, b.Header.PrevHash, b.Header.Time = c.height, c.prevHash, c.prevTime+1
				cert := &Certificate{Height: c.height, Round: int32(next() % 4), BlockHash: b.Hash(), Signers: NewBitmap(4)}
				for i := range 4 {
					if next()%2 == 0 {
						cert.Signers.Set(i)
						cert.Signatures = append(cert.Signatures, Signature{})
					}
				}
				c.Step(&Commit{Block: &b, Certificate: cert})
			}
			for c.HasReady() {
				rd := c.Ready()
				if rd.ProposalRequest != nil {
					req = rd.ProposalRequest
				}
				c.Advance()
			}
			if n := len(c.rounds.byNum); n > int(c.round+c.cfg.RoundLookahead)+1 {
				t.Fatalf("%d rounds held at round %d", n, c.round)
			}
			if len(c.next) > nextPerValidator*4 {
				t.Fatalf("%d next-height messages held", len(c.next))
			}
			for _, rs := range c.rounds.byNum {
				if rs != nil && (len(rs.prevotes.extra) > 8 || len(rs.precommits.extra) > 8) {
					t.Fatal("extra votes beyond their bound")
				}
			}
		}
	})
}
