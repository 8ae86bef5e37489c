package announce

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	pb "github.com/shouldersnet/shoulders/proto"
)

var t0 = time.UnixMilli(1_790_000_000_000)

const net = "testnet"

func newKey(t testing.TB) crypto.PrivKey {
	t.Helper()
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func offer() *pb.WorkerOffer {
	return &pb.WorkerOffer{
		Addrs:       []string{"/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"},
		Roles:       []string{"client", "worker"},
		CpuCores:    8,
		MemoryBytes: 32 << 30,
		Gpus:        []*pb.GPU{{Index: 0, Uuid: "GPU-1", Name: "NVIDIA H100 80GB HBM3", MemoryMib: 81559, DriverVersion: "550.54.15"}},
		Executors:   []string{"builtin", "docker"},
		Version:     "0.1.0",
	}
}

func TestSignOpenRoundTrip(t *testing.T) {
	key := newKey(t)
	raw, err := Sign(key, net, pb.Kind_KIND_WORKER_OFFER, 7, t0, time.Minute, offer())
	if err != nil {
		t.Fatal(err)
	}
	v, err := Open(raw, net, t0.Add(time.Second))
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	author, _ := peer.IDFromPrivateKey(key)
	if v.Announcer != author || v.Seq != 7 || v.Kind != pb.Kind_KIND_WORKER_OFFER || v.Subject != author.String() {
		t.Fatalf("got announcer %s seq %d kind %v subject %s", v.Announcer, v.Seq, v.Kind, v.Subject)
	}
	if !v.IssuedAt.Equal(t0) || !v.ExpiresAt.Equal(t0.Add(time.Minute)) {
		t.Fatalf("times %v %v", v.IssuedAt, v.ExpiresAt)
	}
	if !proto.Equal(v.Body, offer()) {
		t.Fatalf("body changed in transit: %v", v.Body)
	}
	if !bytes.Equal(v.Raw, raw) {
		t.Fatal("Raw is not the bytes received")
	}
	view := View(v).(WorkerOfferView)
	if view.GPUs[0].Name != "NVIDIA H100 80GB HBM3" || view.CPUCores != 8 {
		t.Fatalf("view %+v", view)
	}
}

// Seal gives what a node publishes: exactly what Open makes of the bytes, which others will verify; and it
// refuses what Sign refuses.
func TestSealIsWhatOpenSees(t *testing.T) {
	key := newKey(t)
	v, err := Seal(key, net, pb.Kind_KIND_WORKER_OFFER, 9, t0, time.Minute, offer())
	if err != nil {
		t.Fatal(err)
	}
	opened, err := Open(v.Raw, net, t0)
	if err != nil {
		t.Fatalf("others cannot open what Seal made: %v", err)
	}
	if opened.ID != v.ID || opened.Announcer != v.Announcer || opened.Seq != 9 || opened.Subject != v.Subject ||
		!opened.IssuedAt.Equal(v.IssuedAt) || !opened.ExpiresAt.Equal(v.ExpiresAt) || !proto.Equal(opened.Body, v.Body) {
		t.Fatalf("Seal %+v, Open %+v", v, opened)
	}
	bad := offer()
	bad.Executors = make([]string, maxExecutors+1)
	if _, err := Seal(key, net, pb.Kind_KIND_WORKER_OFFER, 10, t0, time.Minute, bad); CodeOf(err) != CodeInvalidBody {
		t.Fatalf("an invalid body: %v", err)
	}
}

// Every byte of the signed announcement is covered: flipping any bit of it must be refused.
func TestOpenRefusesEveryTamperedByte(t *testing.T) {
	raw, err := Sign(newKey(t), net, pb.Kind_KIND_WORKER_OFFER, 1, t0, time.Minute, offer())
	if err != nil {
		t.Fatal(err)
	}
	var signed pb.SignedAnnouncement
	if err := proto.Unmarshal(raw, &signed); err != nil {
		t.Fatal(err)
	}
	for i := range signed.Announcement {
		for _, bit := range []byte{0x01, 0x80} {
			tampered := proto.CloneOf(&signed)
			tampered.Announcement = bytes.Clone(signed.Announcement)
			tampered.Announcement[i] ^= bit
			data, _ := proto.Marshal(tampered)
			if _, err := Open(data, net, t0); err == nil {
				t.Fatalf("flipping bit %#x of announcement byte %d was accepted", bit, i)
			}
		}
	}
}

func TestOpenRefusals(t *testing.T) {
	key := newKey(t)
	otherKey := newKey(t)
	author, _ := peer.IDFromPrivateKey(key)
	sign := func(ann *pb.Announcement, k crypto.PrivKey) []byte {
		b, _ := proto.Marshal(ann)
		sig, _ := k.Sign(signingBytes(b))
		out, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: b, Signature: sig})
		return out
	}
	body, _ := proto.Marshal(offer())
	good := func() *pb.Announcement {
		return &pb.Announcement{Network: net, Kind: pb.Kind_KIND_WORKER_OFFER, Announcer: []byte(author), Seq: 1,
			IssuedAtMs: t0.UnixMilli(), ExpiresAtMs: t0.Add(time.Minute).UnixMilli(), Body: body}
	}
	rsaKey, _, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaID, _ := peer.IDFromPrivateKey(rsaKey)
	badBody, _ := proto.Marshal(&pb.WorkerOffer{Roles: []string{"admin"}, CpuCores: 1, Version: "x"})

	cases := []struct {
		name string
		data []byte
		code string
	}{
		{"garbage", []byte("\xff\xff\xff not protobuf"), CodeMalformed},
		{"oversized", make([]byte, MaxSize+1), CodeOversized},
		{"signed by another key", sign(good(), otherKey), CodeBadSignature},
		{"no signature", func() []byte {
			b, _ := proto.Marshal(good())
			out, _ := proto.Marshal(&pb.SignedAnnouncement{Announcement: b})
			return out
		}(), CodeBadSignature},
		{"announcer not a peer id", sign(func() *pb.Announcement { a := good(); a.Announcer = []byte("nope"); return a }(), key), CodeBadAnnouncer},
		{"rsa announcer", sign(func() *pb.Announcement { a := good(); a.Announcer = []byte(rsaID); return a }(), rsaKey), CodeBadAnnouncer},
		{"unknown kind", sign(func() *pb.Announcement { a := good(); a.Kind = 99; return a }(), key), CodeUnknownKind},
		{"expires before issued", sign(func() *pb.Announcement { a := good(); a.ExpiresAtMs = a.IssuedAtMs; return a }(), key), CodeBadTime},
		{"lifetime too long", sign(func() *pb.Announcement { a := good(); a.ExpiresAtMs = t0.Add(2 * MaxTTL).UnixMilli(); return a }(), key), CodeBadTime},
		{"from the future", sign(func() *pb.Announcement {
			a := good()
			a.IssuedAtMs = t0.Add(time.Hour).UnixMilli()
			a.ExpiresAtMs = t0.Add(time.Hour + time.Minute).UnixMilli()
			return a
		}(), key), CodeFromFuture},
		{"another network", sign(func() *pb.Announcement { a := good(); a.Network = "elsewhere"; return a }(), key), CodeWrongNetwork},
		{"over the kind's size limit", sign(func() *pb.Announcement {
			o := offer()
			o.Executors = nil
			for i := range 200 {
				o.Executors = append(o.Executors, fmt.Sprintf("executor-%040d", i))
			}
			a := good()
			a.Body, _ = proto.Marshal(o)
			return a
		}(), key), CodeOversized},
		{"body not protobuf", sign(func() *pb.Announcement { a := good(); a.Body = []byte{0xff}; return a }(), key), CodeMalformed},
		{"body breaks the rules", sign(func() *pb.Announcement { a := good(); a.Body = badBody; return a }(), key), CodeInvalidBody},
		{"expired", sign(func() *pb.Announcement {
			a := good()
			a.IssuedAtMs = t0.Add(-time.Hour).UnixMilli()
			a.ExpiresAtMs = t0.Add(-time.Minute).UnixMilli()
			return a
		}(), key), CodeExpired},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v, err := Open(c.data, net, t0)
			if CodeOf(err) != c.code {
				t.Fatalf("got error %v, want code %s", err, c.code)
			}
			if Ignorable(err) != (v != nil) {
				t.Fatalf("got a value %v with %v: only announcements out of their time window come back with one", v != nil, err)
			}
		})
	}
}

