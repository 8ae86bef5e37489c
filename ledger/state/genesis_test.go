package state

import (
	"encoding/json"
	"strings"
	"testing"
)

func TestGenesisJSON(t *testing.T) {
	g := testGenesis(2, 1<<63)
	g.Accounts[1].Balance = 1<<63 - 1 // total 2^64-1: the most a chain can hold
	b, err := json.Marshal(g)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(b), `"balance":"9223372036854775808"`) || !strings.Contains(string(b), `"address":"12D3KooW`) {
		t.Fatalf("JSON form: %s", b)
	}
	back, err := ParseGenesis(b)
	if err != nil {
		t.Fatal(err)
	}
	if back.AppHash() != g.AppHash() || back.TotalSupply() != 1<<64-1 {
		t.Fatal("genesis does not round-trip through JSON")
	}
	// Amounts may also be JSON integers; unknown fields and trailing data are refused.
	num := strings.Replace(string(b), `"min_fee":"1"`, `"min_fee":1`, 1)
	if g2, err := ParseGenesis([]byte(num)); err != nil || g2.AppHash() != g.AppHash() {
		t.Fatalf("numeric min_fee: %v", err)
	}
	for name, s := range map[string]string{
		"unknown field": strings.Replace(string(b), `"chain_id"`, `"chainid":"x","chain_id"`, 1),
		"trailing":      string(b) + `{}`,
		"float":         strings.Replace(string(b), `"min_fee":"1"`, `"min_fee":1.5`, 1),
		"bad address":   strings.Replace(string(b), `"address":"12D3KooW`, `"address":"12D3KooX`, 1),
	} {
		if _, err := ParseGenesis([]byte(s)); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestGenesisValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		mod  func(g *Genesis)
		want string
	}{
		{"chain id", func(g *Genesis) { g.ChainID = "" }, "chain_id of 0 bytes"},
		{"long chain id", func(g *Genesis) { g.ChainID = strings.Repeat("x", 65) }, "chain_id of 65 bytes"},
		{"duplicate", func(g *Genesis) { g.Accounts[1].Address = g.Accounts[0].Address }, "accounts[1].address"},
		{"zero balance", func(g *Genesis) { g.Accounts[2].Balance = 0 }, "accounts[2].balance is 0"},
		{"supply overflow", func(g *Genesis) { g.Accounts[0].Balance = 1<<64 - 1 }, "total supply exceeds"},
		{"max tx bytes", func(g *Genesis) { g.Params.MaxTxBytes = 10 }, "params.max_tx_bytes is 10"},
		{"max tx bytes big", func(g *Genesis) { g.Params.MaxTxBytes = MaxTxBytes + 1 }, "params.max_tx_bytes"},
		{"max block txs", func(g *Genesis) { g.Params.MaxBlockTxs = 0 }, "params.max_block_txs is 0"},
		{"max block bytes", func(g *Genesis) { g.Params.MaxBlockBytes = 100 }, "params.max_block_bytes is 100"},
		{"max block bytes big", func(g *Genesis) { g.Params.MaxBlockBytes = MaxBlockBytesLimit + 1 }, "params.max_block_bytes"},
	} {
		g := testGenesis(3, 10)
		c.mod(g)
		if err := g.Validate(); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", c.name, err, c.want)
		}
	}
	g := testGenesis(3, 10)
	g.Params.MinFee = 0
	if err := g.Validate(); err != nil {
		t.Fatalf("free transactions: %v", err)
	}
}

// TestGenesisAppHash checks that the genesis app hash covers every field and does not depend on the order
// the accounts are listed in.
func TestGenesisAppHash(t *testing.T) {
	base := testGenesis(3, 10).AppHash()
	reordered := testGenesis(3, 10)
	reordered.Accounts[0], reordered.Accounts[2] = reordered.Accounts[2], reordered.Accounts[0]
	if reordered.AppHash() != base {
		t.Fatal("account order changes the genesis app hash")
	}
	for name, mod := range map[string]func(g *Genesis){
		"chain":     func(g *Genesis) { g.ChainID += "x" },
		"balance":   func(g *Genesis) { g.Accounts[1].Balance++ },
		"address":   func(g *Genesis) { g.Accounts[1].Address[5]++ },
		"account":   func(g *Genesis) { g.Accounts = g.Accounts[:2] },
		"max tx":    func(g *Genesis) { g.Params.MaxTxBytes++ },
		"max txs":   func(g *Genesis) { g.Params.MaxBlockTxs++ },
		"max block": func(g *Genesis) { g.Params.MaxBlockBytes++ },
		"min fee":   func(g *Genesis) { g.Params.MinFee++ },
	} {
		g := testGenesis(3, 10)
		mod(g)
		if g.AppHash() == base {
			t.Errorf("%s does not change the genesis app hash", name)
		}
	}
}
