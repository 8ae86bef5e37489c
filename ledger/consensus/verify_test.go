package consensus

import (
	"errors"
	"testing"
)

func testCertificate(t *testing.T, keys []*Ed25519Signer, b *Block, signers ...int) *Certificate {
	c := &Certificate{Height: b.Header.Height, Round: 0, BlockHash: b.Hash(), Signers: NewBitmap(len(keys))}
	for _, i := range signers {
		c.Signers.Set(i)
		c.Signatures = append(c.Signatures, signedVote(keys, i, Precommit, c.Height, 0, c.BlockHash).Signature)
	}
	return c
}

func TestVerifyCertificate(t *testing.T) {
	keys := testKeys(4)
	vals, _ := NewValidatorSet(testGenesis(t, keys).Validators)
	b := testBlock(t, keys, 0, "a")
	if err := VerifyCommit(testChain, vals, &Commit{Block: b, Certificate: testCertificate(t, keys, b, 0, 1, 3)}, Ed25519Verifier{}); err != nil {
		t.Fatalf("a valid commit: %v", err)
	}
	bad := map[string]func(c *Certificate){
		"two thirds only": func(c *Certificate) { *c = *testCertificate(t, keys, b, 0, 1) },
		"bad signature":   func(c *Certificate) { c.Signatures[1][3] ^= 1 },
		"other chain": func(c *Certificate) {
			v := &Vote{Type: Precommit, Height: 1, Validator: 1, BlockHash: c.BlockHash}
			c.Signatures[1] = keys[1].Sign(signBytes(nil, "other-chain", Precommit, 1, 0, -1, &v.BlockHash))
		},
		"prevotes, not precommits": func(c *Certificate) {
			c.Signatures[0] = signedVote(keys, 0, Prevote, 1, 0, c.BlockHash).Signature
		},
		"other round":           func(c *Certificate) { c.Round = 1 },
		"missing signature":     func(c *Certificate) { c.Signatures = c.Signatures[:2] },
		"signer beyond the set": func(c *Certificate) { c.Signers[0] |= 0x80 },
		"bitmap too long":       func(c *Certificate) { c.Signers = append(c.Signers, 0) },
		"nil block":             func(c *Certificate) { c.BlockHash = Hash{} },
	}
	for name, mutate := range bad {
		c := testCertificate(t, keys, b, 0, 1, 3)
		mutate(c)
		if err := VerifyCertificate(testChain, vals, c, Ed25519Verifier{}); !errors.Is(err, ErrCertificate) {
			t.Errorf("%s: err %v", name, err)
		}
	}
	// The commit must be for the block it carries.
	other := testBlock(t, keys, 0, "b")
	if err := VerifyCommit(testChain, vals, &Commit{Block: other, Certificate: testCertificate(t, keys, b, 0, 1, 3)}, Ed25519Verifier{}); !errors.Is(err, ErrCertificate) {
		t.Errorf("certificate of another block accepted: %v", err)
	}
	swapped := &Block{Header: b.Header, Txs: [][]byte{[]byte("swapped")}}
	if err := VerifyCommit(testChain, vals, &Commit{Block: swapped, Certificate: testCertificate(t, keys, b, 0, 1, 3)}, Ed25519Verifier{}); !errors.Is(err, ErrCertificate) {
		t.Errorf("block with swapped transactions accepted: %v", err)
	}
}

// TestBatchMatchesSingle checks that the Ed25519 verifier's batch and single paths agree, item by item.
func TestBatchMatchesSingle(t *testing.T) {
	keys := testKeys(8)
	var items []SignedMessage
	for i, k := range keys {
		msg := []byte{byte(i), 'm'}
		sig := k.Sign(msg)
		pub := k.PublicKey()
		items = append(items, SignedMessage{Key: &pub, Msg: msg, Sig: &sig})
	}
	v := Ed25519Verifier{}
	if !v.VerifyBatch(items) {
		t.Fatal("valid batch rejected")
	}
	for i := range items {
		bad := *items[i].Sig
		bad[10] ^= 4
		orig := items[i].Sig
		items[i].Sig = &bad
		if v.VerifyBatch(items) || v.Verify(items[i].Key, items[i].Msg, items[i].Sig) {
			t.Fatalf("corrupted signature %d accepted", i)
		}
		items[i].Sig = orig
	}
}
