package state

import (
	"bytes"
	"crypto/ed25519"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/store"
)

// node is one validator's application over a real store on an in-memory filesystem, driven the way the
// driver drives it: Execute, CommitHeight with the result's writes, Commit.
type node struct {
	t     testing.TB
	g     *Genesis
	fs    vfs.FS
	st    *store.Store
	app   *App
	vals  *consensus.ValidatorSet
	prev  consensus.Hash
	opts  Options
	known func(Hash) *Tx
}

// testGenesis funds accounts 0..n-1 with balance each.
func testGenesis(n int, balance uint64) *Genesis {
	g := &Genesis{ChainID: testChain, Params: DefaultParams()}
	for i := range n {
		g.Accounts = append(g.Accounts, GenesisAccount{Address: AddressFromKey(testKey(i)), Balance: Amount(balance)})
	}
	return g
}

func newNode(t testing.TB, g *Genesis, o Options) *node {
	n := &node{t: t, g: g, fs: vfs.NewMem(), opts: o}
	pub := testKey(1000).Public().(ed25519.PublicKey)
	cg := &consensus.Genesis{ChainID: g.ChainID, AppHash: g.AppHash(), Validators: []consensus.Validator{{PubKey: consensus.PublicKey(pub), Power: 1}}}
	vals, err := consensus.NewValidatorSet(cg.Validators)
	if err != nil {
		t.Fatal(err)
	}
	n.vals, n.prev = vals, cg.Hash()
	n.open()
	if err := n.st.Init(cg); err != nil {
		t.Fatal(err)
	}
	return n
}

// open (re)opens the store and builds the application from it.
func (n *node) open() {
	st, err := store.Open("db", store.Options{FS: n.fs})
	if err != nil {
		n.t.Fatal(err)
	}
	app, err := New(n.g, st, n.opts)
	if err != nil {
		n.t.Fatal(err)
	}
	n.st, n.app = st, app
}

// restart closes the store and rebuilds everything from what it holds.
func (n *node) restart() {
	if err := n.st.Close(); err != nil {
		n.t.Fatal(err)
	}
	n.open()
	if h := n.st.Height(); h != n.app.Height() {
		n.t.Fatalf("after restart the store is at %d, the app at %d", h, n.app.Height())
	}
	if h := n.st.Height(); h > 0 {
		b, err := n.st.Block(h)
		if err != nil {
			n.t.Fatal(err)
		}
		n.prev = b.Hash()
	}
}

// block builds the next block carrying txs.
func (n *node) block(txs [][]byte) *consensus.Block {
	b := &consensus.Block{Header: consensus.Header{Height: n.app.Height() + 1, PrevHash: n.prev, AppHash: n.app.AppHash()}, Txs: txs}
	b.Header.TxsHash = consensus.TxsHash(txs)
	return b
}

// run executes, persists and commits a block; it returns the result and every store write it made.
func (n *node) run(txs [][]byte, proposer Address) (*Result, [][2][]byte) {
	n.t.Helper()
	b := n.block(txs)
	if err := n.app.ValidateBlock(b); err != nil {
		n.t.Fatalf("ValidateBlock: %v", err)
	}
	res, err := n.app.Execute(b, proposer, n.known)
	if err != nil {
		n.t.Fatalf("Execute: %v", err)
	}
	var writes [][2][]byte
	d := &consensus.Decision{Block: b, Hash: b.Hash(), Certificate: &consensus.Certificate{Height: b.Header.Height, BlockHash: b.Hash()}, Next: n.vals}
	err = n.st.CommitHeight(d, nil, func(bt *store.Batch) error {
		return res.Write(func(k, v []byte) error {
			writes = append(writes, [2][]byte{bytes.Clone(k), bytes.Clone(v)})
			return bt.Set(k, v)
		})
	})
	if err != nil {
		n.t.Fatal(err)
	}
	if err := n.app.Commit(res); err != nil {
		n.t.Fatal(err)
	}
	n.prev = b.Hash()
	return res, writes
}

func (n *node) account(i int) Account { return n.acct(AddressFromKey(testKey(i))) }

