package ledger

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// GenesisFile is the name of a node's genesis in its home directory. A node with one joins that chain;
// a node without one runs no ledger.
const GenesisFile = "genesis.json"

// Genesis is the whole of a chain's start: what consensus needs (chain ID, time, validators with their
// voting power) and the application's part (funded accounts, parameters), which ledger/state reads.
type Genesis struct {
	ChainID    string             `json:"chain_id"`
	Time       time.Time          `json:"genesis_time"`
	Validators []GenesisValidator `json:"validators"`
	// App is the application's genesis (ledger/state.Genesis), kept as JSON here.
	App json.RawMessage `json:"app"`
}

// GenesisValidator is one validator: its peer ID (an Ed25519 key, which signs its votes) and voting power.
type GenesisValidator struct {
	Address string `json:"address"`
	Power   int64  `json:"power"`
}

// ReadGenesis reads and checks a genesis file; errors name the file and the field.
func ReadGenesis(path string) (*Genesis, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("ledger: genesis %s: %w", path, err)
	}
	var g Genesis
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return nil, fmt.Errorf("ledger: genesis %s: %w", path, err)
	}
	if _, err := g.Consensus(); err != nil {
		return nil, fmt.Errorf("ledger: genesis %s: %w", path, err)
	}
	return &g, nil
}

// Write writes g to path.
func (g *Genesis) Write(path string) error {
	b, err := json.MarshalIndent(g, "", "  ")
	if err != nil {
		return fmt.Errorf("ledger: encoding genesis: %w", err)
	}
	if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
		return fmt.Errorf("ledger: writing genesis: %w", err)
	}
	return nil
}

// Consensus returns the consensus part of g, checked.
func (g *Genesis) Consensus() (*consensus.Genesis, error) {
	if g.Time.IsZero() {
		return nil, errors.New("genesis_time is missing")
	}
	cg := &consensus.Genesis{ChainID: g.ChainID, Time: g.Time.UnixNano()}
	for i, v := range g.Validators {
		pub, err := PublicKeyOf(v.Address)
		if err != nil {
			return nil, fmt.Errorf("validators[%d].address %q: %w", i, v.Address, err)
		}
		cg.Validators = append(cg.Validators, consensus.Validator{PubKey: pub, Power: v.Power})
	}
	if err := cg.Validate(); err != nil {
		return nil, err
	}
	return cg, nil
}

// ValidatorPeers returns the validators' peer IDs, in validator-set order.
func (g *Genesis) ValidatorPeers() ([]peer.ID, error) {
	out := make([]peer.ID, 0, len(g.Validators))
	for i, v := range g.Validators {
		id, err := peer.Decode(v.Address)
		if err != nil {
			return nil, fmt.Errorf("ledger: genesis validators[%d].address %q: %w", i, v.Address, err)
		}
		out = append(out, id)
	}
	return out, nil
}

// PublicKeyOf returns the Ed25519 public key inside a peer ID, the form consensus identifies validators by.
func PublicKeyOf(address string) (consensus.PublicKey, error) {
	var pk consensus.PublicKey
	id, err := peer.Decode(address)
	if err != nil {
		return pk, fmt.Errorf("not a peer ID: %w", err)
	}
	pub, err := id.ExtractPublicKey()
	if err != nil {
		return pk, fmt.Errorf("no public key in it: %w", err)
	}
	if pub.Type() != crypto.Ed25519 {
		return pk, fmt.Errorf("a %v key; validators use Ed25519", pub.Type())
	}
	raw, err := pub.Raw()
	if err != nil || len(raw) != len(pk) {
		return pk, fmt.Errorf("bad Ed25519 key: %v", err)
	}
	copy(pk[:], raw)
	return pk, nil
}

// PeerOf returns the peer ID of a validator's public key.
func PeerOf(pk consensus.PublicKey) (peer.ID, error) {
	pub, err := crypto.UnmarshalEd25519PublicKey(pk[:])
	if err != nil {
		return "", err
	}
	return peer.IDFromPublicKey(pub)
}
