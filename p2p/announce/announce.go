// Package announce owns the announcement format: how an announcement is signed, and how bytes that arrive
// from the network are decoded and checked before anything else sees them. It is pure: no I/O, no clock (the
// caller passes the time), no goroutines, so every rule here is a plain function that tests and the fuzzer can
// drive.
//
// An announcement travels as a SignedAnnouncement (see proto/announce.proto): the serialized Announcement
// exactly as its author produced it, plus the author's Ed25519 signature over SigningDomain followed by those
// bytes. Open verifies the bytes as received and never a re-encoding, so the signature does not depend on
// how any implementation serializes protobuf.
//
// Decisions where the design is silent:
//   - The announcer must be an Ed25519 peer ID (the only key type Shoulders issues); other key types are
//     refused, which also keeps verification cost bounded.
//   - An announcement names the network it was made for and is valid there only, so nobody can replay a
//     network's announcements into another.
//   - An announcement issued more than MaxClockSkew in the future, or already expired, is reported with
//     CodeFromFuture or CodeExpired (and returned all the same) so gossip can ignore it rather than penalise
//     the peer that relayed it: whether it is too early or too late depends on each receiver's clock.
//   - A lifetime over MaxTTL is refused, so nobody can pin an entry in every catalog for days.
//   - Each kind has its own size limit under MaxSize (a worker offer needs far less than 64 KiB).
//   - Two announcements of one subject with the same seq (an author who signed two bodies, say a home
//     directory copied to two machines) are ordered by ID, the lower first, so every node keeps the same one.
//   - Signatures are verified with curve25519-voi, in about 70% of crypto/ed25519's time, under exactly
//     crypto/ed25519's rules (a differential test and a fuzzer hold the two together): every node verifies
//     every announcement it takes, on gossip's path.
//   - Unknown protobuf fields are tolerated (newer software may add fields); unknown kinds are refused.
package announce

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"google.golang.org/protobuf/proto"

	pb "github.com/shouldersnet/shoulders/proto"
)

// SigningDomain prefixes the signed bytes so an announcement signature can never be mistaken for a signature
// over anything else the same key signs (ledger transactions, bids, results).
const SigningDomain = "shoulders/announcement/v1\n"

// Limits every announcement must respect. They bound what a peer can make a node decode, verify and keep.
const (
	// MaxSize bounds a SignedAnnouncement on the wire.
	MaxSize = 64 << 10
	// MaxClockSkew is how far in the future an announcement's issue time may lie.
	MaxClockSkew = 2 * time.Minute
	// MaxTTL is the longest lifetime an announcement may claim.
	MaxTTL = time.Hour
)

// Codes classify why an announcement was refused. They are a small fixed set so they can label metrics;
// Error.Detail carries the specifics.
const (
	CodeOversized    = "oversized"
	CodeMalformed    = "malformed"
	CodeBadAnnouncer = "bad_announcer"
	CodeBadSignature = "bad_signature"
	CodeUnknownKind  = "unknown_kind"
	CodeInvalidBody  = "invalid_body"
	CodeBadTime      = "bad_time"
	CodeExpired      = "expired"
	CodeFromFuture   = "from_future"
	CodeWrongNetwork = "wrong_network"
	CodeWrongTopic   = "wrong_topic"
	// CodeStale: a node already holds this announcement or a newer one of the same subject.
	CodeStale = "stale"
	// CodeCatalogFull: a node's catalog has no room for another subject of this kind.
	CodeCatalogFull = "catalog_full"
)

// Error is why an announcement was refused: a Code from the list above and a Detail naming what was wrong.
type Error struct {
	Code   string
	Detail string
}

func (e *Error) Error() string { return e.Code + ": " + e.Detail }

func refuse(code, format string, args ...any) *Error {
	return &Error{Code: code, Detail: fmt.Sprintf(format, args...)}
}

