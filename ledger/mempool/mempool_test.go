package mempool

import (
	"crypto/ed25519"
	"encoding/binary"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/shouldersnet/shoulders/ledger/consensus"
	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/ledger/store"
)

const chainID = "mempool-test"

func key(i int) ed25519.PrivateKey {
	var seed [32]byte
	binary.BigEndian.PutUint64(seed[:], uint64(i)+1)
	copy(seed[8:], "shoulders mempool test key")
	return ed25519.NewKeyFromSeed(seed[:])
}

func addr(i int) state.Address { return state.AddressFromKey(key(i)) }

// chain is a validator's application over a real store, driven as the driver drives it.
type chain struct {
	t    testing.TB
	app  *state.App
	st   *store.Store
	vals *consensus.ValidatorSet
	prev consensus.Hash
}

func newChain(t testing.TB, g *state.Genesis) *chain {
	st, err := store.Open("db", store.Options{FS: vfs.NewMem()})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	app, err := state.New(g, st, state.Options{})
	if err != nil {
		t.Fatal(err)
	}
	vals, _ := consensus.NewValidatorSet([]consensus.Validator{{PubKey: consensus.PublicKey(addr(1000)), Power: 1}})
	return &chain{t: t, app: app, st: st, vals: vals}
}

func genesis(n int, balance uint64) *state.Genesis {
	g := &state.Genesis{ChainID: chainID, Params: state.DefaultParams()}
	for i := range n {
		g.Accounts = append(g.Accounts, state.GenesisAccount{Address: addr(i), Balance: state.Amount(balance)})
	}
	return g
}

// commit executes a block of txs (looking known ones up in mp), persists and commits it.
func (c *chain) commit(txs [][]byte, mp *Mempool) *state.Result {
	c.t.Helper()
	b := &consensus.Block{Header: consensus.Header{Height: c.app.Height() + 1, PrevHash: c.prev, AppHash: c.app.AppHash()}, Txs: txs}
	b.Header.TxsHash = consensus.TxsHash(txs)
	var known func(state.Hash) *state.Tx
	if mp != nil {
		known = mp.Get
	}
	res, err := c.app.Execute(b, addr(999), known)
	if err != nil {
		c.t.Fatal(err)
	}
	d := &consensus.Decision{Block: b, Hash: b.Hash(), Certificate: &consensus.Certificate{Height: b.Header.Height, BlockHash: b.Hash()}, Next: c.vals}
	if err := c.st.CommitHeight(d, nil, func(bt *store.Batch) error { return res.Write(bt.Set) }); err != nil {
		c.t.Fatal(err)
	}
	if err := c.app.Commit(res); err != nil {
		c.t.Fatal(err)
	}
	c.prev = b.Hash()
	return res
}

