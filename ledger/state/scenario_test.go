package state

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/cockroachdb/datadriven"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
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
//	datanet NAME               the datanet, its versions and its records (contribution order)
//
// Datanet transactions in a block: "create FROM NAME [type=text|binary]", "contribute FROM NAME REC...",
// "approve FROM NAME REC...", "reject FROM NAME REC...", where REC is a word naming a record whose content is
// that word (a raw CID over its bytes), or WORD*SIZE for a record of SIZE bytes named by a CID over WORD
// (a manifest CID when SIZE is over RawBlockMax). Every line takes the options of transfer lines.
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
			case "datanet":
				return sc.datanet(t, d)
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
	n       *node
	names   []string          // named accounts, in first-mention order
	labels  map[string][]byte // transaction label -> bytes
	refused []string          // lines of the current block that Sign refused
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
	if len(f) < 3 {
		t.Fatalf("bad transaction line %q", line)
	}
	from := sc.who(f[1])
	var payload Payload
	var opts, args []string
	for _, w := range f[3:] {
		if strings.Contains(w, "=") || w == "badsig" {
			opts = append(opts, w)
		} else {
			args = append(args, w)
		}
	}
	switch f[0] {
	case "transfer":
		amount, err := strconv.ParseUint(args[0], 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		payload = &Transfer{To: addr(sc.who(f[2])), Amount: amount}
	case "create":
		typ := RecordText
		for _, o := range opts {
			if v, ok := strings.CutPrefix(o, "type="); ok {
				typ, _ = ParseRecordType(v)
			}
		}
		payload = &DatanetCreate{Name: f[2], RecordType: typ, License: "CC-BY-4.0", Tags: []string{"test"}}
	case "contribute":
		p := &DatanetContribute{Datanet: f[2]}
		for _, a := range args {
			c, size := recordArg(t, a)
			p.Records = append(p.Records, RecordRef{CID: c, Size: size})
		}
		payload = p
	case "approve", "reject":
		var cids [][]byte
		for _, a := range args {
			c, _ := recordArg(t, a)
			cids = append(cids, c)
		}
		if f[0] == "approve" {
			payload = &DatanetApprove{Datanet: f[2], CIDs: cids}
		} else {
			payload = &DatanetReject{Datanet: f[2], CIDs: cids}
		}
	default:
		t.Fatalf("bad transaction line %q", line)
	}
	fee, chain, bad, label := uint64(1), testChain, false, ""
	nonce := sc.n.account(from).Nonce + pending[from]
	for _, opt := range opts {
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
		case "type":
		default:
			t.Fatalf("unknown option %q", opt)
		}
	}
	pending[from]++
	raw, err := Sign(testKey(from), chain, nonce, fee, payload)
	if err != nil {
		// Sign refuses what DecodeTx would: such bytes cannot be in a valid block.
		sc.refused = append(sc.refused, fmt.Sprintf("%s: not signed: %v", line, err))
		return "", nil
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
		if raw != nil {
			labels, txs = append(labels, l), append(txs, raw)
		}
	}
	res, _ := sc.n.run(txs, addr(sc.who(proposer)))
	var b strings.Builder
	for _, r := range sc.refused {
		b.WriteString(r + "\n")
	}
	sc.refused = nil
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

// recordArg turns a scenario's record word into a CID and size (see TestScenarios).
func recordArg(t testing.TB, w string) ([]byte, uint64) {
	word, sz, sized := strings.Cut(w, "*")
	size := uint64(len(word))
	if sized {
		var err error
		if size, err = strconv.ParseUint(sz, 10, 64); err != nil {
			t.Fatalf("record %q: %v", w, err)
		}
	}
	sum := sha256.Sum256([]byte(word))
	m, _ := mh.Encode(sum[:], mh.SHA2_256)
	codec := uint64(cid.Raw)
	if size > RawBlockMax {
		codec = CodecManifest
	}
	return cid.NewCidV1(codec, m).Bytes(), size
}

func (sc *scenario) datanet(t *testing.T, d *datadriven.TestData) string {
	name := strings.TrimSpace(d.CmdArgs[0].Key)
	var b strings.Builder
	dn, err := sc.n.app.Datanet(name)
	if err != nil {
		return err.Error() + "\n"
	}
	fmt.Fprintf(&b, "datanet %s owner=%s type=%s versions=%d approved=%d contributed=%d pending=%d rejected=%d\n",
		dn.Name, sc.name(dn.Owner), dn.RecordType, dn.Versions, dn.Approved, dn.Contributed, dn.Pending, dn.Rejected)
	vs, err := sc.n.app.Versions(name)
	if err != nil {
		t.Fatal(err)
	}
	for _, v := range vs {
		recs, err := sc.n.app.Records(name, RecordQuery{Version: v.Version})
		if err != nil {
			t.Fatal(err)
		}
		check := "root ok"
		if VersionRoot(recs) != v.Root {
			check = "ROOT MISMATCH"
		}
		fmt.Fprintf(&b, "version %d records=%d added=%d height=%d root=%s… (%s)\n", v.Version, v.Records, v.Added, v.Height, v.Root[len(v.Root)-6:], check)
	}
	recs, err := sc.n.app.Records(name, RecordQuery{})
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		fmt.Fprintf(&b, "record %d …%s size=%d by=%s %s", r.Seq, r.CID[len(r.CID)-6:], r.Size, sc.name(r.Contributor), r.Status)
		if r.Status == RecordApproved {
			fmt.Fprintf(&b, " version=%d position=%d", r.Version, r.Position)
		}
		b.WriteString("\n")
	}
	return b.String()
}

// name returns the scenario name of an address.
func (sc *scenario) name(a Address) string {
	for i, n := range sc.names {
		if addr(i) == a {
			return n
		}
	}
	return a.String()
}
