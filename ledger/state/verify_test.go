package state

import (
	"bufio"
	"encoding/hex"
	"math/rand/v2"
	"os"
	"strings"
	"testing"

	"github.com/hdevalence/ed25519consensus"
)

// TestBatchZIP215 checks that the batch equation accepts the ZIP-215 edge cases (small-order keys and Rs,
// non-canonical encodings) that single verification accepts: a transaction that one validator verifies in a
// batch and another alone must get the same answer.
func TestBatchZIP215(t *testing.T) {
	f, err := os.Open("testdata/zip215.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var items []sigItem
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") {
			continue
		}
		k, s, _ := strings.Cut(line, " ")
		kb, err1 := hex.DecodeString(k)
		sb, err2 := hex.DecodeString(s)
		if err1 != nil || err2 != nil || len(kb) != 32 || len(sb) != 64 {
			t.Fatalf("bad vector %q", line)
		}
		key := Address(kb)
		if !ed25519consensus.Verify(kb, []byte("Zcash"), sb) {
			t.Fatalf("vector %s does not verify alone", line)
		}
		items = append(items, sigItem{key: &key, msg: []byte("Zcash"), sig: sb})
	}
	if len(items) != 196 {
		t.Fatalf("%d vectors", len(items))
	}
	if !batchVerify(items) {
		t.Fatal("the batch of all ZIP-215 vectors fails")
	}
	for i := range items {
		if !batchVerify(items[i : i+1]) {
			t.Fatalf("vector %d fails as a batch of one", i)
		}
	}
	// One bad item spoils the batch. (Changing the message would not do: with small-order keys and Rs and
	// s = 0, these signatures are valid for every message.)
	bad := append([]sigItem(nil), items...)
	bad[17].sig = append([]byte(nil), bad[17].sig...)
	bad[17].sig[32] ^= 1
	if batchVerify(bad) || ed25519consensus.Verify(bad[17].key[:], bad[17].msg, bad[17].sig) {
		t.Fatal("a batch with a wrong s verifies")
	}
}

// TestVerifyBatchMatchesSingle checks, over random mixes of good and bad signatures from few and many
// senders, that VerifyBatch gives every transaction exactly the answer ed25519consensus.Verify gives it.
func TestVerifyBatchMatchesSingle(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	var pool [][]byte
	for i := range 64 {
		raw, err := SignTransfer(testKey(i%5), testChain, uint64(i), 1, AddressFromKey(testKey(9)), uint64(i+1))
		if err != nil {
			t.Fatal(err)
		}
		pool = append(pool, raw)
	}
	for round := range 60 {
		n := 1 + rng.IntN(40)
		txs := make([]*Tx, n)
		want := make([]bool, n)
		for i := range txs {
			raw := append([]byte(nil), pool[rng.IntN(len(pool))]...)
			switch rng.IntN(6) {
			case 0: // flip a bit of the signature or the body
				raw[rng.IntN(len(raw))] ^= 1 << rng.IntN(8)
			case 1: // non-canonical s: s + L
				addL(raw[len(raw)-32:])
			case 2: // a sender that is not a curve point (about half of all y values are not)
				copy(raw[2+len(testChain):], notAPoint)
			}
			tx, err := DecodeTx(raw)
			if err != nil { // a flipped bit in a length, version or kind
				tx = mustTransfer(t, testKey(1), 0, 1, Address{}, 1)
				raw = tx.Bytes()
			}
			txs[i] = tx
			want[i] = ed25519consensus.Verify(tx.Sender[:], tx.signBytes(), tx.signature())
		}
		errs := VerifyBatch(txs)
		for i := range txs {
			if (errs[i] == nil) != want[i] || txs[i].Verified() != want[i] {
				t.Fatalf("round %d tx %d: VerifyBatch says %v, Verify says valid=%v", round, i, errs[i], want[i])
			}
		}
	}
}

// notAPoint is a y coordinate with no x on the curve.
var notAPoint = func() []byte {
	b, _ := hex.DecodeString("0200000000000000000000000000000000000000000000000000000000000000")
	return b
}()

// addL adds the group order L to the little-endian scalar s in place.
func addL(s []byte) {
	l, _ := hex.DecodeString("edd3f55c1a631258d69cf7a2def9de1400000000000000000000000000000010")
	carry := 0
	for i := range s {
		v := int(s[i]) + int(l[i]) + carry
		s[i], carry = byte(v), v>>8
	}
}

func TestVerifyBatchSkipsVerified(t *testing.T) {
	good := mustTransfer(t, testKey(1), 0, 1, Address{}, 1)
	if err := good.Verify(); err != nil {
		t.Fatal(err)
	}
	if errs := VerifyBatch([]*Tx{good}); errs[0] != nil {
		t.Fatal(errs[0])
	}
	if errs := VerifyBatch(nil); len(errs) != 0 {
		t.Fatal(errs)
	}
}
