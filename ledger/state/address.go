package state

import (
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Address is an account: the raw 32-byte Ed25519 public key of its owner. The same key is the owner's libp2p
// peer ID, and that is the form people see (String, ParseAddress, JSON).
type Address [32]byte

// ErrAddress is returned (wrapped) for a string that is not an Ed25519 peer ID.
var ErrAddress = errors.New("state: invalid address")

// String returns the address as a libp2p peer ID ("12D3KooW...").
func (a Address) String() string {
	pub, err := crypto.UnmarshalEd25519PublicKey(a[:])
	if err != nil { // cannot happen: any 32 bytes unmarshal
		return "ed25519:" + hex.EncodeToString(a[:])
	}
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		return "ed25519:" + hex.EncodeToString(a[:])
	}
	return id.String()
}

// ParseAddress parses a libp2p peer ID string. Only Ed25519 peer IDs (whose ID embeds the key) are
// addresses; RSA, secp256k1 and ECDSA IDs are refused.
func ParseAddress(s string) (Address, error) {
	id, err := peer.Decode(s)
	if err != nil {
		return Address{}, fmt.Errorf("%w: %q is not a peer ID: %v", ErrAddress, s, err)
	}
	return AddressOf(id)
}

// AddressOf returns the address of peer id, which must be an Ed25519 peer ID.
func AddressOf(id peer.ID) (Address, error) {
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return Address{}, fmt.Errorf("%w: peer ID %s does not embed its key (only Ed25519 peer IDs are addresses): %v", ErrAddress, id, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return Address{}, fmt.Errorf("%w: peer ID %s has a %s key, only Ed25519 keys are addresses", ErrAddress, id, pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != len(Address{}) {
		return Address{}, fmt.Errorf("%w: peer ID %s: malformed Ed25519 key", ErrAddress, id)
	}
	return Address(raw), nil
}

// AddressFromKey returns the address of an Ed25519 private key's owner.
func AddressFromKey(key ed25519.PrivateKey) Address {
	return Address(key.Public().(ed25519.PublicKey))
}

// KeyFromLibp2p returns the crypto/ed25519 form of a libp2p Ed25519 private key (a node's key), to sign
// transactions with.
func KeyFromLibp2p(k crypto.PrivKey) (ed25519.PrivateKey, error) {
	if k.Type() != crypto.Ed25519 {
		return nil, fmt.Errorf("state: a %s key cannot sign transactions, only Ed25519", k.Type())
	}
	raw, err := k.Raw()
	if err != nil {
		return nil, fmt.Errorf("state: key: %w", err)
	}
	if len(raw) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("state: Ed25519 key of %d bytes, want %d", len(raw), ed25519.PrivateKeySize)
	}
	return ed25519.PrivateKey(raw), nil
}

// MarshalText encodes the address as its peer ID.
func (a Address) MarshalText() ([]byte, error) { return []byte(a.String()), nil }

// UnmarshalText parses a peer ID (ParseAddress).
func (a *Address) UnmarshalText(b []byte) error {
	v, err := ParseAddress(string(b))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// Hash is a transaction hash: SHA-256 of the transaction's bytes.
type Hash [32]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	if len(s) != 2*len(h) {
		return h, fmt.Errorf("state: hash %q: want %d hex digits, got %d", s, 2*len(h), len(s))
	}
	if _, err := hex.Decode(h[:], []byte(s)); err != nil {
		return h, fmt.Errorf("state: hash %q: %v", s, err)
	}
	return h, nil
}

// MarshalText encodes the hash in hex.
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText parses 64 hex digits.
func (h *Hash) UnmarshalText(b []byte) error {
	v, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// Amount is a quantity of the ledger's unit in JSON: written as a decimal string so that every uint64 survives
// JSON readers that keep numbers as float64; read from a decimal string or a JSON integer, parsed exactly
// (never through a float).
type Amount uint64

// MarshalJSON writes the amount as a quoted decimal string.
func (a Amount) MarshalJSON() ([]byte, error) {
	return strconv.AppendQuote(nil, strconv.FormatUint(uint64(a), 10)), nil
}

// UnmarshalJSON reads "123" or 123. Fractions, exponents, signs and values over 2^64-1 are refused.
func (a *Amount) UnmarshalJSON(b []byte) error {
	s := string(b)
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		s = s[1 : len(s)-1]
	}
	if s == "" || s[0] == '+' {
		return fmt.Errorf("state: amount %s: want a decimal integer in 0..%d", b, uint64(1<<64-1))
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return fmt.Errorf("state: amount %s: want a decimal integer in 0..%d", b, uint64(1<<64-1))
	}
	*a = Amount(v)
	return nil
}
