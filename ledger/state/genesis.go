package state

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math/bits"
	"slices"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// Params are the chain's rules that a genesis fixes. They are covered by the genesis app hash, so every
// validator runs with the same ones.
type Params struct {
	// MaxTxBytes is the largest transaction (wire bytes), at most MaxTxBytes.
	MaxTxBytes int `json:"max_tx_bytes"`
	// MaxBlockTxs is the most transactions one block may carry.
	MaxBlockTxs int `json:"max_block_txs"`
	// MaxBlockBytes bounds the sum of a block's transaction sizes, at most MaxBlockBytesLimit.
	MaxBlockBytes int `json:"max_block_bytes"`
	// MinFee is the lowest fee a transaction may pay (0 allows free transactions).
	MinFee Amount `json:"min_fee"`
	// MaxRecordBytes is the largest datanet record, in bytes.
	MaxRecordBytes uint64 `json:"max_record_bytes"`
	// MaxRecordsPerTx is the most records one datanet transaction may contribute, approve or reject, at most
	// MaxRecordsPerTxLimit (and what fits in MaxTxBytes).
	MaxRecordsPerTx int `json:"max_records_per_tx"`
}

// MaxBlockBytesLimit is the largest Params.MaxBlockBytes: the transactions of a block at that size, with
// their length prefixes and the header, still fit consensus.MaxBlockBytes.
const MaxBlockBytesLimit = consensus.MaxBlockBytes / 2

// DefaultParams are the parameters a new devnet uses: room for a 10,000 tx/s chain with blocks every
// 100 ms several times over, transfers of a few hundred bytes, and a fee of 1 unit.
func DefaultParams() Params {
	return Params{MaxTxBytes: 8 << 10, MaxBlockTxs: 10_000, MaxBlockBytes: 4 << 20, MinFee: 1,
		MaxRecordBytes: 64 << 20, MaxRecordsPerTx: 128}
}

// Validate checks each parameter's range; the error names the field.
func (p *Params) Validate() error {
	switch {
	case p.MaxTxBytes < MinTxBytes || p.MaxTxBytes > MaxTxBytes:
		return fmt.Errorf("state: params.max_tx_bytes is %d, want %d..%d", p.MaxTxBytes, MinTxBytes, MaxTxBytes)
	case p.MaxBlockTxs < 1 || p.MaxBlockTxs > MaxBlockBytesLimit/MinTxBytes:
		return fmt.Errorf("state: params.max_block_txs is %d, want 1..%d", p.MaxBlockTxs, MaxBlockBytesLimit/MinTxBytes)
	case p.MaxBlockBytes < p.MaxTxBytes || p.MaxBlockBytes > MaxBlockBytesLimit:
		return fmt.Errorf("state: params.max_block_bytes is %d, want max_tx_bytes (%d)..%d", p.MaxBlockBytes, p.MaxTxBytes, MaxBlockBytesLimit)
	case p.MaxRecordBytes < 1:
		return fmt.Errorf("state: params.max_record_bytes is %d, want at least 1", p.MaxRecordBytes)
	case p.MaxRecordsPerTx < 1 || p.MaxRecordsPerTx > MaxRecordsPerTxLimit:
		return fmt.Errorf("state: params.max_records_per_tx is %d, want 1..%d", p.MaxRecordsPerTx, MaxRecordsPerTxLimit)
	}
	return nil
}

// GenesisAccount is an account funded at genesis.
type GenesisAccount struct {
	Address Address `json:"address"`
	Balance Amount  `json:"balance"`
}

// Genesis is the application's half of a chain's genesis: its ID, the funded accounts and the parameters.
// (The validator set is consensus.Genesis's half; its AppHash must be this genesis' AppHash.) In JSON,
// addresses are peer IDs and amounts decimal strings:
//
//	{"chain_id": "shoulders-devnet",
//	 "accounts": [{"address": "12D3KooW...", "balance": "1000000000000"}],
//	 "params": {"max_tx_bytes": 8192, "max_block_txs": 10000, "max_block_bytes": 4194304, "min_fee": "1",
//	            "max_record_bytes": 67108864, "max_records_per_tx": 128}}
type Genesis struct {
	ChainID  string           `json:"chain_id"`
	Accounts []GenesisAccount `json:"accounts"`
	Params   Params           `json:"params"`
}

