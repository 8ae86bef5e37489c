package consensus

import (
	"bytes"
	"encoding/binary"
	"errors"
	"reflect"
	"testing"
)

func sampleMessages(t testing.TB) []Message {
	keys := testKeys(4)
	b := testBlock(t, keys, 0, "pay alice 5", "", "pay bob 3")
	empty := testBlock(t, keys, 2)
	cert := &Certificate{Height: 1, Round: 0, BlockHash: b.Hash(), Signers: NewBitmap(4)}
	for _, i := range []int{0, 2, 3} {
		cert.Signers.Set(i)
		cert.Signatures = append(cert.Signatures, signedVote(keys, i, Precommit, 1, 0, b.Hash()).Signature)
	}
	return []Message{
		signedVote(keys, 1, Prevote, 1, 0, b.Hash()),
		signedVote(keys, 3, Precommit, 7, 12, Hash{}),
		signedProposal(keys, 0, b, 0, -1),
		signedProposal(keys, 2, empty, 3, 2),
		&Commit{Block: b, Certificate: cert},
	}
}

func TestCodecRoundTrip(t *testing.T) {
	for _, m := range sampleMessages(t) {
		enc := EncodeMessage(m)
		got, err := DecodeMessage(enc)
		if err != nil {
			t.Fatalf("%T: %v", m, err)
		}
		if !reflect.DeepEqual(got, m) {
			t.Fatalf("%T: decoded\n%+v\nwant\n%+v", m, got, m)
		}
		if re := EncodeMessage(got); !bytes.Equal(re, enc) {
			t.Fatalf("%T: re-encoding differs", m)
		}
		// Every strict prefix and every extension is rejected.
		for i := 0; i < len(enc); i++ {
			if _, err := DecodeMessage(enc[:i]); !errors.Is(err, ErrMalformed) {
				t.Fatalf("%T: prefix of %d/%d bytes: err %v", m, i, len(enc), err)
			}
		}
		if _, err := DecodeMessage(append(bytes.Clone(enc), 0)); !errors.Is(err, ErrMalformed) {
			t.Fatalf("%T: trailing byte accepted: %v", m, err)
		}
	}
}

func TestDecodeRejects(t *testing.T) {
	vote := EncodeMessage(sampleMessages(t)[0])
	prop := EncodeMessage(sampleMessages(t)[2])
	mut := func(b []byte, f func([]byte)) []byte { b = bytes.Clone(b); f(b); return b }
	cases := map[string][]byte{
		"unknown tag":       mut(vote, func(b []byte) { b[0] = 9 }),
		"vote type propose": mut(vote, func(b []byte) { b[1] = byte(StepPropose) }),
		"vote type 4":       mut(vote, func(b []byte) { b[1] = 4 }),
		"round over limit":  mut(vote, func(b []byte) { binary.BigEndian.PutUint32(b[10:], MaxRound+1) }),
		"pol -2":            mut(prop, func(b []byte) { binary.BigEndian.PutUint32(b[13:], 0xFFFFFFFE) }),
		"pol = round":       mut(prop, func(b []byte) { binary.BigEndian.PutUint32(b[13:], 0) }),
		// The transaction count claims more transactions than the bytes left could hold.
		"tx count": mut(prop, func(b []byte) {
			binary.BigEndian.PutUint32(b[1+8+4+4+64+headerSize:], 1<<30)
		}),
		"empty": nil,
	}
	for name, b := range cases {
		if _, err := DecodeMessage(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("%s: err %v, want ErrMalformed", name, err)
		}
	}
}

// FuzzDecode feeds arbitrary bytes to the decoder: it must never panic, and whatever it accepts must be
// canonical (encode(decode(b)) == b).
func FuzzDecode(f *testing.F) {
	for _, m := range sampleMessages(f) {
		f.Add(EncodeMessage(m))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeMessage(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v does not wrap ErrMalformed", err)
			}
			return
		}
		if re := EncodeMessage(m); !bytes.Equal(re, b) {
			t.Fatalf("accepted a non-canonical encoding:\n%x\nre-encodes as\n%x", b, re)
		}
	})
}

func TestSignStateRoundTrip(t *testing.T) {
	ss := SignState{Height: 9, Round: 3, Step: StepPrecommit, BlockHash: Hash{1}, POLRound: -1, Signature: Signature{2},
		LockedRound: 3, LockedHash: Hash{1}}
	b, _ := ss.MarshalBinary()
	var got SignState
	if err := got.UnmarshalBinary(b); err != nil || got != ss {
		t.Fatalf("got %+v, %v", got, err)
	}
	if err := got.UnmarshalBinary(b[1:]); err == nil {
		t.Fatal("short sign state accepted")
	}
}

func TestLockProofRoundTrip(t *testing.T) {
	ms := sampleMessages(t)
	c := ms[4].(*Commit)
	l := &LockProof{Block: c.Block, Prevotes: c.Certificate}
	got, err := DecodeLockProof(EncodeLockProof(l))
	if err != nil || !reflect.DeepEqual(got, l) {
		t.Fatalf("got %+v, %v", got, err)
	}
}
