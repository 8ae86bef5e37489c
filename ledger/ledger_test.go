package ledger

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/p2p"
	"github.com/shouldersnet/shoulders/p2p/catalog"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(f string, a ...any) {
	panic(fmt.Sprintf(f, a...))
}

// testNode is one node of an in-process chain: a real host on loopback TCP, its p2p layer and its ledger.
type testNode struct {
	key    crypto.PrivKey
	net    *p2p.Network
	ledger *Ledger
	cancel context.CancelFunc
	done   chan error
}

// testChain builds the genesis of a chain of the given validator keys, funding accounts.
func testChain(t testing.TB, validators []crypto.PrivKey, funded map[state.Address]uint64) *Genesis {
	t.Helper()
	app := state.Genesis{ChainID: "test-chain", Params: state.DefaultParams()}
	for addr, bal := range funded {
		app.Accounts = append(app.Accounts, state.GenesisAccount{Address: addr, Balance: state.Amount(bal)})
	}
	raw, err := json.Marshal(app)
	if err != nil {
		t.Fatal(err)
	}
	g := &Genesis{ChainID: "test-chain", Time: time.Unix(1_790_000_000, 0).UTC(), App: raw}
	for _, k := range validators {
		id, _ := peer.IDFromPrivateKey(k)
		g.Validators = append(g.Validators, GenesisValidator{Address: id.String(), Power: 10})
	}
	if _, err := g.Consensus(); err != nil {
		t.Fatal(err)
	}
	return g
}