func tx(t testing.TB, from int, nonce, fee uint64, to int, amount uint64) *state.Tx {
	t.Helper()
	raw, err := state.SignTransfer(key(from), chainID, nonce, fee, addr(to), amount)
	if err != nil {
		t.Fatal(err)
	}
	d, err := state.DecodeTx(raw)
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func add1(m *Mempool, t *state.Tx) error { return m.Add([]*state.Tx{t})[0] }

func TestAdmission(t *testing.T) {
	g := genesis(4, 1000)
	g.Params.MaxTxBytes = 200
	c := newChain(t, g)
	m := New(c.app, Config{MaxPerSender: 3})

	ok := tx(t, 0, 0, 1, 1, 100)
	if err := add1(m, ok); err != nil {
		t.Fatal(err)
	}
	if !m.Has(ok.Hash()) || m.Get(ok.Hash()) != ok || !ok.Verified() {
		t.Fatal("admitted tx not found, or not verified")
	}
	otherChain, _ := state.SignTransfer(key(0), "elsewhere", 1, 1, addr(1), 1)
	oc, _ := state.DecodeTx(otherChain)
	badSig := tx(t, 0, 1, 1, 1, 5).Bytes()
	badSig = append([]byte(nil), badSig...)
	badSig[len(badSig)-2] ^= 8
	bs, _ := state.DecodeTx(badSig)
	big, _ := state.Sign(key(0), strings.Repeat("c", 64), 1, 1, &state.Transfer{To: addr(1), Amount: 1}) // 220 bytes
	bg, _ := state.DecodeTx(big)

	for _, c := range []struct {
		name string
		tx   *state.Tx
		is   error
		want string
	}{
		{"duplicate", ok, ErrDuplicate, ok.Hash().String() + " is already pending"},
		{"wrong chain", oc, state.ErrWrongChain, `chain_id "elsewhere"`},
		{"fee too low", tx(t, 0, 1, 0, 1, 5), state.ErrFeeTooLow, "fee 0, the chain's min_fee is 1"},
		{"oversized", bg, state.ErrOversized, "220 bytes, the chain's max_tx_bytes is 200"},
		{"bad signature", bs, state.ErrBadSignature, "signature does not verify"},
		{"used nonce", tx(t, 0, 0, 2, 1, 5), state.ErrBadNonce, "nonce 0 is taken by pending transaction " + ok.Hash().String()},
		{"gap", tx(t, 0, 2, 1, 1, 5), state.ErrBadNonce, "nonce 2 leaves a gap, the sender's next nonce is 1 (0 on the ledger, 1 pending)"},
		{"gap, nothing pending", tx(t, 1, 1, 1, 0, 5), state.ErrBadNonce, "nonce 1 leaves a gap, the sender's next nonce is 0"},
		{"insufficient", tx(t, 0, 1, 1, 1, 900), state.ErrInsufficientFunds, "the sender has 1000 of which 101 is committed to 1 pending transactions, the transaction needs 901"},
		{"no account", tx(t, 9, 0, 1, 1, 1), state.ErrInsufficientFunds, "the sender has 0"},
		{"overflow", tx(t, 0, 1, 2, 1, 1<<64-1), state.ErrInsufficientFunds, "overflows"},
	} {
		err := add1(m, c.tx)
		if !errors.Is(err, c.is) || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %v containing %q", c.name, err, c.is, c.want)
		}
	}
	// A sender's pending transactions are bounded.
	for n := uint64(1); n < 3; n++ {
		if err := add1(m, tx(t, 0, n, 1, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := add1(m, tx(t, 0, 3, 1, 1, 1)); !errors.Is(err, ErrSenderFull) || !strings.Contains(err.Error(), "has 3 pending, the limit is 3") {
		t.Errorf("sender full: %v", err)
	}
	// A tx committed elsewhere makes its nonce used.
	res := c.commit([][]byte{tx(t, 2, 0, 1, 1, 1).Bytes()}, nil)
	if err := m.Update(res); err != nil {
		t.Fatal(err)
	}
	if err := add1(m, tx(t, 2, 0, 3, 1, 1)); !errors.Is(err, state.ErrBadNonce) || !strings.Contains(err.Error(), "nonce 0, the sender's next nonce is 1") &&
		!strings.Contains(err.Error(), "nonce 0 is used") {
		t.Errorf("used nonce on the ledger: %v", err)
	}
	snap := m.Snapshot(10)
	if snap.Count != 3 || snap.Senders != 1 || snap.Refused["bad_nonce"] != 4 || snap.Refused["duplicate"] != 1 || snap.Refused["sender_full"] != 1 ||
		snap.Oldest == nil || snap.Oldest.Hash != ok.Hash() || len(snap.Queues) != 1 || snap.Queues[0].Count != 3 || snap.Queues[0].Spent != 105 {
		t.Errorf("snapshot %+v", snap)
	}
}

func TestBatchAdmission(t *testing.T) {
	c := newChain(t, genesis(3, 1000))
	m := New(c.app, Config{})
	// Out of nonce order and with a duplicate: each sender's are admitted in nonce order.
	a2, a0, b0, a1 := tx(t, 0, 2, 1, 1, 1), tx(t, 0, 0, 1, 1, 1), tx(t, 1, 0, 1, 0, 1), tx(t, 0, 1, 1, 1, 1)
	errs := m.Add([]*state.Tx{a2, a0, b0, a1, b0})
	if errs[0] != nil || errs[1] != nil || errs[2] != nil || errs[3] != nil || !errors.Is(errs[4], ErrDuplicate) {
		t.Fatalf("%v", errs)
	}
	if m.Len() != 4 {
		t.Fatalf("%d pending", m.Len())
	}
}

// NextNonce tells a client the nonce to sign with: the account's nonce plus the sender's pending ones.
func TestNextNonceCountsPending(t *testing.T) {
	c := newChain(t, genesis(3, 1000))
	m := New(c.app, Config{})
	next := func(i int) uint64 {
		n, err := m.NextNonce(addr(i))
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if next(0) != 0 {
		t.Fatal("an empty mempool has pending transactions")
	}
	for nonce := range uint64(3) {
		if err := add1(m, tx(t, 0, nonce, 1, 1, 1)); err != nil {
			t.Fatal(err)
		}
	}
	add1(m, tx(t, 1, 0, 1, 0, 1))
	if next(0) != 3 || next(1) != 1 || next(2) != 0 {
		t.Fatalf("next nonces: %d %d %d", next(0), next(1), next(2))
	}
	// A transaction signed with it is admitted.
	if err := add1(m, tx(t, 0, next(0), 1, 1, 1)); err != nil {
		t.Fatalf("the next nonce was refused: %v", err)
	}
}

// Transactions that a block committed before their gossip arrived (the block came first, straight from the
// proposer) are refused for their used nonce before any signature work.
func TestLateGossipOfCommittedTransactionsCostsNoSignatureCheck(t *testing.T) {
	c := newChain(t, genesis(3, 1000))
	m := New(c.app, Config{})
	var raws [][]byte
	for nonce := range uint64(3) {
		raws = append(raws, tx(t, 0, nonce, 1, 1, 1).Bytes())
	}
	c.commit(raws, nil)
	m.Update(&state.Result{Height: c.app.Height()})
	late := make([]*state.Tx, len(raws))
	for i, raw := range raws {
		d, err := state.DecodeTx(raw)
		if err != nil {
			t.Fatal(err)
		}
		late[i] = d
	}
	for i, err := range m.Add(late) {
		if code, _ := state.CodeOf(err); code != state.CodeBadNonce {
			t.Fatalf("late transaction %d: %v, want a used nonce", i, err)
		}
		if late[i].Verified() {
			t.Fatalf("late transaction %d had its signature checked", i)
		}
	}
	if m.Len() != 0 {
		t.Fatalf("%d pending", m.Len())
	}
}

func TestEviction(t *testing.T) {
	c := newChain(t, genesis(5, 1000))
	m := New(c.app, Config{MaxTxs: 3})
	for i, fee := range []uint64{5, 2, 7} {
		if err := add1(m, tx(t, i, 0, fee, 4, 1)); err != nil {
			t.Fatal(err)
		}
	}
	low := tx(t, 3, 0, 2, 4, 1)
	if err := add1(m, low); !errors.Is(err, ErrFull) || !strings.Contains(err.Error(), "lowest evictable fee is 2") {
		t.Fatalf("equal fee: %v", err)
	}
	hi := tx(t, 3, 0, 3, 4, 1)
	if err := add1(m, hi); err != nil {
		t.Fatalf("higher fee: %v", err)
	}
	if m.Has(tx(t, 1, 0, 2, 4, 1).Hash()) || !m.Has(hi.Hash()) || m.Len() != 3 {
		t.Fatal("the lowest fee was not the one evicted")
	}
	// Evicting a sender's own predecessor would open a gap: refused.
	if err := add1(m, tx(t, 3, 1, 100, 4, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("evicting its own predecessor: %v", err)
	}
	// Bytes bound too.
	m2 := New(c.app, Config{MaxBytes: 2 * hi.Size()})
	for i := range 2 {
		if err := add1(m2, tx(t, i, 0, 1, 4, 1)); err != nil {
			t.Fatal(err)
		}
	}
	if err := add1(m2, tx(t, 2, 0, 1, 4, 1)); !errors.Is(err, ErrFull) {
		t.Fatalf("bytes: %v", err)
	}
	if s := m.Snapshot(0); s.Evicted != 1 || len(s.Queues) != 0 {
		t.Fatalf("snapshot %+v", s)
	}
}

// refReap is the specification of Reap: repeatedly take, among each sender's next transaction, the one
// with the highest fee, then the earliest arrival; a sender whose next one does not fit is done.
func refReap(queues map[state.Address][]*entry, maxTxs, maxBytes int) []*state.Tx {
	pos := map[state.Address]int{}
	done := map[state.Address]bool{}
	var out []*state.Tx
	size := 0
	for len(out) < maxTxs {
		var best *entry
		for a, q := range queues {
			if done[a] || pos[a] >= len(q) {
				continue
			}
			e := q[pos[a]]
			if best == nil || e.tx.Fee > best.tx.Fee || e.tx.Fee == best.tx.Fee && e.seq < best.seq {
				best = e
			}
		}
		if best == nil {
			break
		}
		a := best.tx.Sender
		if size+best.tx.Size() > maxBytes {
			done[a] = true
			continue
		}
		out = append(out, best.tx)
		size += best.tx.Size()
		pos[a]++
	}
	return out
}

func TestReapOrder(t *testing.T) {
	const senders = 12
	c := newChain(t, genesis(senders, 1_000_000))
	m := New(c.app, Config{})
	rng := rand.New(rand.NewPCG(3, 4))
	nonces := make([]uint64, senders)
	admitted := 0
	for range 300 {
		s := rng.IntN(senders)
		raw, _ := state.Sign(key(s), chainID, nonces[s], 1+rng.Uint64N(6), &state.Transfer{To: addr(0), Amount: 1})
		// Vary the size so the byte limit bites at different places.
		if rng.IntN(3) == 0 {
			raw, _ = state.Sign(key(s), chainID+strings.Repeat("x", rng.IntN(40)), nonces[s], 1+rng.Uint64N(6), &state.Transfer{To: addr(0), Amount: 1})
		}
		d, err := state.DecodeTx(raw)
		if err != nil {
			t.Fatal(err)
		}
		if d.ChainID != chainID {
			continue // wrong chain: refused, which is not what this test is about
		}
		if err := add1(m, d); err != nil {
			t.Fatal(err)
		}
		nonces[s]++
		admitted++
	}
	queues := map[state.Address][]*entry{}
	for a, s := range m.mu.senders {
		queues[a] = slices.Clone(s.txs)
	}
	for _, lim := range []struct{ txs, bytes int }{{1000, 1 << 20}, {50, 1 << 20}, {1000, 5000}, {7, 900}, {0, 1000}, {10, 10}} {
		got := m.Reap(lim.txs, lim.bytes)
		want := refReap(queues, lim.txs, lim.bytes)
		if !slices.Equal(got, want) {
			t.Fatalf("Reap(%d, %d): %d txs, the specification gives %d", lim.txs, lim.bytes, len(got), len(want))
		}
		// Per sender, nonces are consecutive from the account's.
		next := map[state.Address]uint64{}
		for _, tx := range got {
			if tx.Nonce != next[tx.Sender] {
				t.Fatalf("sender %s: nonce %d, want %d", tx.Sender, tx.Nonce, next[tx.Sender])
			}
			next[tx.Sender]++
		}
	}
	if m.Len() != admitted || admitted < 150 {
		t.Fatalf("Reap removed transactions: %d left", m.Len())
	}
}

func TestReapFeeThenArrival(t *testing.T) {
	c := newChain(t, genesis(3, 1000))
	m := New(c.app, Config{})
	a0, a1 := tx(t, 0, 0, 1, 2, 1), tx(t, 0, 1, 10, 2, 1)
	b0, b1 := tx(t, 1, 0, 5, 2, 1), tx(t, 1, 1, 5, 2, 1)
	c0 := tx(t, 2, 0, 5, 0, 1)
	for _, x := range []*state.Tx{a0, a1, b0, c0, b1} {
		if err := add1(m, x); err != nil {
			t.Fatal(err)
		}
	}
	// b0 and c0 tie on fee: b0 arrived first; b1 (fee 5, arrived after c0) follows c0; a1 (fee 10) waits
	// for a0 (fee 1).
	want := []*state.Tx{b0, c0, b1, a0, a1}
	if got := m.Reap(10, 1<<20); !slices.Equal(got, want) {
		t.Fatalf("order %v", hashes(got))
	}
}

func hashes(txs []*state.Tx) []string {
	var s []string
	for _, t := range txs {
		s = append(s, fmt.Sprintf("%s/%d fee %d", t.Sender.String()[:12], t.Nonce, t.Fee))
	}
	return s
}

func TestUpdate(t *testing.T) {
	c := newChain(t, genesis(4, 1000))
	m := New(c.app, Config{})
	// Sender 0: four transactions, 300 + 1 each.
	var zero []*state.Tx
	for n := range uint64(3) {
		zero = append(zero, tx(t, 0, n, 1, 3, 300))
	}
	// Sender 1: three; sender 2: two.
	one := []*state.Tx{tx(t, 1, 0, 1, 3, 10), tx(t, 1, 1, 1, 3, 10), tx(t, 1, 2, 1, 3, 10)}
	two := []*state.Tx{tx(t, 2, 0, 1, 3, 10), tx(t, 2, 1, 1, 3, 10)}
	for _, e := range m.Add(slices.Concat(zero, one, two)) {
		if e != nil {
			t.Fatal(e)
		}
	}
	// The block: zero[0] from the pool; a transfer by sender 0 this pool never saw, which leaves it 399 -
	// not enough for both zero[1] and zero[2]; sender 1's nonce 0 by other bytes (one[0] becomes stale); and
	// two[0] with too high a nonce... no: two[1] alone, which fails (nonce 1 before 0) and so is done.
	elsewhere := tx(t, 0, 1, 1, 3, 299)
	rival := tx(t, 1, 0, 2, 3, 11)
	res := c.commit([][]byte{zero[0].Bytes(), elsewhere.Bytes(), rival.Bytes(), two[1].Bytes()}, m)
	if res.Txs[3].Code != state.CodeBadNonce {
		t.Fatalf("setup: %+v", res.Txs)
	}
	if err := m.Update(res); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		tx   *state.Tx
		want bool
	}{
		{zero[0], false}, // committed
		{zero[1], false}, // its nonce was used by elsewhere
		{zero[2], true},  // nonce 2 is next; 399 left covers 301
		{one[0], false},  // nonce used by rival
		{one[1], true}, {one[2], true},
		{two[0], true},  // untouched, still next
		{two[1], false}, // carried by the block (and failed): done
	} {
		if m.Has(c.tx.Hash()) != c.want {
			t.Errorf("tx %s/%d: pending %v, want %v", c.tx.Sender.String()[:12], c.tx.Nonce, !c.want, c.want)
		}
	}
	// What is left is exactly what the next block can apply.
	var raws [][]byte
	for _, x := range m.Reap(100, 1<<20) {
		raws = append(raws, x.Bytes())
	}
	res = c.commit(raws, m)
	for _, r := range res.Txs {
		if r.Code != state.CodeOK {
			t.Fatalf("a reaped tx failed: %+v", r)
		}
	}
	if err := m.Update(res); err != nil {
		t.Fatal(err)
	}
	if s := m.Snapshot(5); s.Count != 0 || s.Bytes != 0 || s.Senders != 0 || s.Committed != 6 || s.Dropped != 2 || s.Height != 2 {
		t.Fatalf("after the second block: %+v", s)
	}
	// A balance that drops below a pending cost drops that transaction and those after it. Sender 3 has
	// 1940 (1000 and what it received); a and b fit; then its nonce 0 goes to a bigger transfer elsewhere,
	// which leaves 439: a's nonce is used and b (1001) no longer fits.
	a, b := tx(t, 3, 0, 1, 0, 100), tx(t, 3, 1, 1, 0, 1000)
	if err := add1(m, a); err != nil {
		t.Fatal(err)
	}
	if err := add1(m, b); err != nil {
		t.Fatal(err)
	}
	res = c.commit([][]byte{tx(t, 3, 0, 1, 0, 1500).Bytes()}, m)
	if err := m.Update(res); err != nil {
		t.Fatal(err)
	}
	if m.Len() != 0 {
		t.Fatalf("%d pending after sender 3's nonce 0 went elsewhere", m.Len())
	}
}

// TestConcurrent adds transactions from several goroutines while the driver reaps, executes, commits and
// updates; every transaction must commit exactly once, in nonce order, and the supply must be conserved.
func TestConcurrent(t *testing.T) {
	const senders, perSender = 8, 60
	g := genesis(senders, 1_000_000)
	c := newChain(t, g)
	m := New(c.app, Config{MaxPerSender: 20})
	var wg sync.WaitGroup
	for s := range senders {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for n := uint64(0); n < perSender; {
				x := tx(t, s, n, 1+n%3, (s+1)%senders, 7)
				err := add1(m, x)
				switch {
				case err == nil || errors.Is(err, ErrDuplicate):
					n++
				case errors.Is(err, ErrSenderFull):
					// wait for a block: retry
				case errors.Is(err, state.ErrBadNonce) && strings.Contains(err.Error(), "is used"):
					t.Errorf("sender %d nonce %d: %v", s, n, err)
					return
				default:
					// a gap cannot happen: this goroutine is the sender's only source
					t.Errorf("sender %d nonce %d: %v", s, n, err)
					return
				}
			}
		}()
	}
	committed := 0
	for committed < senders*perSender {
		var raws [][]byte
		for _, x := range m.Reap(50, 1<<20) {
			raws = append(raws, x.Bytes())
		}
		res := c.commit(raws, m)
		for _, r := range res.Txs {
			if r.Code != state.CodeOK {
				t.Fatalf("height %d: %+v", res.Height, r)
			}
			committed++
		}
		if err := m.Update(res); err != nil {
			t.Fatal(err)
		}
		_ = m.Snapshot(3)
		if t.Failed() {
			break
		}
	}
	wg.Wait()
	var supply uint64
	for i := range senders {
		a, _ := c.app.Account(addr(i))
		supply += a.Balance
		if a.Nonce != perSender {
			t.Errorf("sender %d at nonce %d", i, a.Nonce)
		}
	}
	p, _ := c.app.Account(addr(999))
	if supply+p.Balance != g.TotalSupply() || m.Len() != 0 {
		t.Fatalf("supply %d + fees %d != %d, %d pending", supply, p.Balance, g.TotalSupply(), m.Len())
	}
}
