package state

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"errors"
	"strings"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

func TestSignDecodeRoundTrip(t *testing.T) {
	key, to := testKey(1), AddressFromKey(testKey(2))
	raw, err := SignTransfer(key, testChain, 7, 3, to, 1_000_000)
	if err != nil {
		t.Fatal(err)
	}
	tx, err := DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(tx.Bytes(), raw) || tx.Size() != len(raw) {
		t.Fatalf("Bytes() differs from the wire bytes")
	}
	if tx.Hash() != Hash(sha256.Sum256(raw)) || tx.Hash() != HashTx(raw) {
		t.Fatalf("hash is not SHA-256 of the wire bytes")
	}
	p, ok := tx.Payload.(*Transfer)
	if !ok || tx.ChainID != testChain || tx.Sender != AddressFromKey(key) || tx.Nonce != 7 || tx.Fee != 3 ||
		p.To != to || p.Amount != 1_000_000 || tx.Kind() != KindTransfer {
		t.Fatalf("decoded %+v %+v", tx.Body, p)
	}
	if cost, err := tx.Cost(); err != nil || cost != 1_000_003 {
		t.Fatalf("cost %d %v", cost, err)
	}
	raw[0] ^= 0xff // the Tx must not alias its input
	if tx.Bytes()[0] == raw[0] {
		t.Fatal("Tx aliases the bytes it was decoded from")
	}
	raw[0] ^= 0xff
	if tx.Verified() {
		t.Fatal("a freshly decoded tx claims to be verified")
	}
	if err := tx.Verify(); err != nil || !tx.Verified() {
		t.Fatalf("Verify: %v", err)
	}
	// The layout the package doc promises.
	want := []byte{TxVersion, byte(len(testChain))}
	want = append(want, testChain...)
	want = append(want, tx.Sender[:]...)
	want = binary.BigEndian.AppendUint64(want, 7)
	want = binary.BigEndian.AppendUint64(want, 3)
	want = binary.BigEndian.AppendUint16(want, uint16(KindTransfer))
	want = append(want, to[:]...)
	want = binary.BigEndian.AppendUint64(want, 1_000_000)
	if !bytes.Equal(raw[:len(raw)-SignatureSize], want) {
		t.Fatalf("body layout\n got %x\nwant %x", raw[:len(raw)-SignatureSize], want)
	}
	if !ed25519.Verify(ed25519.PublicKey(tx.Sender[:]), append([]byte(SigningDomain), want...), raw[len(want):]) {
		t.Fatal("the signature is not over the domain tag and the body")
	}
}