func (n *node) acct(a Address) Account {
	n.t.Helper()
	acct, err := n.app.Account(a)
	if err != nil {
		n.t.Fatal(err)
	}
	return acct
}

func addr(i int) Address { return AddressFromKey(testKey(i)) }

func transfer(t testing.TB, from, nonce, fee uint64, to Address, amount uint64) []byte {
	raw, err := SignTransfer(testKey(int(from)), testChain, nonce, fee, to, amount)
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func TestTransfer(t *testing.T) {
	n := newNode(t, testGenesis(3, 1000), Options{})
	proposer := addr(100)
	tx1 := transfer(t, 0, 0, 2, addr(1), 300)
	tx2 := transfer(t, 0, 1, 3, addr(50), 10) // to an account that does not exist yet
	res, _ := n.run([][]byte{tx1, tx2}, proposer)
	for i, r := range res.Txs {
		if r.Code != CodeOK || r.Reason != "" || r.Height != 1 || r.Index != i || r.Hash != HashTx([][]byte{tx1, tx2}[i]) {
			t.Fatalf("result %d: %+v", i, r)
		}
	}
	for _, c := range []struct {
		a    Address
		want Account
	}{
		{addr(0), Account{Balance: 1000 - 302 - 13, Nonce: 2}},
		{addr(1), Account{Balance: 1300}},
		{addr(2), Account{Balance: 1000}},
		{addr(50), Account{Balance: 10}},
		{proposer, Account{Balance: 5}},
	} {
		if got := n.acct(c.a); got != c.want {
			t.Errorf("account %s: %+v, want %+v", c.a, got, c.want)
		}
	}
	if !slices.Equal(res.Touched, []Address{addr(0), addr(1), proposer, addr(50)}) {
		t.Errorf("touched %v", res.Touched)
	}
	got, err := n.app.TxResult(HashTx(tx2))
	if err != nil || got != res.Txs[1] {
		t.Fatalf("TxResult: %+v %v", got, err)
	}
	if _, err := n.app.TxResult(Hash{1}); !errors.Is(err, ErrTxNotFound) {
		t.Fatalf("unknown hash: %v", err)
	}
	if n.app.Height() != 1 || n.app.AppHash() != res.AppHash || res.AppHash == n.g.AppHash() {
		t.Fatalf("height %d app hash %s", n.app.Height(), n.app.AppHash())
	}
	// Everything survives a restart: accounts, the index, the height and the app hash.
	n.restart()
	if got := n.account(0); got != (Account{Balance: 685, Nonce: 2}) {
		t.Fatalf("after restart: %+v", got)
	}
	if got, err := n.app.TxResult(HashTx(tx1)); err != nil || got != res.Txs[0] {
		t.Fatalf("TxResult after restart: %+v %v", got, err)
	}
	if n.app.Height() != 1 || n.app.AppHash() != res.AppHash {
		t.Fatal("height or app hash lost in the restart")
	}
}

// TestSkipped checks every reason a transaction in a block is skipped: it gets its code and a reason that
// names what was wrong, and nothing else changes.
func TestSkipped(t *testing.T) {
	n := newNode(t, testGenesis(3, 1000), Options{})
	n.run([][]byte{transfer(t, 0, 0, 1, addr(1), 1)}, addr(100)) // account 0 at nonce 1

	otherChain, _ := SignTransfer(testKey(0), "another-chain", 1, 1, addr(1), 1)
	badSig := transfer(t, 0, 1, 1, addr(1), 1)
	badSig[len(badSig)-1] ^= 1
	oversized := append(transfer(t, 0, 1, 1, addr(1), 1), make([]byte, 9000)...) // over max_tx_bytes (8192)
	unknown := transfer(t, 0, 1, 1, addr(1), 1)
	unknown[2+len(testChain)+49] = 77
	for _, c := range []struct {
		name string
		raw  []byte
		code Code
		want string
	}{
		{"wrong chain", otherChain, CodeWrongChain, `chain_id "another-chain", this chain is "shoulders-test"`},
		{"bad signature", badSig, CodeBadSignature, "signature does not verify"},
		{"fee too low", transfer(t, 0, 1, 0, addr(1), 1), CodeFeeTooLow, "fee 0, the chain's min_fee is 1"},
		{"old nonce", transfer(t, 0, 0, 1, addr(1), 2), CodeBadNonce, "nonce 0, the sender's next nonce is 1"},
		{"future nonce", transfer(t, 0, 5, 1, addr(1), 1), CodeBadNonce, "nonce 5, the sender's next nonce is 1"},
		{"insufficient", transfer(t, 0, 1, 1, addr(1), 998), CodeInsufficientFunds, "the sender has 998, the transaction needs 999 (transfer 998 + fee 1)"},
		{"overflow", transfer(t, 0, 1, 2, addr(1), 1<<64-1), CodeInsufficientFunds, "overflows"},
		{"no account", transfer(t, 7, 0, 1, addr(1), 1), CodeInsufficientFunds, "the sender has 0"},
		{"oversized", oversized, CodeOversized, "max_tx_bytes is 8192"},
		{"malformed", []byte("not a transaction"), CodeMalformed, "smallest transaction"},
		{"unknown kind", unknown, CodeUnknownKind, "kind 77"},
	} {
		b := n.block([][]byte{c.raw})
		before := [4]Account{n.account(0), n.account(1), n.account(7), n.acct(addr(100))}
		res, err := n.app.Execute(b, addr(100), nil)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		r := res.Txs[0]
		if r.Code != c.code || !strings.Contains(r.Reason, c.want) {
			t.Errorf("%s: %v %q, want %v %q", c.name, r.Code, r.Reason, c.code, c.want)
		}
		if len(res.Touched) != 0 {
			t.Errorf("%s: a skipped transaction changed %v", c.name, res.Touched)
		}
		if after := [4]Account{n.account(0), n.account(1), n.account(7), n.acct(addr(100))}; after != before {
			t.Errorf("%s: Execute changed what readers see", c.name)
		}
	}
	// Exactly the whole balance is fine.
	res, _ := n.run([][]byte{transfer(t, 0, 1, 1, addr(1), 997)}, addr(100))
	if res.Txs[0].Code != CodeOK || n.account(0).Balance != 0 {
		t.Fatalf("spending the whole balance: %+v, %+v", res.Txs[0], n.account(0))
	}
}

// TestTxIndexKeepsSuccess checks that a transaction included again (which fails on its nonce) never hides
// its success, and that a failure followed by a success of the same bytes reports the success.
func TestTxIndexKeepsSuccess(t *testing.T) {
	n := newNode(t, testGenesis(2, 1000), Options{})
	tx0 := transfer(t, 0, 0, 1, addr(1), 5)
	tx1 := transfer(t, 0, 1, 1, addr(1), 5)
	res, _ := n.run([][]byte{tx1, tx0, tx1, tx0}, addr(100)) // tx1 fails, tx0 ok, tx1 ok, tx0 fails
	codes := []Code{res.Txs[0].Code, res.Txs[1].Code, res.Txs[2].Code, res.Txs[3].Code}
	if !slices.Equal(codes, []Code{CodeBadNonce, CodeOK, CodeOK, CodeBadNonce}) {
		t.Fatalf("codes %v", codes)
	}
	n.run([][]byte{tx0}, addr(100)) // fails again, later
	for raw, idx := range map[*[]byte]int{&tx0: 1, &tx1: 2} {
		got, err := n.app.TxResult(HashTx(*raw))
		if err != nil || got.Code != CodeOK || got.Height != 1 || got.Index != idx {
			t.Errorf("TxResult: %+v %v, want success at 1/%d", got, err, idx)
		}
	}
	bad := transfer(t, 1, 9, 1, addr(0), 5)
	n.run([][]byte{bad}, addr(100))
	n.run([][]byte{bad}, addr(100))
	if got, _ := n.app.TxResult(HashTx(bad)); got.Height != 3 || got.Code != CodeBadNonce {
		t.Errorf("a failure repeated later must keep its first entry: %+v", got)
	}
}

func TestTwoPhase(t *testing.T) {
	n := newNode(t, testGenesis(2, 1000), Options{})
	b := n.block([][]byte{transfer(t, 0, 0, 1, addr(1), 5)})
	res, err := n.app.Execute(b, addr(100), nil)
	if err != nil {
		t.Fatal(err)
	}
	if n.app.Height() != 0 || n.app.AppHash() != n.g.AppHash() || n.account(0).Balance != 1000 {
		t.Fatal("Execute changed committed state")
	}
	// Executing again gives the same result (nothing was applied).
	res2, _ := n.app.Execute(b, addr(100), nil)
	if res2.AppHash != res.AppHash {
		t.Fatal("a second Execute of the same block differs")
	}
	// Execute refuses blocks out of order or on another app hash.
	bad := *b
	bad.Header.Height = 2
	if _, err := n.app.Execute(&bad, addr(100), nil); !errors.Is(err, ErrHeight) {
		t.Fatalf("height 2 first: %v", err)
	}
	bad = *b
	bad.Header.AppHash = consensus.Hash{1}
	if _, err := n.app.Execute(&bad, addr(100), nil); !errors.Is(err, ErrAppHash) {
		t.Fatalf("wrong app hash: %v", err)
	}
	if err := n.app.Commit(res); err != nil {
		t.Fatal(err)
	}
	if err := n.app.Commit(res2); !errors.Is(err, ErrHeight) {
		t.Fatalf("committing a stale result: %v", err)
	}
	if n.account(0).Balance != 994 || n.app.Height() != 1 || n.app.AppHash() != res.AppHash {
		t.Fatal("Commit did not publish the result")
	}
}

func TestValidateBlock(t *testing.T) {
	g := testGenesis(2, 1000)
	g.Params.MaxBlockTxs = 3
	g.Params.MaxTxBytes = 200
	g.Params.MaxBlockBytes = 340 // two transfers of 170 bytes
	n := newNode(t, g, Options{})
	good := transfer(t, 0, 0, 1, addr(1), 5)
	badSig := append([]byte(nil), good...)
	badSig[len(badSig)-1] ^= 1
	if err := n.app.ValidateBlock(n.block([][]byte{good, badSig})); err != nil {
		t.Fatalf("a block with a tx that will be skipped is valid: %v", err)
	}
	if err := n.app.ValidateBlock(n.block([][]byte{transfer(t, 0, 9, 0, addr(1), 5)})); err != nil {
		t.Fatalf("a block with a tx that will be skipped is valid: %v", err)
	}
	if err := n.app.ValidateBlock(n.block(nil)); err != nil {
		t.Fatalf("an empty block is valid: %v", err)
	}
	for _, c := range []struct {
		name string
		b    *consensus.Block
		err  error
		want string
	}{
		{"too many", n.block([][]byte{good, good, good, good}), ErrInvalidBlock, "4 transactions, max_block_txs is 3"},
		{"too big", n.block([][]byte{good, good, good[:100]}), ErrInvalidBlock, "transactions of more than 340 bytes (max_block_bytes) by tx 2"},
		{"oversized", n.block([][]byte{make([]byte, 201)}), ErrInvalidBlock, "tx 0 has 201 bytes, max_tx_bytes is 200"},
		{"malformed", n.block([][]byte{good, good[:100]}), ErrInvalidBlock, "tx 1: state: malformed"},
		{"app hash", func() *consensus.Block { b := n.block(nil); b.Header.AppHash[0]++; return b }(), ErrAppHash, "header app_hash"},
		{"height", func() *consensus.Block { b := n.block(nil); b.Header.Height = 5; return b }(), ErrHeight, "height 5"},
	} {
		if err := n.app.ValidateBlock(c.b); !errors.Is(err, c.err) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.err, c.want)
		}
	}
}

