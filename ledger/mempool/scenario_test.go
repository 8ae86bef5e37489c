package mempool

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/shouldersnet/shoulders/ledger/state"
)

// TestScenarios runs the scripts in testdata/scenarios: admission, order and re-checking as data. Rewrite
// the expected output after an intended change with `go test ./ledger/mempool -run Scenarios -rewrite`.
//
// Commands:
//
//	genesis [min_fee=F] [max_txs=N] [max_bytes=B] [max_per_sender=N]
//	                         one "NAME BALANCE" per line
//	add                      one transaction per line, all in one Add: "transfer FROM TO AMOUNT [fee=F]
//	                         [nonce=N] [chain=C] [badsig] [as=LABEL]" or "dup LABEL"; the fee defaults to 1,
//	                         the nonce to the sender's next one in the mempool (then +1 per line)
//	reap [max_txs=N] [max_bytes=B]
//	block [proposer=NAME]    a block of the listed transactions (or, for the line "reap", what Reap gives),
//	                         executed, committed, then Update
//	pending                  the mempool's queues
func TestScenarios(t *testing.T) {
	datadriven.Walk(t, "testdata/scenarios", func(t *testing.T, path string) {
		var sc *scenario
		datadriven.RunTest(t, path, func(t *testing.T, d *datadriven.TestData) string {
			switch d.Cmd {
			case "genesis":
				sc = newScenario(t, d)
				return ""
			case "add":
				return sc.add(t, d)
			case "reap":
				maxTxs, maxBytes := 1000, 1<<20
				d.MaybeScanArgs(t, "max_txs", &maxTxs)
				d.MaybeScanArgs(t, "max_bytes", &maxBytes)
				return sc.list(sc.m.Reap(maxTxs, maxBytes))
			case "block":
				return sc.block(t, d)
			case "pending":
				return sc.pending()
			}
			t.Fatalf("unknown command %q", d.Cmd)
			return ""
		})
	})
}

type scenario struct {
	c      *chain
	m      *Mempool
	names  []string
	labels map[state.Hash]string
	byName map[string]*state.Tx
}

func (sc *scenario) who(name string) int {
	i := slices.Index(sc.names, name)
	if i < 0 {
		sc.names = append(sc.names, name)
		i = len(sc.names) - 1
	}
	return i
}

func newScenario(t *testing.T, d *datadriven.TestData) *scenario {
	sc := &scenario{labels: map[state.Hash]string{}, byName: map[string]*state.Tx{}}
	g := &state.Genesis{ChainID: chainID, Params: state.DefaultParams()}
	var minFee uint64 = 1
	d.MaybeScanArgs(t, "min_fee", &minFee)
	g.Params.MinFee = state.Amount(minFee)
	var cfg Config
	d.MaybeScanArgs(t, "max_txs", &cfg.MaxTxs)
	d.MaybeScanArgs(t, "max_bytes", &cfg.MaxBytes)
	d.MaybeScanArgs(t, "max_per_sender", &cfg.MaxPerSender)
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		name, bal, _ := strings.Cut(line, " ")
		b, err := strconv.ParseUint(bal, 10, 64)
		if err != nil {
			t.Fatalf("genesis line %q: %v", line, err)
		}
		g.Accounts = append(g.Accounts, state.GenesisAccount{Address: addr(sc.who(name)), Balance: state.Amount(b)})
	}
	sc.c = newChain(t, g)
	sc.m = New(sc.c.app, cfg)
	return sc
}