func TestSignRefuses(t *testing.T) {
	key := testKey(1)
	for name, f := range map[string]func() ([]byte, error){
		"empty chain":   func() ([]byte, error) { return SignTransfer(key, "", 0, 1, Address{}, 1) },
		"long chain":    func() ([]byte, error) { return SignTransfer(key, strings.Repeat("c", 65), 0, 1, Address{}, 1) },
		"zero amount":   func() ([]byte, error) { return SignTransfer(key, testChain, 0, 1, Address{}, 0) },
		"nil payload":   func() ([]byte, error) { return Sign(key, testChain, 0, 1, nil) },
		"short key":     func() ([]byte, error) { return SignTransfer(key[:32], testChain, 0, 1, Address{}, 1) },
		"unknown kind":  func() ([]byte, error) { return Sign(key, testChain, 0, 1, fakePayload{}) },
		"amount+fee>64": func() ([]byte, error) { return SignTransfer(key, testChain, 0, 2, Address{}, 1<<64-1) },
	} {
		raw, err := f()
		if name == "amount+fee>64" {
			// Signing is fine (the bytes are well formed); the cost cannot be paid by anyone.
			tx, derr := DecodeTx(raw)
			if err != nil || derr != nil {
				t.Fatalf("%s: %v %v", name, err, derr)
			}
			if _, err := tx.Cost(); !errors.Is(err, ErrInsufficientFunds) || !strings.Contains(err.Error(), "overflows") {
				t.Fatalf("%s: Cost() = %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: signed", name)
		}
	}
}

type fakePayload struct{}

func (fakePayload) Kind() Kind                 { return 99 }
func (fakePayload) spend() uint64              { return 0 }
func (fakePayload) appendTo(dst []byte) []byte { return dst }

// TestDecodeRefuses checks that each structural fault is refused with its code and a reason naming it.
func TestDecodeRefuses(t *testing.T) {
	good, err := SignTransfer(testKey(1), testChain, 0, 1, AddressFromKey(testKey(2)), 5)
	if err != nil {
		t.Fatal(err)
	}
	body := func(raw []byte) []byte { return raw[:len(raw)-SignatureSize] }
	withBody := func(b []byte) []byte { return append(append([]byte(nil), b...), make([]byte, SignatureSize)...) }
	mutate := func(f func(b []byte) []byte) []byte { return withBody(f(append([]byte(nil), body(good)...))) }
	kindOff := 2 + len(testChain) + 48
	for _, c := range []struct {
		name string
		raw  []byte
		code Code
		want string
	}{
		{"empty", nil, CodeMalformed, "0 bytes"},
		{"short", good[:MinTxBytes-1], CodeMalformed, "smallest transaction"},
		{"huge", make([]byte, MaxTxBytes+1), CodeOversized, "limit is 65536"},
		{"version", mutate(func(b []byte) []byte { b[0] = 2; return b }), CodeMalformed, "version 2"},
		{"chain id 0", mutate(func(b []byte) []byte { b[1] = 0; return b }), CodeMalformed, "chain_id of 0 bytes"},
		{"chain id 65", mutate(func(b []byte) []byte { b[1] = 65; return b }), CodeMalformed, "chain_id of 65 bytes"},
		{"chain id beyond", mutate(func(b []byte) []byte { b[1] = 64; return b[:80] }), CodeMalformed, "ends inside its header"},
		{"unknown kind", mutate(func(b []byte) []byte { b[kindOff+1] = 42; return b }), CodeUnknownKind, "kind 42"},
		{"kind 0", mutate(func(b []byte) []byte { b[kindOff+1] = 0; return b }), CodeUnknownKind, "kind 0"},
		{"short transfer", mutate(func(b []byte) []byte { return b[:len(b)-1] }), CodeMalformed, "transfer payload of 39 bytes"},
		{"trailing", mutate(func(b []byte) []byte { return append(b, 0) }), CodeMalformed, "transfer payload of 41 bytes"},
		{"zero amount", mutate(func(b []byte) []byte { clear(b[len(b)-8:]); return b }), CodeMalformed, "transfer.amount is 0"},
	} {
		_, err := DecodeTx(c.raw)
		code, ok := CodeOf(err)
		if err == nil || !ok || code != c.code || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: got %v (code %v), want code %v and %q", c.name, err, code, c.code, c.want)
		}
	}
	if _, err := DecodeTx(good); err != nil {
		t.Fatalf("the untouched transaction: %v", err)
	}
}

func TestVerifyRefusesTampering(t *testing.T) {
	key := testKey(1)
	good, _ := SignTransfer(key, testChain, 0, 1, AddressFromKey(testKey(2)), 5)
	mustDecode := func(raw []byte) *Tx {
		tx, err := DecodeTx(raw)
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}
	flip := func(i int) []byte {
		b := append([]byte(nil), good...)
		b[i] ^= 1
		return b
	}
	// Another chain's signature over the same body without the domain tag.
	noDomain := append([]byte(nil), good[:len(good)-SignatureSize]...)
	noDomain = append(noDomain, ed25519.Sign(key, noDomain)...)
	cases := map[string][]byte{
		"amount":            flip(len(good) - SignatureSize - 1),
		"nonce":             flip(2 + len(testChain) + 32 + 7),
		"signature":         flip(len(good) - 1),
		"signature R":       flip(len(good) - SignatureSize),
		"without domain":    noDomain,
		"signed by another": append(append([]byte(nil), good[:len(good)-SignatureSize]...), ed25519.Sign(testKey(3), append([]byte(SigningDomain), good[:len(good)-SignatureSize]...))...),
	}
	for name, raw := range cases {
		tx := mustDecode(raw)
		if err := tx.Verify(); !errors.Is(err, ErrBadSignature) || !strings.Contains(err.Error(), tx.Sender.String()) {
			t.Errorf("%s: Verify() = %v", name, err)
		}
		if errs := VerifyBatch([]*Tx{mustDecode(good), tx, mustDecode(good)}); errs[0] != nil || errs[2] != nil || !errors.Is(errs[1], ErrBadSignature) {
			t.Errorf("%s: VerifyBatch() = %v", name, errs)
		}
	}
}

