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
	rec := func(w string) RecordRef {
		c, size := recordArg(f, w)
		return RecordRef{CID: c, Size: size}
	}
	for _, p := range []Payload{
		&DatanetCreate{Name: "poems", RecordType: RecordText, Description: "short poems", License: "CC-BY-4.0", Tags: []string{"text", "en"}},
		&DatanetContribute{Datanet: "poems", Records: []RecordRef{rec("a"), rec("big*2097152")}},
		&DatanetApprove{Datanet: "poems", CIDs: [][]byte{rec("a").CID}},
		&DatanetReject{Datanet: "poems", CIDs: [][]byte{rec("a").CID, rec("b").CID}},
	} {
		raw, err := Sign(testKey(1), testChain, 0, 1, p)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(raw)
	}
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
