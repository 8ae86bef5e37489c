package state

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"math/bits"
	"slices"
	"strconv"
	"sync/atomic"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// The wire format's constants.
const (
	// TxVersion is the first byte of every transaction body this software writes and reads.
	TxVersion = 1
	// SigningDomain prefixes the signed bytes, so a transaction signature can never be taken for a
	// signature over anything else the same key signs (announcements, consensus votes, bids).
	SigningDomain = "shoulders/tx/v1\n"
	// SignatureSize is the length of the Ed25519 signature that ends every transaction.
	SignatureSize = ed25519.SignatureSize
	// MaxTxBytes is the decoder's absolute limit; a chain's Params.MaxTxBytes is at most this.
	MaxTxBytes = 64 << 10

	// headerSize is the body's fixed part after the chain ID: sender, nonce, fee, kind.
	headerSize = 32 + 8 + 8 + 2
	// MinTxBytes is the size of the smallest well-formed transaction (one-byte chain ID, empty payload).
	MinTxBytes = 1 + 1 + 1 + headerSize + SignatureSize
)

// Kind names what a transaction does. Its number is part of the wire format.
type Kind uint16

// The kinds. Datanet kinds are in datanet.go; later issues add model, job and settlement kinds with the next
// numbers.
const (
	KindTransfer Kind = 1
)

// kindSpec is what the codec and the application know about one kind. Adding a kind means: a Payload type
// with its encoding, an entry here, and a case in App.apply.
type kindSpec struct {
	name   string
	decode func(b []byte) (Payload, error) // must consume all of b
}

var kinds = map[Kind]kindSpec{
	KindTransfer:          {name: "transfer", decode: decodeTransfer},
	KindDatanetCreate:     {name: "datanet_create", decode: decodeDatanetCreate},
	KindDatanetContribute: {name: "datanet_contribute", decode: decodeDatanetContribute},
	KindDatanetApprove:    {name: "datanet_approve", decode: decodeDatanetApprove},
	KindDatanetReject:     {name: "datanet_reject", decode: decodeDatanetReject},
}

// String returns the kind's name ("transfer"), or "kind(N)" for one this software does not know.
func (k Kind) String() string {
	if s, ok := kinds[k]; ok {
		return s.name
	}
	return "kind(" + strconv.Itoa(int(k)) + ")"
}

// Payload is the part of a transaction body that depends on its kind. The concrete types are *Transfer,
// *DatanetCreate, *DatanetContribute, *DatanetApprove and *DatanetReject; switch on them.
type Payload interface {
	Kind() Kind
	// spend is what the payload takes from the sender's balance besides the fee.
	spend() uint64
	// appendTo appends the payload's canonical encoding.
	appendTo(dst []byte) []byte
}

// Transfer moves Amount from the sender to To.
type Transfer struct {
	To     Address
	Amount uint64 // positive
}

// Kind returns KindTransfer.
func (*Transfer) Kind() Kind { return KindTransfer }

func (p *Transfer) spend() uint64 { return p.Amount }

func (p *Transfer) appendTo(dst []byte) []byte {
	dst = append(dst, p.To[:]...)
	return binary.BigEndian.AppendUint64(dst, p.Amount)
}

func decodeTransfer(b []byte) (Payload, error) {
	if len(b) != 32+8 {
		return nil, refuse(CodeMalformed, "transfer payload of %d bytes, want 40 (to, amount)", len(b))
	}
	p := &Transfer{Amount: binary.BigEndian.Uint64(b[32:])}
	copy(p.To[:], b)
	if p.Amount == 0 {
		return nil, refuse(CodeMalformed, "transfer.amount is 0, want a positive amount")
	}
	return p, nil
}

// Body is what a transaction's author signs.
type Body struct {
	ChainID string  // the chain it is valid on (1..consensus.MaxChainIDLen bytes)
	Sender  Address // the author: pays the fee and whatever the payload spends
	Nonce   uint64  // the sender's transaction count before this one: 0, 1, 2, ...
	Fee     uint64  // paid to the block's proposer
	Payload Payload
}

// Kind returns the payload's kind.
func (b *Body) Kind() Kind { return b.Payload.Kind() }

// Cost is what the transaction takes from its sender's balance: the fee plus what the payload spends. It
// fails with CodeInsufficientFunds when that sum does not fit in a uint64 (no balance can pay it).
func (b *Body) Cost() (uint64, error) {
	s := b.Payload.spend()
	c, carry := bits.Add64(b.Fee, s, 0)
	if carry != 0 {
		return 0, refuse(CodeInsufficientFunds, "fee %d + %s %d overflows", b.Fee, b.Kind(), s)
	}
	return c, nil
}

// appendTo appends the body's canonical encoding (see the package doc for the layout).
func (b *Body) appendTo(dst []byte) []byte {
	dst = append(dst, TxVersion, byte(len(b.ChainID)))
	dst = append(dst, b.ChainID...)
	dst = append(dst, b.Sender[:]...)
	dst = binary.BigEndian.AppendUint64(dst, b.Nonce)
	dst = binary.BigEndian.AppendUint64(dst, b.Fee)
	dst = binary.BigEndian.AppendUint16(dst, uint16(b.Payload.Kind()))
	return b.Payload.appendTo(dst)
}

// Tx is a decoded transaction: its body, and its bytes exactly as received. A Tx is immutable once decoded
// (the Body fields are read-only) and safe to share between goroutines.
type Tx struct {
	Body
	buf      []byte // SigningDomain || body || signature; the wire bytes are buf[len(SigningDomain):]
	hash     Hash
	verified atomic.Bool // the signature has been checked and is valid
}

