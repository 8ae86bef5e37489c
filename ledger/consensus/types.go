package consensus

import (
	"crypto/sha256"
	"encoding/hex"
	"strconv"
)

// Hash is a SHA-256 digest. In votes the zero Hash stands for nil: "no block in this round".
type Hash [32]byte

// IsZero reports whether h is the zero hash (a nil vote).
func (h Hash) IsZero() bool { return h == Hash{} }

// String returns h in hex, or "nil" for the zero hash.
func (h Hash) String() string {
	if h.IsZero() {
		return "nil"
	}
	return hex.EncodeToString(h[:])
}

// Short returns the first six hex digits of h, or "nil": enough to tell blocks apart in logs and scenarios.
func (h Hash) Short() string {
	if h.IsZero() {
		return "nil"
	}
	return hex.EncodeToString(h[:3])
}

// PublicKey is a validator's Ed25519 public key.
type PublicKey [32]byte

// Signature is an Ed25519 signature.
type Signature [64]byte

// Step is a step of a round of the algorithm: propose, prevote, precommit, in that order. A vote's Type is
// Prevote or Precommit; the signer's state and evidence name the step of the message they are about.
type Step uint8

// The steps of a round, in the order a validator goes through them (and signs in them).
const (
	StepPropose   Step = 1
	StepPrevote   Step = 2
	StepPrecommit Step = 3
)

// Prevote and Precommit are the two kinds of vote.
const (
	Prevote   = StepPrevote
	Precommit = StepPrecommit
)

func (s Step) String() string {
	switch s {
	case StepPropose:
		return "propose"
	case StepPrevote:
		return "prevote"
	case StepPrecommit:
		return "precommit"
	case 0:
		return "none"
	}
	return "step(" + strconv.Itoa(int(s)) + ")"
}

// Message is one of *Proposal, *Vote or *Commit: everything validators send each other. Messages have a
// canonical binary encoding (EncodeMessage, DecodeMessage).
type Message interface {
	isMessage()
}

// Vote is a signed prevote or precommit for a block (by its hash) or for nil (the zero hash) in one round
// of one height. Validator is the voter's index in the validator set of Height.
type Vote struct {
	Type      Step // Prevote or Precommit
	Height    uint64
	Round     int32
	Validator uint16
	BlockHash Hash // zero: nil
	Signature Signature
}

// Proposal is the proposer's signed proposal of Block for round Round of height Height. POLRound is -1 for
// a fresh block, or the round (< Round) in which the block received prevotes of more than 2/3 of the
// voting power, when the proposer re-proposes the block it saw a proof of lock for (its valid value).
type Proposal struct {
	Height    uint64
	Round     int32
	POLRound  int32
	Block     *Block
	Signature Signature
}

// Commit is a decided block with the certificate that proves it: what a validator sends a peer that is
// behind, and what block sync carries.
type Commit struct {
	Block       *Block
	Certificate *Certificate
}

func (*Vote) isMessage()     {}
func (*Proposal) isMessage() {}
func (*Commit) isMessage()   {}

// Header is the part of a block that its hash covers. Transactions enter through TxsHash.
type Header struct {
	Height   uint64
	Round    int32  // the round in which the block was first proposed
	Proposer uint16 // index of its proposer in the validator set of Height: the proposer of Round
	Time     int64  // Unix nanoseconds chosen by the proposer; strictly greater than the previous block's
	PrevHash Hash   // hash of the block at Height-1; for height 1, the genesis hash
	AppHash  Hash   // the application's state hash after executing the block at Height-1
	TxsHash  Hash   // Merkle root of Txs (TxsHash)
}

// Block is a header and opaque transactions. Consensus never looks inside a transaction.
type Block struct {
	Header Header
	Txs    [][]byte
}

// Hash returns the block's hash: SHA-256 over a domain tag and the canonical header encoding.
func (b *Block) Hash() Hash { return b.Header.Hash() }

// Hash returns the hash of the block this header heads.
func (h *Header) Hash() Hash {
	var buf [len(blockDomain) + headerSize]byte
	n := copy(buf[:], blockDomain)
	appendHeader(buf[n:n], h)
	return sha256.Sum256(buf[:])
}

// Certificate proves that more than 2/3 of the voting power precommitted BlockHash in Round of Height:
// the precommit signatures of the validators whose bits are set in Signers, in index order.
type Certificate struct {
	Height     uint64
	Round      int32
	BlockHash  Hash
	Signers    Bitmap
	Signatures []Signature
}

// Evidence is two conflicting messages signed by one validator for the same height, round and step: two
// votes for different blocks (one may be nil), or two different proposals. A and B hold what each
// signed; together with the chain ID and the validator's key that is enough to check both signatures
// (VerifyEvidence).
type Evidence struct {
	Validator uint16
	Height    uint64
	Round     int32
	Step      Step
	A, B      Signed
}

// Signed is what a validator signed in one message, less what the height, round and step already say.
type Signed struct {
	BlockHash Hash
	POLRound  int32 // proposals only; -1 in votes
	Signature Signature
}

// TxsHash is the Merkle root (RFC 6962 shape) of a block's transactions: leaves are SHA-256(0x00 || tx),
// inner nodes SHA-256(0x01 || left || right), the tree split at the largest power of two below the count;
// no transactions hash to SHA-256 of nothing. It lets a later light client prove one transaction.
func TxsHash(txs [][]byte) Hash {
	if len(txs) == 0 {
		return sha256.Sum256(nil)
	}
	return merkle(txs)
}

func merkle(txs [][]byte) Hash {
	if len(txs) == 1 {
		h := sha256.New()
		h.Write([]byte{0})
		h.Write(txs[0])
		var out Hash
		h.Sum(out[:0])
		return out
	}
	k := 1
	for k*2 < len(txs) {
		k *= 2
	}
	l, r := merkle(txs[:k]), merkle(txs[k:])
	var buf [65]byte
	buf[0] = 1
	copy(buf[1:], l[:])
	copy(buf[33:], r[:])
	return sha256.Sum256(buf[:])
}

// Bitmap is a set of validator indices, one bit each, least significant bit first in each byte.
type Bitmap []byte

// NewBitmap returns an empty bitmap for n validators.
func NewBitmap(n int) Bitmap { return make(Bitmap, (n+7)/8) }

// Has reports whether i is in the set.
func (b Bitmap) Has(i int) bool { return i >= 0 && i/8 < len(b) && b[i/8]&(1<<(i%8)) != 0 }

// Set adds i to the set.
func (b Bitmap) Set(i int) { b[i/8] |= 1 << (i % 8) }

// Count returns the number of indices in the set.
func (b Bitmap) Count() int {
	n := 0
	for _, x := range b {
		for ; x != 0; x &= x - 1 {
			n++
		}
	}
	return n
}

func (b Bitmap) clear() {
	for i := range b {
		b[i] = 0
	}
}
