package state

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
)

// TestScenarios runs the scripts in testdata/scenarios: the application's rules as data. Rewrite the expected
// output after an intended change with `go test ./ledger/state -run Scenarios -rewrite`; an app hash that
// changes in the output is a change of the protocol.
//
// Commands:
//
//	genesis [min_fee=F]        one "NAME BALANCE" per line; names are accounts (alice, bob, ... are keys)
//	block [proposer=NAME]      one transaction per line (see txLine); executes, persists and commits it
//	accounts                   every named account's balance and nonce
//	lookup                     one label per line: the transaction index entry
//	restart                    reopens the store and rebuilds the application from it
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		var sc *scenario
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "genesis":
				sc = newScenario(t, d)
				return ""
			case "block":
				return sc.block(t, d)
			case "accounts":
				return sc.accounts()
			case "lookup":
				return sc.lookup(t, d)
			case "restart":
				sc.n.restart()
				return fmt.Sprintf("height %d app_hash %s\n", sc.n.app.Height(), sc.n.app.AppHash().Short())
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

type scenario struct {
	n      *node
	names  []string          // named accounts, in first-mention order
	labels map[string][]byte // transaction label -> bytes
}

// who returns the key index of a named account, naming it on first use.
func (sc *scenario) who(name string) int {
	i := slices.Index(sc.names, name)
	if i < 0 {
		sc.names = append(sc.names, name)
		i = len(sc.names) - 1
	}
	return i
}

func newScenario(t *testing.T, d *datadriven.TestData) *scenario {
	sc := &scenario{labels: map[string][]byte{}}
	g := &Genesis{ChainID: testChain, Params: DefaultParams()}
	if d.HasArg("min_fee") {
		var f uint64
		d.ScanArgs(t, "min_fee", &f)
		g.Params.MinFee = Amount(f)
	}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		name, bal, _ := strings.Cut(line, " ")
		b, err := strconv.ParseUint(bal, 10, 64)
		if err != nil {
			t.Fatalf("genesis line %q: %v", line, err)
		}
		g.Accounts = append(g.Accounts, GenesisAccount{Address: addr(sc.who(name)), Balance: Amount(b)})
	}
	sc.n = newNode(t, g, Options{})
	return sc
}

// txLine parses "transfer FROM TO AMOUNT [fee=F] [nonce=N] [chain=C] [badsig] [as=LABEL]" or "dup LABEL"
// (the bytes of an earlier transaction again). The fee defaults to 1; the nonce to the sender's committed
// nonce plus its earlier transfers in the block. The label defaults to FROM/NONCE.
func (sc *scenario) txLine(t *testing.T, line string, pending map[int]uint64) (string, []byte) {
	f := strings.Fields(line)
	if f[0] == "dup" {
		raw, ok := sc.labels[f[1]]
		if !ok {
			t.Fatalf("no transaction %q", f[1])
		}
		return f[1], raw
	}
	if f[0] != "transfer" || len(f) < 4 {
		t.Fatalf("bad transaction line %q", line)
	}
	from, to := sc.who(f[1]), sc.who(f[2])
	amount, err := strconv.ParseUint(f[3], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	fee, chain, bad, label := uint64(1), testChain, false, ""
	nonce := sc.n.account(from).Nonce + pending[from]
	for _, opt := range f[4:] {
		k, v, _ := strings.Cut(opt, "=")
		switch k {
		case "fee":
			fee, _ = strconv.ParseUint(v, 10, 64)
		case "nonce":
			nonce, _ = strconv.ParseUint(v, 10, 64)
		case "chain":
			chain = v
		case "badsig":
			bad = true
		case "as":
			label = v
		default:
			t.Fatalf("unknown option %q", opt)
		}
	}
	pending[from]++
	raw, err := SignTransfer(testKey(from), chain, nonce, fee, addr(to), amount)
	if err != nil {
		t.Fatal(err)
	}
	if bad {
		raw[len(raw)-1] ^= 1
	}
	if label == "" {
		label = fmt.Sprintf("%s/%d", f[1], nonce)
	}
	sc.labels[label] = raw
	return label, raw
}

func (sc *scenario) block(t *testing.T, d *datadriven.TestData) string {
	proposer := "validator"
	if d.HasArg("proposer") {
		d.ScanArgs(t, "proposer", &proposer)
	}
	var txs [][]byte
	var labels []string
	pending := map[int]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		if line == "" {
			continue
		}
		l, raw := sc.txLine(t, line, pending)
		labels, txs = append(labels, l), append(txs, raw)
	}
	res, _ := sc.n.run(txs, addr(sc.who(proposer)))
	var b strings.Builder
	for i, r := range res.Txs {
		fmt.Fprintf(&b, "%s: %s", labels[i], r.Code)
		if r.Reason != "" {
			fmt.Fprintf(&b, ": %s", r.Reason)
		}
		b.WriteString("\n")
	}
	fmt.Fprintf(&b, "height %d app_hash %s\n", res.Height, res.AppHash.Short())
	return b.String()
}

func (sc *scenario) accounts() string {
	var b strings.Builder
	var supply uint64
	for i, name := range sc.names {
		a := sc.n.account(i)
		supply += a.Balance
		fmt.Fprintf(&b, "%s %d nonce=%d\n", name, a.Balance, a.Nonce)
	}
	fmt.Fprintf(&b, "supply %d (genesis %d)\n", supply, sc.n.g.TotalSupply())
	return b.String()
}

func (sc *scenario) lookup(t *testing.T, d *datadriven.TestData) string {
	var b strings.Builder
	for _, label := range strings.Fields(d.Input) {
		r, err := sc.n.app.TxResult(HashTx(sc.labels[label]))
		if err != nil {
			fmt.Fprintf(&b, "%s: %v\n", label, err)
			continue
		}
		fmt.Fprintf(&b, "%s: height %d index %d %s\n", label, r.Height, r.Index, r.Code)
	}
	return b.String()
}