func TestWorkerOfferRules(t *testing.T) {
	cases := []struct {
		name   string
		modify func(*pb.WorkerOffer)
		want   string // substring of the error; "" means valid
	}{
		{"valid", func(*pb.WorkerOffer) {}, ""},
		{"no gpus is normal", func(o *pb.WorkerOffer) { o.Gpus = nil }, ""},
		{"bad multiaddr", func(o *pb.WorkerOffer) { o.Addrs = []string{"tcp://127.0.0.1"} }, "addrs[0]"},
		{"addr naming a peer", func(o *pb.WorkerOffer) {
			o.Addrs = []string{"/ip4/1.2.3.4/tcp/1/p2p/12D3KooWQYhTNQdmr3ArTeUHRYzFg94BKyTkoWBDWez9kSCVe2Xo"}
		}, "must not name a peer"},
		{"too many addrs", func(o *pb.WorkerOffer) { o.Addrs = make([]string, MaxAddrs+1) }, "addrs"},
		{"no roles", func(o *pb.WorkerOffer) { o.Roles = nil }, "roles is empty"},
		{"unknown role", func(o *pb.WorkerOffer) { o.Roles = []string{"king"} }, `roles[0] "king"`},
		{"repeated role", func(o *pb.WorkerOffer) { o.Roles = []string{"worker", "worker"} }, "listed twice"},
		{"no cpu", func(o *pb.WorkerOffer) { o.CpuCores = 0 }, "cpu_cores"},
		{"gpu index twice", func(o *pb.WorkerOffer) { o.Gpus = append(o.Gpus, o.Gpus[0]) }, "repeats index"},
		{"gpu without name", func(o *pb.WorkerOffer) { o.Gpus[0].Name = "" }, "gpus[0]"},
		{"executor with spaces", func(o *pb.WorkerOffer) { o.Executors = []string{"rm -rf"} }, "executors[0]"},
		{"no version", func(o *pb.WorkerOffer) { o.Version = "" }, "version"},
		{"huge version", func(o *pb.WorkerOffer) { o.Version = strings.Repeat("v", 65) }, "version"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			o := offer()
			c.modify(o)
			err := checkWorkerOffer(o)
			if c.want == "" {
				if err != nil {
					t.Fatalf("valid offer refused: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) || CodeOf(err) != CodeInvalidBody {
				t.Fatalf("got %v, want an invalid_body error naming %q", err, c.want)
			}
			// Sign refuses what Open would refuse: a node never publishes an offer others reject.
			if _, err := Sign(newKey(t), net, pb.Kind_KIND_WORKER_OFFER, 1, t0, time.Minute, o); err == nil {
				t.Fatal("Sign accepted an invalid offer")
			}
		})
	}
}

func TestSupersedes(t *testing.T) {
	key := newKey(t)
	open := func(seq uint64, cores uint32) *Verified {
		o := offer()
		o.CpuCores = cores
		raw, err := Sign(key, net, pb.Kind_KIND_WORKER_OFFER, seq, t0, time.Minute, o)
		if err != nil {
			t.Fatal(err)
		}
		v, err := Open(raw, net, t0)
		if err != nil {
			t.Fatal(err)
		}
		return v
	}
	older, newer := open(1, 4), open(2, 4)
	if !newer.Supersedes(older) || older.Supersedes(newer) || newer.Supersedes(newer) {
		t.Fatal("a higher seq must win, and nothing supersedes itself")
	}
	// Same seq, two bodies: exactly one of them wins, the same one whichever arrives first.
	a, b := open(3, 8), open(3, 16)
	if a.Supersedes(b) == b.Supersedes(a) {
		t.Fatal("two bodies with one seq must be ordered, one way only")
	}
}

func TestKindNames(t *testing.T) {
	for _, k := range Kinds() {
		back, ok := KindByName(KindName(k))
		if !ok || back != k {
			t.Fatalf("kind %v does not round-trip through its name %q", k, KindName(k))
		}
	}
	if _, ok := KindByName("nonsense"); ok {
		t.Fatal("unknown name resolved")
	}
}

// FuzzOpen feeds arbitrary bytes to the decoder: it must never panic, and whatever it accepts must be an
// announcement whose signature verifies and whose re-check passes.
func FuzzOpen(f *testing.F) {
	key := newKey(f)
	good, err := Sign(key, net, pb.Kind_KIND_WORKER_OFFER, 1, t0, time.Minute, offer())
	if err != nil {
		f.Fatal(err)
	}
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00, 0x12, 0x00})
	f.Add(good[:len(good)/2])
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Open(data, net, t0)
		if err != nil {
			if CodeOf(err) == "" {
				t.Fatalf("error without a code: %v", err)
			}
			return
		}
		if err := kinds[v.Kind].check(v.Body); err != nil {
			t.Fatalf("accepted a body that fails its checks: %v", err)
		}
		var signed pb.SignedAnnouncement
		if err := proto.Unmarshal(data, &signed); err != nil {
			t.Fatalf("accepted bytes that do not decode: %v", err)
		}
		pub, err := v.Announcer.ExtractPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if ok, err := pub.Verify(signingBytes(signed.Announcement), signed.Signature); !ok || err != nil {
			t.Fatal("accepted an announcement whose signature does not verify")
		}
		if v.Expired(t0) {
			t.Fatal("accepted an expired announcement without saying so")
		}
	})
}