// TestKnownTxsAreNotVerifiedAgain checks that Execute trusts the verification of a transaction handed to it
// by known (the mempool), and only that.
func TestKnownTxsAreNotVerifiedAgain(t *testing.T) {
	n := newNode(t, testGenesis(2, 1000), Options{})
	raw := transfer(t, 0, 0, 1, addr(1), 5)
	raw[len(raw)-1] ^= 1 // a bad signature...
	tx, _ := DecodeTx(raw)
	tx.verified.Store(true) // ...that a (hypothetical, broken) mempool claims to have verified
	n.known = func(h Hash) *Tx {
		if h == tx.Hash() {
			return tx
		}
		return nil
	}
	res, _ := n.run([][]byte{raw}, addr(100))
	if res.Txs[0].Code != CodeOK {
		t.Fatalf("the known tx was verified again: %+v", res.Txs[0])
	}
	n.known = func(Hash) *Tx { return tx } // a lookup that returns the wrong tx is ignored
	other := transfer(t, 0, 1, 1, addr(1), 5)
	other[len(other)-1] ^= 1
	if res, _ := n.run([][]byte{other}, addr(100)); res.Txs[0].Code != CodeBadSignature {
		t.Fatalf("a tx the lookup does not know was not verified: %+v", res.Txs[0])
	}
}

