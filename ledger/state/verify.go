package state

import (
	"bytes"
	"crypto/rand"
	"crypto/sha512"
	"slices"

	"filippo.io/edwards25519"
	"github.com/hdevalence/ed25519consensus"
)

// Signatures are checked under the ZIP-215 rules (github.com/hdevalence/ed25519consensus), as in
// ledger/consensus: one set of valid signatures for single and batch verification alike, so two validators
// that check the same transaction differently (one in a batch, one alone) always agree.

// Verify checks the transaction's signature. It returns nil or an *Error with CodeBadSignature. A Tx
// remembers a successful check, so verifying it again (the mempool, then the block) costs nothing.
func (t *Tx) Verify() error {
	if t.verified.Load() {
		return nil
	}
	if !ed25519consensus.Verify(t.Sender[:], t.signBytes(), t.signature()) {
		return badSignature(t)
	}
	t.verified.Store(true)
	return nil
}

// Verified reports whether the signature has been checked and found valid.
func (t *Tx) Verified() bool { return t.verified.Load() }

func badSignature(t *Tx) *Error {
	return refuse(CodeBadSignature, "signature does not verify under the sender's key %s", t.Sender)
}

// VerifyBatch checks the signatures of txs and returns one result per transaction (nil or an *Error with
// CodeBadSignature), in order. Transactions already verified are skipped. The rest are sorted by sender and
// checked in batches of up to batchSize, each with one multiscalar multiplication (see batchVerify): per signature, about half the cost of Verify when
// every sender differs, a quarter or less when few senders sign many. Only when a batch fails does it split it in halves, recursively, to find the
// bad ones: one bad signature costs about three batches (n, then n/2 + n/2, n/4 + n/4, ...).
func VerifyBatch(txs []*Tx) []error {
	errs := make([]error, len(txs))
	todo := make([]*Tx, 0, len(txs))
	for _, t := range txs {
		if !t.verified.Load() {
			todo = append(todo, t)
		}
	}
	if len(todo) > batchSize {
		// Chunks of one sender's signatures share the most work.
		slices.SortStableFunc(todo, func(a, b *Tx) int { return bytes.Compare(a.Sender[:], b.Sender[:]) })
	}
	for len(todo) > 0 {
		n := min(len(todo), batchSize)
		verifySplit(todo[:n])
		todo = todo[n:]
	}
	for i, t := range txs {
		if !t.verified.Load() {
			errs[i] = badSignature(t)
		}
	}
	return errs
}

// batchSize is the most signatures checked in one batch. The cost per signature falls steeply up to about 64
// and is flat beyond (batches of 128 and of 1,024 cost the same per signature on the development machine),
// so larger batches buy nothing, while smaller ones bound what a bad signature costs: the split below works
// within one batch.
const batchSize = 128

// verifySplit marks the valid signatures among txs as verified.
func verifySplit(txs []*Tx) {
	if len(txs) <= 2 {
		for _, t := range txs {
			_ = t.Verify()
		}
		return
	}
	items := make([]sigItem, len(txs))
	for i, t := range txs {
		items[i] = sigItem{key: &t.Sender, msg: t.signBytes(), sig: t.signature()}
	}
	if batchVerify(items) {
		for _, t := range txs {
			t.verified.Store(true)
		}
		return
	}
	verifySplit(txs[:len(txs)/2])
	verifySplit(txs[len(txs)/2:])
}

// sigItem is one signature to check: key's signature sig over msg.
type sigItem struct {
	key      *Address
	msg, sig []byte
}

// batchVerify reports whether every signature of items is valid under ZIP-215. It checks the batch equation
//
//	[8]( -(Σ zᵢsᵢ)·B + Σ zᵢ·Rᵢ + Σ_A (Σ_{i signed by A} zᵢkᵢ)·A ) = 0
//
// with independent random 128-bit zᵢ, which holds for every choice of zᵢ when each signature's cofactored
// equation [8](sᵢB - Rᵢ - kᵢAᵢ) = 0 holds (what ed25519consensus.Verify checks), and fails with probability
// 1 - 2⁻¹²⁸ otherwise. It is ed25519consensus's batch equation with one change: signatures by the same key
// share one term for that key, so a batch with few distinct senders decompresses each key once and does
// about half the point additions. A key or R that is not a curve point, or an s that is not canonical,
// fails the batch (and then Verify refuses that transaction alone).
func batchVerify(items []sigItem) bool {
	n := len(items)
	zs := make([]byte, 16*n)
	if _, err := rand.Read(zs); err != nil {
		return false // never happens (crypto/rand does not fail); refusing is the safe answer
	}
	// Points and scalars: [0] the base point, [1..n] the Rs, then one per distinct key.
	points := make([]edwards25519.Point, 1, 1+2*n)
	scalars := make([]edwards25519.Scalar, 1, 1+2*n)
	points = points[:1+n]
	scalars = scalars[:1+n]
	points[0].Set(edwards25519.NewGeneratorPoint())
	keyIndex := make(map[Address]int, n)
	var (
		buf    [32]byte
		digest [64]byte
		s, k   edwards25519.Scalar
		zk     edwards25519.Scalar
	)
	h := sha512.New()
	for i, it := range items {
		sig := it.sig
		if len(sig) != SignatureSize {
			return false
		}
		if _, err := points[1+i].SetBytes(sig[:32]); err != nil {
			return false
		}
		if _, err := s.SetCanonicalBytes(sig[32:]); err != nil {
			return false
		}
		copy(buf[:16], zs[16*i:])
		z := &scalars[1+i]
		if _, err := z.SetCanonicalBytes(buf[:]); err != nil {
			return false
		}
		scalars[0].MultiplyAdd(z, &s, &scalars[0])

		h.Reset()
		h.Write(sig[:32])
		h.Write(it.key[:])
		h.Write(it.msg)
		h.Sum(digest[:0])
		if _, err := k.SetUniformBytes(digest[:]); err != nil {
			return false
		}
		zk.Multiply(z, &k)
		j, ok := keyIndex[*it.key]
		if !ok {
			j = len(points)
			keyIndex[*it.key] = j
			points = append(points, edwards25519.Point{})
			scalars = append(scalars, edwards25519.Scalar{})
			if _, err := points[j].SetBytes(it.key[:]); err != nil {
				return false
			}
		}
		scalars[j].Add(&scalars[j], &zk)
	}
	scalars[0].Negate(&scalars[0])
	pp := make([]*edwards25519.Point, len(points))
	sp := make([]*edwards25519.Scalar, len(points))
	for i := range points {
		pp[i], sp[i] = &points[i], &scalars[i]
	}
	check := new(edwards25519.Point).VarTimeMultiScalarMult(sp, pp)
	check.MultByCofactor(check)
	return check.Equal(edwards25519.NewIdentityPoint()) == 1
}
