package state

import (
	"bytes"
	"testing"
)

// FuzzDecodeTx checks that the decoder never panics, never accepts more than MaxTxBytes, and accepts only
// canonical bytes: whatever it accepts, re-encoding the decoded body and appending the signature gives back
// exactly the input (so one transaction has one hash). The seed corpus is in testdata/fuzz/FuzzDecodeTx.
func FuzzDecodeTx(f *testing.F) {
	good, _ := SignTransfer(testKey(1), testChain, 3, 2, AddressFromKey(testKey(2)), 77)
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, raw []byte) {
		tx, err := DecodeTx(raw)
		if err != nil {
			if _, ok := CodeOf(err); !ok {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if len(raw) > MaxTxBytes {
			t.Fatalf("accepted %d bytes", len(raw))
		}
		again := tx.Body.appendTo(nil)
		again = append(again, tx.signature()...)
		if !bytes.Equal(again, raw) || !bytes.Equal(tx.Bytes(), raw) || tx.Hash() != HashTx(raw) {
			t.Fatalf("not canonical:\n in  %x\n out %x", raw, again)
		}
		if _, err := tx.Cost(); err != nil && tx.Fee == 0 {
			t.Fatalf("cost of a tx without fee overflows: %v", err)
		}
		_ = tx.View()
		_ = tx.Verify() // must not panic on any key or signature bytes
		_ = VerifyBatch([]*Tx{tx, tx, tx})
	})
}
