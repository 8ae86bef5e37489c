package consensus

import (
	"encoding/binary"
	"fmt"
)

// SignState is what a validator must remember across a crash so that it never signs two conflicting
// messages and never forgets its lock: the last message it signed (height, round, step, and what it
// said, with the signature) and the block it is locked on at that height.
//
// The core signs a message only if its (height, round, step) is above the last one, or equal with
// identical content (a re-sign after restart, which reproduces the same signature). A new SignState comes
// out in Ready and must be synced to stable storage before any message of that Ready is sent: a message
// that leaves the process before its SignState is durable could be contradicted after a crash.
//
// The lock is part of it because Tendermint's safety rests on it: a validator that precommitted block B
// in round r must not prevote another block in a later round without a newer proof of lock, also after a
// restart. The lock only ever changes when the validator signs a precommit for a block, so it is
// persisted together with that precommit.
type SignState struct {
	Height    uint64
	Round     int32
	Step      Step // 0: never signed anything
	BlockHash Hash
	POLRound  int32 // proposals: the POL round signed; votes: -1
	Signature Signature

	LockedRound int32 // -1: not locked at Height
	LockedHash  Hash
}

const signStateSize = 8 + 4 + 1 + 32 + 4 + 64 + 4 + 32

// after compares (h, r, s) with the signer's last (height, round, step): +1 if later, 0 if equal, -1 if
// earlier.
func (ss *SignState) after(h uint64, r int32, s Step) int {
	switch {
	case h != ss.Height:
		return cmp(h > ss.Height)
	case r != ss.Round:
		return cmp(r > ss.Round)
	case s != ss.Step:
		return cmp(s > ss.Step)
	}
	return 0
}

func cmp(later bool) int {
	if later {
		return 1
	}
	return -1
}

// MarshalBinary returns the fixed-size canonical encoding the store keeps.
func (ss *SignState) MarshalBinary() ([]byte, error) {
	b := make([]byte, 0, signStateSize)
	b = binary.BigEndian.AppendUint64(b, ss.Height)
	b = binary.BigEndian.AppendUint32(b, uint32(ss.Round))
	b = append(b, byte(ss.Step))
	b = append(b, ss.BlockHash[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(ss.POLRound))
	b = append(b, ss.Signature[:]...)
	b = binary.BigEndian.AppendUint32(b, uint32(ss.LockedRound))
	b = append(b, ss.LockedHash[:]...)
	return b, nil
}

// UnmarshalBinary decodes MarshalBinary's encoding.
func (ss *SignState) UnmarshalBinary(b []byte) error {
	if len(b) != signStateSize {
		return fmt.Errorf("%w: sign state of %d bytes, want %d", ErrMalformed, len(b), signStateSize)
	}
	r := reader{b: b}
	ss.Height = r.u64()
	ss.Round = int32(r.u32())
	ss.Step = Step(r.u8())
	r.hash(&ss.BlockHash)
	ss.POLRound = int32(r.u32())
	r.sig(&ss.Signature)
	ss.LockedRound = int32(r.u32())
	r.hash(&ss.LockedHash)
	if ss.Step > StepPrecommit || ss.Round < 0 || ss.LockedRound < -1 || ss.LockedRound > ss.Round {
		return fmt.Errorf("%w: sign state fields out of range", ErrMalformed)
	}
	return nil
}

// LockProof is what a validator is locked on, kept so that a restart does not cost the network its
// liveness: the block, and the prevotes (more than 2/3 of the power, for that block, in the lock round)
// that made the validator lock. After a restart the validator re-proposes that block with its proof,
// as it would have before; without them a locked validator can only refuse other blocks, and a network
// whose locked validators all crashed would stall. It changes at most once per round, with a precommit,
// and goes to storage in the same synced write as that precommit's SignState.
type LockProof struct {
	Block    *Block
	Prevotes *Certificate // Prevote signatures: Height, Round (the lock round) and BlockHash of Block
}

// EncodeLockProof returns the canonical encoding of l.
func EncodeLockProof(l *LockProof) []byte {
	return AppendCertificate(EncodeBlock(l.Block), l.Prevotes)
}

// DecodeLockProof decodes EncodeLockProof's encoding.
func DecodeLockProof(b []byte) (*LockProof, error) {
	r := reader{b: b}
	l := &LockProof{Block: r.block()}
	if r.err == nil {
		l.Prevotes = r.certificate()
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return l, nil
}