// ParseGenesis decodes a genesis from JSON, refusing unknown fields, and validates it.
func ParseGenesis(b []byte) (*Genesis, error) {
	d := json.NewDecoder(bytes.NewReader(b))
	d.DisallowUnknownFields()
	g := new(Genesis)
	if err := d.Decode(g); err != nil {
		return nil, fmt.Errorf("state: genesis: %w", err)
	}
	if d.More() {
		return nil, fmt.Errorf("state: genesis: trailing data after the JSON object")
	}
	if err := g.Validate(); err != nil {
		return nil, err
	}
	return g, nil
}

// Validate checks the genesis: a chain ID of 1..consensus.MaxChainIDLen bytes, valid parameters, accounts
// with distinct addresses and positive balances, and a total supply that fits a uint64 (which is what keeps
// every balance from overflowing later: no balance can exceed the total supply).
func (g *Genesis) Validate() error {
	if len(g.ChainID) == 0 || len(g.ChainID) > consensus.MaxChainIDLen {
		return fmt.Errorf("state: genesis chain_id of %d bytes, want 1..%d", len(g.ChainID), consensus.MaxChainIDLen)
	}
	if err := g.Params.Validate(); err != nil {
		return err
	}
	seen := make(map[Address]int, len(g.Accounts))
	var total uint64
	for i, a := range g.Accounts {
		if j, dup := seen[a.Address]; dup {
			return fmt.Errorf("state: genesis accounts[%d].address %s repeats accounts[%d]", i, a.Address, j)
		}
		seen[a.Address] = i
		if a.Balance == 0 {
			return fmt.Errorf("state: genesis accounts[%d].balance is 0, want a positive balance (leave the account out instead)", i)
		}
		var carry uint64
		total, carry = bits.Add64(total, uint64(a.Balance), 0)
		if carry != 0 {
			return fmt.Errorf("state: genesis accounts[%d]: total supply exceeds %d", i, uint64(1<<64-1))
		}
	}
	return nil
}

// TotalSupply returns the sum of the genesis balances: the supply the chain conserves forever.
func (g *Genesis) TotalSupply() uint64 {
	var total uint64
	for _, a := range g.Accounts {
		total += uint64(a.Balance)
	}
	return total
}

// AppHash returns the app hash of the state before the first block: SHA-256 over a domain tag and the
// genesis' canonical encoding (chain ID, parameters, accounts sorted by address). It is what
// consensus.Genesis.AppHash must hold, and the first link of the app hash chain.
func (g *Genesis) AppHash() consensus.Hash {
	accts := slices.Clone(g.Accounts)
	slices.SortFunc(accts, func(a, b GenesisAccount) int { return bytes.Compare(a.Address[:], b.Address[:]) })
	h := sha256.New()
	h.Write([]byte(genesisDomain))
	var b []byte
	b = append(b, byte(len(g.ChainID)))
	b = append(b, g.ChainID...)
	b = binary.BigEndian.AppendUint64(b, uint64(g.Params.MaxTxBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(g.Params.MaxBlockTxs))
	b = binary.BigEndian.AppendUint64(b, uint64(g.Params.MaxBlockBytes))
	b = binary.BigEndian.AppendUint64(b, uint64(g.Params.MinFee))
	b = binary.BigEndian.AppendUint64(b, g.Params.MaxRecordBytes)
	b = binary.BigEndian.AppendUint64(b, uint64(g.Params.MaxRecordsPerTx))
	b = binary.BigEndian.AppendUint64(b, uint64(len(accts)))
	h.Write(b)
	for _, a := range accts {
		h.Write(a.Address[:])
		h.Write(binary.BigEndian.AppendUint64(nil, uint64(a.Balance)))
	}
	var out consensus.Hash
	h.Sum(out[:0])
	return out
}

const (
	genesisDomain = "shoulders/app-genesis/v1\n"
	blockDomain   = "shoulders/app-block/v1\n"
)