func TestNewRefusesOtherGenesis(t *testing.T) {
	n := newNode(t, testGenesis(2, 1000), Options{})
	n.run([][]byte{transfer(t, 0, 0, 1, addr(1), 5)}, addr(100))
	if _, err := New(testGenesis(3, 1000), n.st, Options{}); err == nil || !strings.Contains(err.Error(), "another genesis") &&
		!strings.Contains(err.Error(), "not of this genesis") {
		t.Fatalf("New with another genesis: %v", err)
	}
}

// randomBlock returns a block of random transfers among accounts 0..nacct-1 (and a few fresh ones), with
// about a quarter of them invalid in one way or another.
func randomBlock(t testing.TB, rng *rand.Rand, nonces []uint64, nacct int) [][]byte {
	n := rng.IntN(40)
	txs := make([][]byte, 0, n)
	for range n {
		from := rng.IntN(nacct)
		to := addr(rng.IntN(nacct + 5))
		amount := 1 + rng.Uint64N(400)
		fee := 1 + rng.Uint64N(3)
		nonce := nonces[from]
		var raw []byte
		switch rng.IntN(12) {
		case 0:
			nonce += 1 + rng.Uint64N(2) // a gap
		case 1:
			if nonce > 0 {
				nonce-- // replay
			}
		case 2:
			amount = 1 << 62 // more than anyone has
		case 3:
			fee = 0
		case 4:
			raw = transfer(t, uint64(from), nonce, fee, to, amount)
			raw[len(raw)-3] ^= 4
		case 5:
			if len(txs) > 0 {
				raw = txs[rng.IntN(len(txs))] // a duplicate
			}
		}
		if raw == nil {
			raw = transfer(t, uint64(from), nonce, fee, to, amount)
		}
		if nonce == nonces[from] {
			nonces[from]++ // the generator's guess; the chain decides
		}
		txs = append(txs, raw)
	}
	return txs
}