// verifyCases are signatures at the edges of Ed25519's rules, where implementations are known to differ.
func verifyCases(t testing.TB) (cases []struct{ pub, msg, sig []byte }) {
	add := func(pub, msg, sig []byte) { cases = append(cases, struct{ pub, msg, sig []byte }{pub, msg, sig}) }
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	msg := []byte(SigningDomain + "an announcement")
	sig := ed25519.Sign(priv, msg)
	add(pub, msg, sig)
	for i := range 8 * len(sig) {
		bad := bytes.Clone(sig)
		bad[i/8] ^= 1 << (i % 8)
		add(pub, msg, bad)
	}
	add(pub, append(bytes.Clone(msg), 0), sig)
	// s + L: the same scalar, not in canonical form. crypto/ed25519 refuses it.
	highS := bytes.Clone(sig)
	var carry uint16
	for i, b := range edwardsOrder {
		sum := uint16(highS[32+i]) + uint16(b) + carry
		highS[32+i], carry = byte(sum), sum>>8
	}
	add(pub, msg, highS)
	// The identity as public key and as R, s = 0: small-order points, which crypto/ed25519 accepts.
	identity := append([]byte{1}, make([]byte, 31)...)
	add(identity, msg, append(bytes.Clone(identity), make([]byte, 32)...))
	// A public key that is not a point on the curve (y = 2 has no x).
	notOnCurve := append([]byte{2}, make([]byte, 31)...)
	add(notOnCurve, msg, sig)
	// A non-canonical encoding of the identity as public key (y = p + 1), which crypto/ed25519 accepts.
	nonCanonical := []byte{0xee, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
		0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x7f}
	add(nonCanonical, msg, append(bytes.Clone(identity), make([]byte, 32)...))
	return cases
}