func newKey(t testing.TB) crypto.PrivKey {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// startNode starts a node of the chain with key, storing its ledger in dir; validator says whether it votes.
func startNode(t testing.TB, g *Genesis, key crypto.PrivKey, dir string, validator bool) *testNode {
	t.Helper()
	h, err := p2p.NewHost(p2p.HostConfig{Key: key, Listen: []string{"/ip4/127.0.0.1/tcp/0"}})
	if err != nil {
		t.Fatal(err)
	}
	db, err := pebble.Open("catalog", &pebble.Options{FS: vfs.NewMem(), Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	cat, err := catalog.Open(db, catalog.Config{Network: "test", Now: time.Now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	net, err := p2p.New(h, cat, p2p.Config{Network: "test", Log: quiet, NoDiscovery: true})
	if err != nil {
		t.Fatal(err)
	}
	l, err := Open(Options{Dir: dir, Genesis: g, Key: key, Validator: validator, Net: net, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	n := &testNode{key: key, net: net, ledger: l, cancel: cancel, done: make(chan error, 2)}
	go func() { n.done <- net.Run(ctx) }()
	go func() { n.done <- l.Run(ctx) }()
	t.Cleanup(func() { n.stop(t); h.Close(); db.Close() })
	return n
}

func (n *testNode) stop(t testing.TB) {
	if n.cancel == nil {
		return
	}
	n.cancel()
	n.cancel = nil
	for range 2 {
		if err := <-n.done; err != nil {
			t.Errorf("node stopped with %v", err)
		}
	}
	n.ledger.Close()
}

func connectAll(t testing.TB, nodes []*testNode) {
	t.Helper()
	for i, a := range nodes {
		for _, b := range nodes[i+1:] {
			h := b.net.Host()
			if err := a.net.Host().Connect(context.Background(), peer.AddrInfo{ID: h.ID(), Addrs: h.Addrs()}); err != nil {
				t.Fatal(err)
			}
		}
	}
}

// waitHeight waits until every node has committed height h.
func waitHeight(t testing.TB, nodes []*testNode, h uint64, within time.Duration) {
	t.Helper()
	deadline := time.NewTimer(within)
	defer deadline.Stop()
	for _, n := range nodes {
		for {
			changed := n.ledger.Driver().Heights()
			if n.ledger.Store().Height() >= h {
				break
			}
			select {
			case <-changed:
			case <-deadline.C:
				t.Fatalf("after %v a node is at height %d, want %d", within, n.ledger.Store().Height(), h)
			}
		}
	}
}

func TestFourValidatorsCommitTransfers(t *testing.T) {
	keys := []crypto.PrivKey{newKey(t), newKey(t), newKey(t), newKey(t)}
	alice, _ := state.KeyFromLibp2p(newKey(t))
	bob := state.AddressFromKey(mustKey(t))
	g := testChain(t, keys, map[state.Address]uint64{state.AddressFromKey(alice): 1_000_000})
	dir := t.TempDir()
	var nodes []*testNode
	for i, k := range keys {
		nodes = append(nodes, startNode(t, g, k, filepath.Join(dir, fmt.Sprint(i)), true))
	}
	connectAll(t, nodes)
	waitHeight(t, nodes, 2, 30*time.Second)

	// Ten transfers from alice to bob, submitted to one validator, each waited for.
	fee := uint64(state.DefaultParams().MinFee)
	var waits []func(context.Context) (state.TxResult, error)
	for nonce := range uint64(10) {
		raw, err := state.SignTransfer(alice, g.ChainID, nonce, fee, bob, 100)
		if err != nil {
			t.Fatal(err)
		}
		waits = append(waits, nodes[1].ledger.Driver().Waiter(state.HashTx(raw)))
		res, err := nodes[1].ledger.Submit([][]byte{raw})
		if err != nil || res[0].Err != nil {
			t.Fatalf("submit: %v %v", err, res[0].Err)
		}
	}
	last := waitAll(t, waits)
	waitHeight(t, nodes, last, 30*time.Second)
	for i, n := range nodes {
		acct, err := n.ledger.App().Account(bob)
		if err != nil || acct.Balance != 1000 {
			t.Fatalf("node %d: bob has %+v, %v", i, acct, err)
		}
		b0, _ := nodes[0].ledger.Store().Block(last)
		b, _ := n.ledger.Store().Block(last)
		if b.Hash() != b0.Hash() {
			t.Fatalf("node %d committed another block at height %d", i, last)
		}
	}
}

func mustKey(t testing.TB) ed25519.PrivateKey {
	k, err := state.KeyFromLibp2p(newKey(t))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// submitTransfers submits n transfers from key (nonces from first) to one node and returns their waiters.
func submitTransfers(t testing.TB, g *Genesis, n *testNode, key ed25519.PrivateKey, first uint64, count int, to state.Address) []func(context.Context) (state.TxResult, error) {
	t.Helper()
	var raws [][]byte
	var waits []func(context.Context) (state.TxResult, error)
	for nonce := first; nonce < first+uint64(count); nonce++ {
		raw, err := state.SignTransfer(key, g.ChainID, nonce, uint64(state.DefaultParams().MinFee), to, 1)
		if err != nil {
			t.Fatal(err)
		}
		raws = append(raws, raw)
		waits = append(waits, n.ledger.Driver().Waiter(state.HashTx(raw)))
	}
	res, err := n.ledger.Submit(raws)
	if err != nil {
		t.Fatal(err)
	}
	for i, r := range res {
		if r.Err != nil {
			t.Fatalf("transfer %d refused: %v", i, r.Err)
		}
	}
	return waits
}

func waitAll(t testing.TB, waits []func(context.Context) (state.TxResult, error)) uint64 {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var last uint64
	for i, w := range waits {
		r, err := w(ctx)
		if err != nil || r.Code != state.CodeOK {
			t.Fatalf("transfer %d: %+v, %v", i, r, err)
		}
		last = max(last, r.Height)
	}
	return last
}

// sameChain checks that the nodes hold the same blocks and app hashes up to height h.
func sameChain(t testing.TB, nodes []*testNode, h uint64) {
	t.Helper()
	for height := uint64(1); height <= h; height++ {
		b0, err := nodes[0].ledger.Store().Block(height)
		if err != nil {
			t.Fatal(err)
		}
		for i, n := range nodes[1:] {
			b, err := n.ledger.Store().Block(height)
			if err != nil || b.Hash() != b0.Hash() || b.Header.AppHash != b0.Header.AppHash {
				t.Fatalf("node %d disagrees at height %d: %v", i+1, height, err)
			}
		}
	}
}

// A validator that was down while the others went on syncs the blocks it missed, checks each, and votes
// again; an observer follows the chain by sync from the start.
func TestAValidatorThatWasDownSyncsAndRejoins(t *testing.T) {
	keys := []crypto.PrivKey{newKey(t), newKey(t), newKey(t), newKey(t)}
	alice := mustKey(t)
	bob := state.AddressFromKey(mustKey(t))
	g := testChain(t, keys, map[state.Address]uint64{state.AddressFromKey(alice): 1_000_000})
	dir := t.TempDir()
	var nodes []*testNode
	for i, k := range keys {
		nodes = append(nodes, startNode(t, g, k, filepath.Join(dir, fmt.Sprint(i)), true))
	}
	observer := startNode(t, g, newKey(t), filepath.Join(dir, "observer"), false)
	connectAll(t, append(nodes, observer))
	waitHeight(t, nodes, 2, 30*time.Second)

	nodes[3].stop(t)
	down := nodes[3].ledger.Store().Height()
	waitAll(t, submitTransfers(t, g, nodes[0], alice, 0, 50, bob))
	up := nodes[:3]
	waitHeight(t, up, down+20, 60*time.Second)

	nodes[3] = startNode(t, g, keys[3], filepath.Join(dir, "3"), true)
	connectAll(t, append(nodes, observer))
	// It catches up, and then the chain goes on with it: more transfers, committed by all four.
	head := nodes[0].ledger.Store().Height()
	waitHeight(t, nodes[3:], head, 60*time.Second)
	last := waitAll(t, submitTransfers(t, g, nodes[3], alice, 50, 20, bob))
	waitHeight(t, append(nodes, observer), last, 60*time.Second)
	sameChain(t, append(nodes, observer), last)
	for _, n := range append(nodes, observer) {
		if acct, _ := n.ledger.App().Account(bob); acct.Balance != 70 {
			t.Fatalf("bob's balance %d, want 70", acct.Balance)
		}
	}
	// The restarted validator takes part again: over the next 20 heights it proposes a block (the proposer
	// turns round-robin) or signs a certificate (which holds the first two thirds of precommits, so not
	// every one carries its signature).
	waitHeight(t, nodes, head+20, 60*time.Second)
	active := false
	for h := head + 1; h <= head+20 && !active; h++ {
		c, err := nodes[0].ledger.Store().Certificate(h)
		if err != nil {
			t.Fatal(err)
		}
		b, err := nodes[0].ledger.Store().Block(h)
		if err != nil {
			t.Fatal(err)
		}
		active = c.Signers.Has(3) || b.Header.Proposer == 3
	}
	if !active {
		t.Fatalf("the restarted validator neither proposed nor signed any of heights %d..%d", head+1, head+20)
	}

	// Transactions submitted to the observer, which never proposes, reach the validators by gossip.
	waits := submitTransfers(t, g, observer, alice, 70, 10, bob)
	last = waitAll(t, waits)
	waitHeight(t, append(nodes, observer), last, 60*time.Second)
	for _, n := range append(nodes, observer) {
		if acct, _ := n.ledger.App().Account(bob); acct.Balance != 80 {
			t.Fatalf("bob's balance %d, want 80", acct.Balance)
		}
	}
}

// Bad transactions are refused with a reason that names what was wrong, and change nothing.
func TestBadTransactionsAreRefusedWithReasons(t *testing.T) {
	keys := []crypto.PrivKey{newKey(t)}
	alice, mallory := mustKey(t), mustKey(t)
	bob := state.AddressFromKey(mustKey(t))
	g := testChain(t, keys, map[state.Address]uint64{state.AddressFromKey(alice): 1_000, state.AddressFromKey(mallory): 10})
	n := startNode(t, g, keys[0], t.TempDir(), true)
	waitHeight(t, []*testNode{n}, 1, 30*time.Second)

	sign := func(key ed25519.PrivateKey, chain string, nonce, fee, amount uint64) []byte {
		raw, err := state.SignTransfer(key, chain, nonce, fee, bob, amount)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	good := sign(alice, g.ChainID, 0, 1, 5)
	forged := slices.Clone(good)
	forged[len(forged)-1] ^= 1
	// The kind is the last two bytes of the header: chain ID (length-prefixed), sender, nonce, fee, kind.
	unknownKind := slices.Clone(good)
	unknownKind[2+len(g.ChainID)+48+1] = 77
	cases := []struct {
		name string
		raw  []byte
		want string
	}{
		{"bad signature", forged, "bad_signature"},
		{"wrong nonce", sign(alice, g.ChainID, 7, 1, 5), "bad_nonce"},
		{"insufficient balance", sign(mallory, g.ChainID, 0, 1, 500), "insufficient_funds"},
		{"wrong chain", sign(alice, "another-chain", 0, 1, 5), "wrong_chain"},
		{"fee too low", sign(alice, g.ChainID, 0, 0, 5), "fee_too_low"},
		{"unknown kind", unknownKind, "unknown_kind"},
		{"not a transaction", []byte("hello"), "malformed"},
		{"oversized", make([]byte, state.MaxTxBytes+1), "oversized"},
	}
	for _, c := range cases {
		res, err := n.ledger.Submit([][]byte{c.raw})
		if err != nil {
			t.Fatal(err)
		}
		if res[0].Err == nil || !strings.Contains(res[0].Err.Error(), c.want) {
			t.Errorf("%s: got %v, want a refusal naming %s", c.name, res[0].Err, c.want)
		}
	}
	if n.ledger.Mempool().Len() != 0 {
		t.Fatalf("refused transactions reached the mempool: %d", n.ledger.Mempool().Len())
	}
	for _, k := range []ed25519.PrivateKey{alice, mallory} {
		acct, _ := n.ledger.App().Account(state.AddressFromKey(k))
		if acct.Nonce != 0 {
			t.Fatalf("a refused transaction moved a nonce: %+v", acct)
		}
	}
	// And the good one still goes through.
	waits := []func(context.Context) (state.TxResult, error){n.ledger.Driver().Waiter(state.HashTx(good))}
	if res, _ := n.ledger.Submit([][]byte{good}); res[0].Err != nil {
		t.Fatal(res[0].Err)
	}
	waitAll(t, waits)
}