// TestDeterminismAndConservation executes the same random blocks on two validators, one of which restarts
// from its store now and then and has a tiny account cache: every block must give both the same app hash
// and the same store writes, and the total supply must stay exactly the genesis supply.
func TestDeterminismAndConservation(t *testing.T) {
	const nacct = 12
	g := testGenesis(nacct, 10_000)
	a := newNode(t, g, Options{})
	b := newNode(t, g, Options{CachedAccounts: 3})
	rng := rand.New(rand.NewPCG(7, 7))
	nonces := make([]uint64, nacct)
	everyone := []Address{}
	for i := range nacct + 5 {
		everyone = append(everyone, addr(i))
	}
	proposers := []Address{addr(100), addr(101), addr(3)}
	everyone = append(everyone, addr(100), addr(101))
	ok := 0
	for h := 1; h <= 150; h++ {
		txs := randomBlock(t, rng, nonces, nacct)
		proposer := proposers[rng.IntN(len(proposers))]
		ra, wa := a.run(txs, proposer)
		rb, wb := b.run(txs, proposer)
		if ra.AppHash != rb.AppHash {
			t.Fatalf("height %d: app hashes differ", h)
		}
		if !slices.EqualFunc(wa, wb, func(x, y [2][]byte) bool { return bytes.Equal(x[0], y[0]) && bytes.Equal(x[1], y[1]) }) {
			t.Fatalf("height %d: store writes differ", h)
		}
		var supply uint64
		for _, who := range everyone {
			supply += a.acct(who).Balance
			if a.acct(who) != b.acct(who) {
				t.Fatalf("height %d: account %s differs", h, who)
			}
		}
		if supply != g.TotalSupply() {
			t.Fatalf("height %d: supply %d, genesis %d", h, supply, g.TotalSupply())
		}
		for _, r := range ra.Txs {
			if r.Code == CodeOK {
				ok++
			}
		}
		if h%17 == 0 {
			b.restart()
		}
		// Resync the generator's nonces with the chain's.
		for i := range nonces {
			nonces[i] = a.account(i).Nonce
		}
	}
	if ok < 1000 {
		t.Fatalf("only %d transactions applied: the test is not exercising transfers", ok)
	}
}

