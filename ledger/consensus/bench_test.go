package consensus

import (
	"fmt"
	"testing"
)

// nopVerifier accepts every signature: it isolates the core's own cost from the cryptography's.
type nopVerifier struct{}

func (nopVerifier) Verify(*PublicKey, []byte, *Signature) bool { return true }
func (nopVerifier) VerifyBatch([]SignedMessage) bool           { return true }

// BenchmarkStepVote measures taking in one prevote (checks, signature verification, counting, rules),
// with Ed25519 and with the cryptography left out. The votes are for rounds the core never reaches, all
// within its lookahead; the set is reset between rounds.
func BenchmarkStepVote(b *testing.B) {
	for _, crypto := range []string{"ed25519", "none"} {
		b.Run("verify="+crypto, func(b *testing.B) {
			const n = 100
			keys := testKeys(n)
			st, _ := testGenesis(b, keys).State()
			cfg := testConfig(nil)
			if crypto == "none" {
				cfg.Verifier = nopVerifier{}
			}
			c, _ := New(cfg, st)
			drain(c)
			var votes []*Vote
			for i := 1; i < n/4; i++ { // stays below a third: no round skip
				votes = append(votes, signedVote(keys, i, Prevote, 1, 3, Hash{1}))
			}
			b.ReportAllocs()
			k := 0
			for b.Loop() {
				if k == len(votes) {
					k = 0
					c.rounds.at(3).prevotes.reset()
					clear(c.maxRound)
				}
				if err := c.Step(votes[k]); err != nil {
					b.Fatal(err)
				}
				k++
			}
		})
	}
}

// BenchmarkVerifyCertificate compares verifying a commit certificate's signatures in one batch with
// verifying them one by one, for 10 and 100 validators.
func BenchmarkVerifyCertificate(b *testing.B) {
	for _, n := range []int{10, 100} {
		keys := testKeys(n)
		vals, _ := NewValidatorSet(testGenesis(b, keys).Validators)
		h := Hash{7}
		cert := &Certificate{Height: 1, BlockHash: h, Signers: NewBitmap(n)}
		for i := range n {
			cert.Signers.Set(i)
			cert.Signatures = append(cert.Signatures, signedVote(keys, i, Precommit, 1, 0, h).Signature)
		}
		b.Run(fmt.Sprintf("validators=%d/batch", n), func(b *testing.B) {
			for b.Loop() {
				if err := VerifyCertificate(testChain, vals, cert, Ed25519Verifier{}); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(fmt.Sprintf("validators=%d/one-by-one", n), func(b *testing.B) {
			msg := signBytes(nil, testChain, Precommit, 1, 0, -1, &h)
			for b.Loop() {
				for i := range n {
					if !(Ed25519Verifier{}).Verify(&vals.vals[i].PubKey, msg, &cert.Signatures[i]) {
						b.Fatal("bad")
					}
				}
			}
		})
	}
}
