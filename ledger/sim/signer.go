package sim

import (
	"crypto/ed25519"
	"crypto/sha256"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// hashScheme is the simulator's signature scheme: a signature is SHA-256(secret || message), checked by
// recomputing it with the signer's secret, which the verifier looks up by public key. It is unforgeable
// inside the simulator because no simulated validator, Byzantine ones included, ever reads another's
// secret; and it costs a hash instead of an elliptic-curve multiplication, which lets CI run thousands of
// seeds. Runs with Config.Ed25519 use the production scheme instead.
type hashScheme struct {
	secrets map[consensus.PublicKey][32]byte
}

type hashSigner struct {
	secret [32]byte
	pub    consensus.PublicKey
}

func (s *hashSigner) PublicKey() consensus.PublicKey { return s.pub }

func (s *hashSigner) Sign(msg []byte) consensus.Signature { return hashSign(&s.secret, msg) }

func hashSign(secret *[32]byte, msg []byte) consensus.Signature {
	h := sha256.New()
	h.Write(secret[:])
	h.Write(msg)
	var sig consensus.Signature
	h.Sum(sig[:0])
	return sig
}

func (hs *hashScheme) Verify(pub *consensus.PublicKey, msg []byte, sig *consensus.Signature) bool {
	secret, ok := hs.secrets[*pub]
	return ok && hashSign(&secret, msg) == *sig
}

func (hs *hashScheme) VerifyBatch(items []consensus.SignedMessage) bool {
	for _, it := range items {
		if !hs.Verify(it.Key, it.Msg, it.Sig) {
			return false
		}
	}
	return true
}

// keys makes n validator signers, deterministic from seed, and the verifier that checks them.
func keys(n int, seed uint64, real bool) ([]consensus.Signer, consensus.Verifier) {
	signers := make([]consensus.Signer, n)
	hs := &hashScheme{secrets: make(map[consensus.PublicKey][32]byte, n)}
	for i := range signers {
		var b [16]byte
		for k := 0; k < 8; k++ {
			b[k] = byte(seed >> (8 * k))
		}
		b[8], b[9] = byte(i), byte(i>>8)
		secret := sha256.Sum256(append([]byte("shoulders/sim/key\x00"), b[:]...))
		if real {
			signers[i] = consensus.NewEd25519Signer(ed25519.NewKeyFromSeed(secret[:]))
			continue
		}
		s := &hashSigner{secret: secret, pub: sha256.Sum256(secret[:])}
		hs.secrets[s.pub] = secret
		signers[i] = s
	}
	if real {
		return signers, consensus.Ed25519Verifier{}
	}
	return signers, hs
}