// TestConcurrentReads reads accounts and the app hash while the driver executes and commits.
func TestConcurrentReads(t *testing.T) {
	g := testGenesis(4, 1_000_000)
	n := newNode(t, g, Options{CachedAccounts: 4})
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for r := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var last uint64
			for {
				select {
				case <-stop:
					return
				default:
				}
				h := n.app.Height()
				if h < last {
					t.Errorf("reader %d: height went back from %d to %d", r, last, h)
					return
				}
				last = h
				for i := range 4 {
					if _, err := n.app.Account(addr(i)); err != nil {
						t.Error(err)
						return
					}
				}
				_ = n.app.AppHash()
			}
		}()
	}
	for h := range 60 {
		var txs [][]byte
		for i := range 4 {
			txs = append(txs, transfer(t, uint64(i), uint64(h), 1, addr((i+1)%4), 10))
		}
		res, _ := n.run(txs, addr(100))
		for _, r := range res.Txs {
			if r.Code != CodeOK {
				t.Fatalf("height %d: %+v", h+1, r)
			}
		}
	}
	close(stop)
	wg.Wait()
	var supply uint64
	for i := range 4 {
		supply += n.account(i).Balance
	}
	if supply+n.acct(addr(100)).Balance != g.TotalSupply() {
		t.Fatal("supply not conserved")
	}
}

func ExampleApp() {
	g := &Genesis{ChainID: "example", Params: DefaultParams(),
		Accounts: []GenesisAccount{{Address: AddressFromKey(testKey(0)), Balance: 100}}}
	fs := vfs.NewMem()
	st, _ := store.Open("db", store.Options{FS: fs})
	app, _ := New(g, st, Options{})
	raw, _ := SignTransfer(testKey(0), "example", 0, 1, AddressFromKey(testKey(1)), 40)
	b := &consensus.Block{Header: consensus.Header{Height: 1, AppHash: app.AppHash()}, Txs: [][]byte{raw}}
	res, _ := app.Execute(b, AddressFromKey(testKey(9)), nil)
	d := &consensus.Decision{Block: b, Hash: b.Hash(), Certificate: &consensus.Certificate{Height: 1, BlockHash: b.Hash()},
		Next: mustVals()}
	_ = st.CommitHeight(d, nil, func(bt *store.Batch) error { return res.Write(bt.Set) })
	_ = app.Commit(res)
	from, _ := app.Account(AddressFromKey(testKey(0)))
	to, _ := app.Account(AddressFromKey(testKey(1)))
	fmt.Println(res.Txs[0].Code, from.Balance, from.Nonce, to.Balance)
	// Output: ok 59 1 40
}

func mustVals() *consensus.ValidatorSet {
	v, _ := consensus.NewValidatorSet([]consensus.Validator{{PubKey: consensus.PublicKey{1}, Power: 1}})
	return v
}