func TestAddress(t *testing.T) {
	priv, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	key, err := KeyFromLibp2p(priv)
	if err != nil {
		t.Fatal(err)
	}
	addr := AddressFromKey(key)
	if addr.String() != id.String() || !strings.HasPrefix(addr.String(), "12D3KooW") {
		t.Fatalf("address %s, peer ID %s", addr, id)
	}
	if got, err := ParseAddress(id.String()); err != nil || got != addr {
		t.Fatalf("ParseAddress(%s) = %s, %v", id, got, err)
	}
	if got, err := AddressOf(id); err != nil || got != addr {
		t.Fatalf("AddressOf = %s, %v", got, err)
	}
	// The key converted from libp2p signs transactions that verify under the peer ID's key.
	raw, _ := SignTransfer(key, testChain, 0, 1, addr, 1)
	if tx, err := DecodeTx(raw); err != nil || tx.Verify() != nil || tx.Sender != addr {
		t.Fatalf("tx from converted key: %v", err)
	}

	secp, _, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	secpID, _ := peer.IDFromPrivateKey(secp)
	if _, err := ParseAddress(secpID.String()); !errors.Is(err, ErrAddress) || !strings.Contains(err.Error(), "Secp256k1") {
		t.Errorf("secp256k1 peer ID: %v", err)
	}
	if _, err := KeyFromLibp2p(secp); err == nil {
		t.Error("KeyFromLibp2p accepted a secp256k1 key")
	}
	for _, s := range []string{"", "hello", "12D3KooW", addr.String() + "x", "QmYyQSo1c1Ym7orWxLYvCrM2EmxFTANf8wXmmE7DWjhx5N"} {
		if _, err := ParseAddress(s); !errors.Is(err, ErrAddress) {
			t.Errorf("ParseAddress(%q) = %v", s, err)
		}
	}
	var got struct{ A Address }
	if err := json.Unmarshal([]byte(`{"A":"`+id.String()+`"}`), &got); err != nil || got.A != addr {
		t.Fatalf("JSON: %v", err)
	}
}

func TestAmountJSON(t *testing.T) {
	b, _ := json.Marshal(Amount(1<<64 - 1))
	if string(b) != `"18446744073709551615"` {
		t.Fatalf("marshal: %s", b)
	}
	for in, want := range map[string]uint64{`"18446744073709551615"`: 1<<64 - 1, `0`: 0, `"12"`: 12, `9007199254740993`: 9007199254740993} {
		var a Amount
		if err := json.Unmarshal([]byte(in), &a); err != nil || uint64(a) != want {
			t.Errorf("%s: %d %v", in, a, err)
		}
	}
	for _, in := range []string{`"18446744073709551616"`, `-1`, `"-1"`, `1.5`, `1e3`, `""`, `"+1"`, `"0x10"`, `null`, `true`} {
		var a Amount
		if err := json.Unmarshal([]byte(in), &a); err == nil {
			t.Errorf("%s accepted as %d", in, a)
		}
	}
}

func TestTxView(t *testing.T) {
	tx := mustTransfer(t, testKey(1), 4, 2, AddressFromKey(testKey(2)), 1<<63)
	b, err := json.Marshal(tx.View())
	if err != nil {
		t.Fatal(err)
	}
	want := `{"hash":"` + tx.Hash().String() + `","chain_id":"` + testChain + `","sender":"` + AddressFromKey(testKey(1)).String() +
		`","nonce":4,"fee":"2","kind":"transfer","size":` + itoa(tx.Size()) + `,"to":"` + AddressFromKey(testKey(2)).String() +
		`","amount":"9223372036854775808"}`
	if string(b) != want {
		t.Fatalf("view\n got %s\nwant %s", b, want)
	}
}

func itoa(i int) string { b, _ := json.Marshal(i); return string(b) }

func TestCodes(t *testing.T) {
	for c := CodeOK; c < numCodes; c++ {
		var back Code
		if err := back.UnmarshalText([]byte(c.String())); err != nil || back != c {
			t.Errorf("code %d (%s) does not round-trip", c, c)
		}
	}
	err := refuse(CodeBadNonce, "nonce 3, want 2")
	if !errors.Is(err, ErrBadNonce) || errors.Is(err, ErrFeeTooLow) || err.Error() != "state: bad_nonce: nonce 3, want 2" {
		t.Fatalf("%v", err)
	}
	if c, ok := CodeOf(ErrStore); ok {
		t.Fatalf("CodeOf(ErrStore) = %v", c)
	}
}
