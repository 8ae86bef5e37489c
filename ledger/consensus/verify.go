package consensus

import (
	"errors"
	"fmt"
)

// ErrCertificate is returned (wrapped, with the reason) for a certificate that does not prove its block.
var ErrCertificate = errors.New("consensus: invalid commit certificate")

// VerifyCertificate checks that c proves a commit in chain chainID by validator set vals (the set of
// c.Height): a signer bitmap of the set's size, one signature per signer, signers with more than 2/3 of
// the voting power, and every signature a valid precommit for c.BlockHash in c.Round. The signatures are
// verified in one batch.
func VerifyCertificate(chainID string, vals *ValidatorSet, c *Certificate, v Verifier) error {
	n := vals.Len()
	switch {
	case c.BlockHash.IsZero():
		return fmt.Errorf("%w: certificate for nil", ErrCertificate)
	case c.Round < 0 || c.Round > MaxRound:
		return fmt.Errorf("%w: round %d", ErrCertificate, c.Round)
	case len(c.Signers) != (n+7)/8:
		return fmt.Errorf("%w: signer bitmap of %d bytes for %d validators", ErrCertificate, len(c.Signers), n)
	}
	for i := n; i < 8*len(c.Signers); i++ {
		if c.Signers.Has(i) {
			return fmt.Errorf("%w: signer %d is not a validator", ErrCertificate, i)
		}
	}
	if k := c.Signers.Count(); k != len(c.Signatures) {
		return fmt.Errorf("%w: %d signers but %d signatures", ErrCertificate, k, len(c.Signatures))
	}
	msg := signBytes(nil, chainID, Precommit, c.Height, c.Round, -1, &c.BlockHash)
	items := make([]SignedMessage, 0, len(c.Signatures))
	var power int64
	for i := 0; i < n; i++ {
		if c.Signers.Has(i) {
			power += vals.vals[i].Power
			items = append(items, SignedMessage{Key: &vals.vals[i].PubKey, Msg: msg, Sig: &c.Signatures[len(items)]})
		}
	}
	if !vals.Quorum(power) {
		return fmt.Errorf("%w: signers hold %d of %d voting power, need more than 2/3", ErrCertificate, power, vals.total)
	}
	if !v.VerifyBatch(items) {
		return fmt.Errorf("%w: a signature does not verify", ErrCertificate)
	}
	return nil
}

// VerifyCommit checks a block from block sync: its certificate proves it (VerifyCertificate with the set
// of its height), the certificate is for this block at its height, and the transactions match the header.
// It does not check that the block extends the caller's chain (PrevHash) or the application's state: the
// caller does, in order, block after block.
func VerifyCommit(chainID string, vals *ValidatorSet, m *Commit, v Verifier) error {
	if m.Block == nil || m.Certificate == nil {
		return fmt.Errorf("%w: commit without block or certificate", ErrCertificate)
	}
	hd := &m.Block.Header
	if m.Certificate.Height != hd.Height {
		return fmt.Errorf("%w: certificate for height %d, block at %d", ErrCertificate, m.Certificate.Height, hd.Height)
	}
	if h := m.Block.Hash(); h != m.Certificate.BlockHash {
		return fmt.Errorf("%w: certificate for block %s, block is %s", ErrCertificate, m.Certificate.BlockHash.Short(), h.Short())
	}
	if hd.Round > m.Certificate.Round {
		return fmt.Errorf("%w: block first proposed in round %d, after the commit round %d", ErrCertificate, hd.Round, m.Certificate.Round)
	}
	if TxsHash(m.Block.Txs) != hd.TxsHash {
		return fmt.Errorf("%w: transactions do not match the header's hash", ErrCertificate)
	}
	return VerifyCertificate(chainID, vals, m.Certificate, v)
}

// ErrEvidence is returned (wrapped) for evidence that does not prove a double signature.
var ErrEvidence = errors.New("consensus: invalid evidence")

// VerifyEvidence checks that e proves validator e.Validator of vals signed two different messages for the
// same height, round and step.
func VerifyEvidence(chainID string, vals *ValidatorSet, e *Evidence, v Verifier) error {
	if int(e.Validator) >= vals.Len() {
		return fmt.Errorf("%w: validator %d not in the set", ErrEvidence, e.Validator)
	}
	if e.Step < StepPropose || e.Step > StepPrecommit {
		return fmt.Errorf("%w: step %d", ErrEvidence, e.Step)
	}
	if e.A.BlockHash == e.B.BlockHash && (e.Step != StepPropose || e.A.POLRound == e.B.POLRound) {
		return fmt.Errorf("%w: the two messages are the same", ErrEvidence)
	}
	key := &vals.vals[e.Validator].PubKey
	for _, s := range []*Signed{&e.A, &e.B} {
		pol := int32(-1)
		if e.Step == StepPropose {
			pol = s.POLRound
		}
		msg := signBytes(nil, chainID, e.Step, e.Height, e.Round, pol, &s.BlockHash)
		if !v.Verify(key, msg, &s.Signature) {
			return fmt.Errorf("%w: signature does not verify", ErrEvidence)
		}
	}
	return nil
}