// Bytes returns the transaction's wire bytes. The caller must not modify them.
func (t *Tx) Bytes() []byte { return t.buf[len(SigningDomain):] }

// Size returns the length of the wire bytes.
func (t *Tx) Size() int { return len(t.buf) - len(SigningDomain) }

// Hash returns SHA-256 of the wire bytes: the transaction's identity in the mempool, blocks and the index.
func (t *Tx) Hash() Hash { return t.hash }

// signBytes returns what the signature covers: SigningDomain followed by the body bytes as received.
func (t *Tx) signBytes() []byte { return t.buf[:len(t.buf)-SignatureSize] }

func (t *Tx) signature() []byte { return t.buf[len(t.buf)-SignatureSize:] }

// HashTx returns the hash of a transaction's wire bytes (the same as (*Tx).Hash after decoding).
func HashTx(raw []byte) Hash { return sha256.Sum256(raw) }

// DecodeTx decodes a transaction's wire bytes. It checks structure only (lengths, version, chain ID length,
// a known kind, the payload's layout and ranges), never the signature, the chain or the state: Verify and the
// application do that. It accepts exactly the bytes Sign produces for some body and signature, so one
// transaction has one encoding and one hash. Errors are *Error with CodeMalformed, CodeOversized (over
// MaxTxBytes) or CodeUnknownKind, naming the field at fault. The Tx does not alias raw.
func DecodeTx(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxBytes {
		return nil, refuse(CodeOversized, "%d bytes, the decoder's limit is %d", len(raw), MaxTxBytes)
	}
	if len(raw) < MinTxBytes {
		return nil, refuse(CodeMalformed, "%d bytes, the smallest transaction has %d", len(raw), MinTxBytes)
	}
	body := raw[:len(raw)-SignatureSize]
	if body[0] != TxVersion {
		return nil, refuse(CodeMalformed, "version %d, this software reads version %d", body[0], TxVersion)
	}
	n := int(body[1])
	if n == 0 || n > consensus.MaxChainIDLen {
		return nil, refuse(CodeMalformed, "chain_id of %d bytes, want 1..%d", n, consensus.MaxChainIDLen)
	}
	if len(body) < 2+n+headerSize {
		return nil, refuse(CodeMalformed, "body of %d bytes ends inside its header (chain_id of %d bytes, then %d bytes of sender, nonce, fee, kind)",
			len(body), n, headerSize)
	}
	t := &Tx{buf: make([]byte, len(SigningDomain)+len(raw))}
	copy(t.buf, SigningDomain)
	copy(t.buf[len(SigningDomain):], raw)
	b := t.buf[len(SigningDomain) : len(t.buf)-SignatureSize] // our copy of body
	t.ChainID = string(b[2 : 2+n])
	h := b[2+n:]
	copy(t.Sender[:], h)
	t.Nonce = binary.BigEndian.Uint64(h[32:])
	t.Fee = binary.BigEndian.Uint64(h[40:])
	kind := Kind(binary.BigEndian.Uint16(h[48:]))
	spec, ok := kinds[kind]
	if !ok {
		return nil, refuse(CodeUnknownKind, "kind %d is not one this software knows (%s)", uint16(kind), knownKinds())
	}
	p, err := spec.decode(h[headerSize:])
	if err != nil {
		return nil, err
	}
	t.Payload = p
	t.hash = sha256.Sum256(t.Bytes())
	return t, nil
}

func knownKinds() string {
	ks := make([]Kind, 0, len(kinds))
	for k := range kinds {
		ks = append(ks, k)
	}
	slices.Sort(ks)
	s := "known:"
	for _, k := range ks {
		s += " " + kinds[k].name + "=" + strconv.Itoa(int(k))
	}
	return s
}

// Sign builds the wire bytes of a transaction from key's owner: the body (chain ID, the key's address as
// sender, nonce, fee, payload) and the Ed25519 signature over SigningDomain and the body. It refuses what
// DecodeTx would refuse, so whatever it returns decodes.
func Sign(key ed25519.PrivateKey, chainID string, nonce, fee uint64, p Payload) ([]byte, error) {
	if len(key) != ed25519.PrivateKeySize {
		return nil, fmt.Errorf("state: signing key of %d bytes, want %d", len(key), ed25519.PrivateKeySize)
	}
	if p == nil {
		return nil, refuse(CodeMalformed, "no payload")
	}
	if _, ok := kinds[p.Kind()]; !ok {
		return nil, refuse(CodeUnknownKind, "kind %d is not one this software knows (%s)", uint16(p.Kind()), knownKinds())
	}
	if len(chainID) == 0 || len(chainID) > consensus.MaxChainIDLen {
		return nil, refuse(CodeMalformed, "chain_id of %d bytes, want 1..%d", len(chainID), consensus.MaxChainIDLen)
	}
	body := Body{ChainID: chainID, Sender: AddressFromKey(key), Nonce: nonce, Fee: fee, Payload: p}
	msg := body.appendTo([]byte(SigningDomain))
	raw := append(msg[len(SigningDomain):len(msg):len(msg)], ed25519.Sign(key, msg)...)
	if _, err := DecodeTx(raw); err != nil {
		return nil, err
	}
	return raw, nil
}

// SignTransfer builds a signed transfer of amount to to.
func SignTransfer(key ed25519.PrivateKey, chainID string, nonce, fee uint64, to Address, amount uint64) ([]byte, error) {
	return Sign(key, chainID, nonce, fee, &Transfer{To: to, Amount: amount})
}