// parse turns the input's lines into labelled transactions.
func (sc *scenario) parse(t *testing.T, input string, defaultNonce func(from int) uint64) ([]string, []*state.Tx) {
	var labels []string
	var txs []*state.Tx
	extra := map[int]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(input), "\n") {
		f := strings.Fields(line)
		if len(f) == 0 {
			continue
		}
		if f[0] == "dup" {
			tx, ok := sc.byName[f[1]]
			if !ok {
				t.Fatalf("no transaction %q", f[1])
			}
			labels, txs = append(labels, f[1]), append(txs, tx)
			continue
		}
		if f[0] != "transfer" || len(f) < 4 {
			t.Fatalf("bad transaction line %q", line)
		}
		from, to := sc.who(f[1]), sc.who(f[2])
		amount, err := strconv.ParseUint(f[3], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		fee, chain, bad, label := uint64(1), chainID, false, ""
		nonce := defaultNonce(from) + extra[from]
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
		extra[from]++
		raw, err := state.SignTransfer(key(from), chain, nonce, fee, addr(to), amount)
		if err != nil {
			t.Fatal(err)
		}
		if bad {
			raw[len(raw)-1] ^= 1
		}
		tx, err := state.DecodeTx(raw)
		if err != nil {
			t.Fatal(err)
		}
		if label == "" {
			label = fmt.Sprintf("%s/%d", f[1], nonce)
		}
		sc.labels[tx.Hash()] = label
		sc.byName[label] = tx
		labels, txs = append(labels, label), append(txs, tx)
	}
	return labels, txs
}

func (sc *scenario) add(t *testing.T, d *datadriven.TestData) string {
	labels, txs := sc.parse(t, d.Input, func(from int) uint64 {
		sc.m.mu.Lock()
		defer sc.m.mu.Unlock()
		if s := sc.m.mu.senders[addr(from)]; s != nil {
			return s.next()
		}
		a, _ := sc.c.app.Account(addr(from))
		return a.Nonce
	})
	var b strings.Builder
	for i, err := range sc.m.Add(txs) {
		if err == nil {
			fmt.Fprintf(&b, "%s: ok\n", labels[i])
		} else {
			fmt.Fprintf(&b, "%s: %v\n", labels[i], err)
		}
	}
	return b.String()
}

func (sc *scenario) list(txs []*state.Tx) string {
	var b strings.Builder
	for _, tx := range txs {
		fmt.Fprintf(&b, "%s fee=%d\n", sc.labels[tx.Hash()], tx.Fee)
	}
	if len(txs) == 0 {
		b.WriteString("(none)\n")
	}
	return b.String()
}

func (sc *scenario) block(t *testing.T, d *datadriven.TestData) string {
	var raws [][]byte
	var labels []string
	var lines []string
	for _, line := range strings.Split(strings.TrimSpace(d.Input), "\n") {
		if strings.TrimSpace(line) == "reap" {
			for _, tx := range sc.m.Reap(1000, 1<<20) {
				raws, labels = append(raws, tx.Bytes()), append(labels, sc.labels[tx.Hash()])
			}
			continue
		}
		lines = append(lines, line)
	}
	if len(lines) > 0 {
		l, txs := sc.parse(t, strings.Join(lines, "\n"), func(from int) uint64 { a, _ := sc.c.app.Account(addr(from)); return a.Nonce })
		for i, tx := range txs {
			raws, labels = append(raws, tx.Bytes()), append(labels, l[i])
		}
	}
	res := sc.c.commit(raws, sc.m)
	if err := sc.m.Update(res); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for i, r := range res.Txs {
		fmt.Fprintf(&b, "%s: %s\n", labels[i], r.Code)
	}
	fmt.Fprintf(&b, "height %d, %d pending\n", res.Height, sc.m.Len())
	return b.String()
}

func (sc *scenario) pending() string {
	s := sc.m.Snapshot(100)
	var b strings.Builder
	fmt.Fprintf(&b, "%d pending, %d bytes, %d senders\n", s.Count, s.Bytes, s.Senders)
	// Queues in name order, for a stable listing.
	sc.m.mu.Lock()
	defer sc.m.mu.Unlock()
	for i, name := range sc.names {
		q := sc.m.mu.senders[addr(i)]
		if q == nil {
			continue
		}
		var ls []string
		for _, e := range q.txs {
			ls = append(ls, sc.labels[e.tx.Hash()])
		}
		fmt.Fprintf(&b, "%s: nonce %d balance %d spent %d: %s\n", name, q.base.Nonce, q.base.Balance, q.spent, strings.Join(ls, " "))
	}
	return b.String()
}