// edwardsOrder is L, the order of Ed25519's prime subgroup, little-endian.
var edwardsOrder = []byte{0xed, 0xd3, 0xf5, 0x5c, 0x1a, 0x63, 0x12, 0x58, 0xd6, 0x9c, 0xf7, 0xa2, 0xde, 0xf9, 0xde, 0x14,
	0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0x10}

// The announcement's signature is checked with curve25519-voi for speed; it must accept exactly what
// crypto/ed25519, which signs, accepts.
func TestVerifyAgreesWithCryptoEd25519(t *testing.T) {
	accepted := 0
	for i, c := range verifyCases(t) {
		want := ed25519.Verify(c.pub, c.msg, c.sig)
		if got := verifySignature(c.pub, c.msg, c.sig); got != want {
			t.Errorf("case %d: verifySignature says %v, crypto/ed25519 says %v", i, got, want)
		}
		if want {
			accepted++
		}
	}
	if accepted != 3 { // the honest signature, the small-order one and the non-canonical key
		t.Errorf("crypto/ed25519 accepted %d of the cases, want 3: the cases are not testing what they say", accepted)
	}
}

func FuzzVerifyAgreesWithCryptoEd25519(f *testing.F) {
	for _, c := range verifyCases(f) {
		f.Add(c.pub, c.msg, c.sig)
	}
	f.Fuzz(func(t *testing.T, pub, msg, sig []byte) {
		if len(pub) != ed25519.PublicKeySize || len(sig) != ed25519.SignatureSize {
			return // open refuses these before verifying
		}
		if got, want := verifySignature(pub, msg, sig), ed25519.Verify(pub, msg, sig); got != want {
			t.Fatalf("verifySignature says %v, crypto/ed25519 says %v", got, want)
		}
	})
}

// BenchmarkVerify: an announcement's signature check as Open does it, against crypto/ed25519 on the same bytes.
func BenchmarkVerify(b *testing.B) {
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		b.Fatal(err)
	}
	msg := signingBytes(make([]byte, 200))
	sig := ed25519.Sign(priv, msg)
	for _, v := range []struct {
		name   string
		verify func(pub, msg, sig []byte) bool
	}{{"crypto-ed25519", func(p, m, s []byte) bool { return ed25519.Verify(p, m, s) }}, {"voi", verifySignature}} {
		b.Run(v.name, func(b *testing.B) {
			for b.Loop() {
				if !v.verify(pub, msg, sig) {
					b.Fatal("an honest signature did not verify")
				}
			}
		})
	}
}