// CodeOf returns the Code of an *Error in err's chain, or "" when there is none.
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Ignorable reports whether err says only that the announcement is out of its time window here (expired, or
// not yet valid by this receiver's clock): something to drop quietly, not to punish anyone for.
func Ignorable(err error) bool {
	c := CodeOf(err)
	return c == CodeExpired || c == CodeFromFuture
}

// ID is an announcement's identity: the SHA-256 of its signed bytes. (Gossip uses it as the message ID.)
func ID(raw []byte) [32]byte { return sha256.Sum256(raw) }

// Verified is an announcement whose signature checked out and whose body decoded and passed its kind's
// checks. It is read-only once returned.
type Verified struct {
	ID        [32]byte
	Network   string
	Kind      pb.Kind
	Announcer peer.ID
	Seq       uint64
	IssuedAt  time.Time
	ExpiresAt time.Time
	// Body is the decoded body, of the concrete type the kind's spec names (*pb.WorkerOffer for
	// KIND_WORKER_OFFER).
	Body proto.Message
	// Subject names what the announcement is about, unique per kind: for a worker offer the announcer.
	// A catalog keeps the newest (highest Seq) announcement per (Kind, Subject).
	Subject string
	// Raw is the SignedAnnouncement exactly as received, to store and to pass on.
	Raw []byte
}

// Expired reports whether the announcement has expired at now.
func (v *Verified) Expired(now time.Time) bool { return !now.Before(v.ExpiresAt) }

// Supersedes reports whether v should replace old, an announcement of the same subject: a higher seq wins,
// and of two with the same seq, the lower ID.
func (v *Verified) Supersedes(old *Verified) bool {
	if v.Seq != old.Seq {
		return v.Seq > old.Seq
	}
	return bytes.Compare(v.ID[:], old.ID[:]) < 0
}

// Sign builds a SignedAnnouncement of kind with body for network, authored by key. The caller picks seq so
// that it grows with every announcement of the same subject (a clock in milliseconds that never repeats does).
func Sign(key crypto.PrivKey, network string, kind pb.Kind, seq uint64, issuedAt time.Time, ttl time.Duration, body proto.Message) ([]byte, error) {
	spec, ok := kinds[kind]
	if !ok {
		return nil, refuse(CodeUnknownKind, "kind %v is not one this software knows", kind)
	}
	if ttl <= 0 || ttl > MaxTTL {
		return nil, refuse(CodeBadTime, "ttl %v must be in (0, %v]", ttl, MaxTTL)
	}
	if err := spec.check(body); err != nil {
		return nil, err
	}
	author, err := peer.IDFromPrivateKey(key)
	if err != nil {
		return nil, fmt.Errorf("announce: author key: %w", err)
	}
	bodyBytes, err := proto.MarshalOptions{Deterministic: true}.Marshal(body)
	if err != nil {
		return nil, fmt.Errorf("announce: marshal body: %w", err)
	}
	ann, err := proto.MarshalOptions{Deterministic: true}.Marshal(&pb.Announcement{
		Network:     network,
		Kind:        kind,
		Announcer:   []byte(author),
		Seq:         seq,
		IssuedAtMs:  issuedAt.UnixMilli(),
		ExpiresAtMs: issuedAt.Add(ttl).UnixMilli(),
		Body:        bodyBytes,
	})
	if err != nil {
		return nil, fmt.Errorf("announce: marshal: %w", err)
	}
	sig, err := key.Sign(signingBytes(ann))
	if err != nil {
		return nil, fmt.Errorf("announce: sign: %w", err)
	}
	out, err := proto.Marshal(&pb.SignedAnnouncement{Announcement: ann, Signature: sig})
	if err != nil {
		return nil, fmt.Errorf("announce: marshal: %w", err)
	}
	if len(out) > spec.maxSize {
		return nil, refuse(CodeOversized, "%d bytes, the limit for a %s is %d", len(out), spec.name, spec.maxSize)
	}
	return out, nil
}

// stdlibRules are crypto/ed25519's verification rules (cofactorless; non-canonical or small-order keys
// accepted, non-canonical s refused), so every signature crypto/ed25519 accepts is accepted here and no other.
var stdlibRules = &voi.Options{Verify: voi.VerifyOptionsStdLib}

// verifySignature checks an Ed25519 signature with curve25519-voi, which verifies in about 70% of the time
// crypto/ed25519 takes (its vectorised backend): every node verifies every announcement it accepts, on
// gossip's path, besides gossipsub's own check of the message signature.
func verifySignature(pub, msg, sig []byte) bool {
	return len(pub) == ed25519.PublicKeySize && voi.VerifyWithOptions(pub, msg, sig, stdlibRules)
}

func signingBytes(ann []byte) []byte {
	b := make([]byte, 0, len(SigningDomain)+len(ann))
	return append(append(b, SigningDomain...), ann...)
}

// Open decodes and checks a SignedAnnouncement of network received at now. It returns the Verified
// announcement, or an *Error saying what was wrong. An announcement outside its time window comes back with
// both: the Verified value and an Error with CodeExpired or CodeFromFuture, so a caller can tell "not now"
// from "forged".
func Open(data []byte, network string, now time.Time) (*Verified, error) {
	return open(data, network, now, true)
}

// Seal signs like Sign and returns the announcement as Open would, without verifying the signature it just
// made: what a node publishes itself.
func Seal(key crypto.PrivKey, network string, kind pb.Kind, seq uint64, issuedAt time.Time, ttl time.Duration, body proto.Message) (*Verified, error) {
	raw, err := Sign(key, network, kind, seq, issuedAt, ttl, body)
	if err != nil {
		return nil, err
	}
	v, err := open(raw, network, issuedAt, false)
	if err != nil {
		return nil, fmt.Errorf("announce: an announcement just signed does not open: %w", err)
	}
	return v, nil
}

func open(data []byte, network string, now time.Time, verify bool) (*Verified, error) {
	if len(data) > MaxSize {
		return nil, refuse(CodeOversized, "%d bytes, the limit is %d", len(data), MaxSize)
	}
	var signed pb.SignedAnnouncement
	if err := proto.Unmarshal(data, &signed); err != nil {
		return nil, refuse(CodeMalformed, "signed announcement: %v", err)
	}
	var ann pb.Announcement
	if err := proto.Unmarshal(signed.Announcement, &ann); err != nil {
		return nil, refuse(CodeMalformed, "announcement: %v", err)
	}
	announcer, err := peer.IDFromBytes(ann.Announcer)
	if err != nil {
		return nil, refuse(CodeBadAnnouncer, "announcer is not a peer ID: %v", err)
	}
	pub, err := announcer.ExtractPublicKey()
	if err != nil {
		return nil, refuse(CodeBadAnnouncer, "announcer %s carries no public key: %v", announcer, err)
	}
	if pub.Type() != crypto.Ed25519 {
		return nil, refuse(CodeBadAnnouncer, "announcer %s has a %v key; only Ed25519 is accepted", announcer, pub.Type())
	}
	if len(signed.Signature) != ed25519.SignatureSize {
		return nil, refuse(CodeBadSignature, "signature is %d bytes, want %d", len(signed.Signature), ed25519.SignatureSize)
	}
	if verify {
		key, err := pub.Raw()
		if err != nil || !verifySignature(key, signingBytes(signed.Announcement), signed.Signature) {
			return nil, refuse(CodeBadSignature, "signature does not verify against announcer %s", announcer)
		}
	}
	spec, ok := kinds[ann.Kind]
	if !ok {
		return nil, refuse(CodeUnknownKind, "kind %d is not one this software knows", int32(ann.Kind))
	}
	if len(data) > spec.maxSize {
		return nil, refuse(CodeOversized, "%d bytes, the limit for a %s is %d", len(data), spec.name, spec.maxSize)
	}
	if ann.Network != network {
		return nil, refuse(CodeWrongNetwork, "made for network %q, this is %q", truncate(ann.Network), network)
	}
	issued, expires := time.UnixMilli(ann.IssuedAtMs), time.UnixMilli(ann.ExpiresAtMs)
	switch {
	case ann.IssuedAtMs <= 0:
		return nil, refuse(CodeBadTime, "issued_at_ms %d is not a time", ann.IssuedAtMs)
	case !expires.After(issued):
		return nil, refuse(CodeBadTime, "expires_at %s is not after issued_at %s", expires.UTC().Format(time.RFC3339Nano), issued.UTC().Format(time.RFC3339Nano))
	case expires.Sub(issued) > MaxTTL:
		return nil, refuse(CodeBadTime, "lifetime %v is over the limit of %v", expires.Sub(issued), MaxTTL)
	}
	body := spec.new()
	if err := proto.Unmarshal(ann.Body, body); err != nil {
		return nil, refuse(CodeMalformed, "%s body: %v", spec.name, err)
	}
	if err := spec.check(body); err != nil {
		return nil, err
	}
	v := &Verified{
		ID:        ID(data),
		Network:   ann.Network,
		Kind:      ann.Kind,
		Announcer: announcer,
		Seq:       ann.Seq,
		IssuedAt:  issued,
		ExpiresAt: expires,
		Body:      body,
		Subject:   spec.subject(announcer, body),
		Raw:       data,
	}
	if v.Expired(now) {
		return v, refuse(CodeExpired, "expired at %s", expires.UTC().Format(time.RFC3339))
	}
	if issued.Sub(now) > MaxClockSkew {
		return v, refuse(CodeFromFuture, "issued %v in the future by this node's clock (more than %v of skew)", issued.Sub(now).Round(time.Millisecond), MaxClockSkew)
	}
	return v, nil
}
