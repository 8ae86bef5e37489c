package mempool

import (
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"

	"github.com/shouldersnet/shoulders/ledger/state"
)

// Ledger is what the mempool needs of the application; *state.App satisfies it. Account must return
// committed state and may be called concurrently with everything else.
type Ledger interface {
	// CheckTx applies the chain's stateless rules (size, chain ID, minimum fee).
	CheckTx(*state.Tx) error
	// Account returns an account's committed balance and next nonce.
	Account(state.Address) (state.Account, error)
}

var _ Ledger = (*state.App)(nil)

// Config bounds a Mempool. Zero fields take the defaults noted beside them.
type Config struct {
	MaxTxs   int // pending transactions in all; default 50,000
	MaxBytes int // their wire bytes in all; default 64 MiB
	// MaxPerSender bounds one sender's pending transactions, and so how far ahead of its account's nonce
	// a transaction may be. Default 1,000.
	MaxPerSender int
}

func (c Config) withDefaults() Config {
	if c.MaxTxs <= 0 {
		c.MaxTxs = 50_000
	}
	if c.MaxBytes <= 0 {
		c.MaxBytes = 64 << 20
	}
	if c.MaxPerSender <= 0 {
		c.MaxPerSender = 1_000
	}
	return c
}

// Refusals that are the mempool's own (the others are *state.Error: wrong chain, fee too low, oversized, bad
// signature, bad nonce, insufficient funds). Every refusal names what was wrong; all are the sender's fault
// except those wrapping state.ErrStore.
var (
	// ErrDuplicate: a transaction with the same hash is already pending.
	ErrDuplicate = errors.New("mempool: duplicate transaction")
	// ErrFull: the mempool holds MaxTxs transactions or MaxBytes bytes, none with a lower fee than this one.
	ErrFull = errors.New("mempool: full")
	// ErrSenderFull: the sender already has MaxPerSender pending transactions.
	ErrSenderFull = errors.New("mempool: too many pending transactions from this sender")
)

// entry is one pending transaction.
type entry struct {
	tx     *state.Tx
	seq    uint64 // arrival order, unique
	cost   uint64 // fee + what the payload spends
	height uint64 // the mempool's height when it was admitted
}

// sender is one account's pending transactions: txs holds nonces base.Nonce, base.Nonce+1, ... in order,
// whose costs sum to spent ≤ base.Balance.
type sender struct {
	addr  state.Address
	base  state.Account // the account's committed state when last read
	txs   []*entry
	spent uint64
	bytes int

	readyIdx int // position in Mempool.mu.ready, -1 when not there
	tailIdx  int // position in Mempool.mu.tails, -1 when not there
	reapPos  int // during Reap: how many of txs this Reap has taken

	// The heaps' keys: fee and arrival of txs[reapPos] and of the last of txs (see rekey).
	readyFee, readySeq uint64
	tailFee, tailSeq   uint64
}

func (s *sender) next() uint64 { return s.base.Nonce + uint64(len(s.txs)) }

// rekey copies the heaps' keys from s's transactions; the caller then fixes s's place in the heaps.
func (s *sender) rekey() {
	if len(s.txs) == 0 {
		return
	}
	r, t := s.txs[min(s.reapPos, len(s.txs)-1)], s.txs[len(s.txs)-1]
	s.readyFee, s.readySeq = r.tx.Fee, r.seq
	s.tailFee, s.tailSeq = t.tx.Fee, t.seq
}

// Mempool holds verified transactions waiting for a block. It is safe for concurrent use: any number of
// goroutines may Add, Has, Get and Snapshot while one goroutine (the driver) calls Reap and Update.
type Mempool struct {
	ledger Ledger
	cfg    Config

	mu struct {
		sync.Mutex
		byHash  map[state.Hash]*entry
		senders map[state.Address]*sender
		// ready orders senders by their first pending transaction (fee, higher first, then arrival):
		// the order Reap takes transactions in.
		ready senderHeap
		// tails orders senders by their last pending transaction (fee, lowest first, then the newest):
		// the transaction eviction takes first.
		tails  senderHeap
		bytes  int
		seq    uint64
		height uint64 // the height of the last Update
		stats  counters
	}
}

type counters struct {
	admitted, committed, dropped, evicted uint64
	refused                               map[string]uint64 // by reason class (a code name or "duplicate", "full", "sender_full")
}

// New returns an empty mempool that checks transactions against ledger.
func New(ledger Ledger, cfg Config) *Mempool {
	m := &Mempool{ledger: ledger, cfg: cfg.withDefaults()}
	m.mu.byHash = make(map[state.Hash]*entry)
	m.mu.senders = make(map[state.Address]*sender)
	m.mu.tails.tail = true
	m.mu.stats.refused = make(map[string]uint64)
	return m
}

// Has reports whether a transaction with hash h is pending.
func (m *Mempool) Has(h state.Hash) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	_, ok := m.mu.byHash[h]
	return ok
}

// Get returns the pending transaction with hash h (decoded and verified), or nil. It is what
// state.App.Execute's known argument wants: transactions this node admitted are not verified again.
func (m *Mempool) Get(h state.Hash) *state.Tx {
	m.mu.Lock()
	defer m.mu.Unlock()
	if e := m.mu.byHash[h]; e != nil {
		return e.tx
	}
	return nil
}

// NextNonce returns the nonce sender a's next transaction must carry to be admitted: its account's nonce
// plus its pending transactions, read together under the mempool's lock so that a block committed in
// between cannot make the sum wrong.
func (m *Mempool) NextNonce(a state.Address) (uint64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if s := m.mu.senders[a]; s != nil {
		return s.next(), nil
	}
	acct, err := m.ledger.Account(a)
	if err != nil {
		return 0, err
	}
	return acct.Nonce, nil
}

// Len returns the number of pending transactions.
func (m *Mempool) Len() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.mu.byHash)
}

// Add admits decoded transactions, and returns one result per transaction, in order: nil when admitted, or
// why not. A transaction is admitted when the chain's stateless rules pass (size, chain ID, minimum fee),
// its hash is not pending yet, its signature verifies, its nonce is its sender's next (the account's nonce
// plus the sender's pending transactions: older nonces, taken nonces and gaps are refused), the sender can
// pay it on top of its pending ones, the sender has fewer than MaxPerSender pending, and there is room
// (after evicting lower-fee transactions if need be).
//
// Signatures are checked with one state.VerifyBatch over the whole call, outside the lock, so callers that
// can should pass many transactions at once. Within one call, each sender's transactions are admitted in
// nonce order, whatever order they came in.
func (m *Mempool) Add(txs []*state.Tx) []error {
	errs := make([]error, len(txs))
	cand := make([]int, 0, len(txs)) // indices of the transactions still in the running
	for i, t := range txs {
		if err := m.ledger.CheckTx(t); err != nil {
			errs[i] = err
			continue
		}
		if _, err := t.Cost(); err != nil {
			errs[i] = err
			continue
		}
		cand = append(cand, i)
	}

	// Cheap refusals before paying for signatures: duplicates and nonces that are already used.
	m.mu.Lock()
	seen := make(map[state.Hash]struct{}, len(cand))
	cand = slices.DeleteFunc(cand, func(i int) bool {
		t := txs[i]
		h := t.Hash()
		if _, dup := m.mu.byHash[h]; dup {
			errs[i] = fmt.Errorf("%w: %s is already pending", ErrDuplicate, h)
			return true
		}
		if _, dup := seen[h]; dup {
			errs[i] = fmt.Errorf("%w: %s appears twice in this batch", ErrDuplicate, h)
			return true
		}
		seen[h] = struct{}{}
		if s := m.mu.senders[t.Sender]; s != nil && t.Nonce < s.next() {
			errs[i] = usedNonce(t, s)
			return true
		}
		return false
	})
	base := m.mu.seq
	m.mu.seq += uint64(len(txs))
	readAt := m.mu.height
	var need []state.Address // senders with nothing pending: their nonces are checked against the ledger
	for _, i := range cand {
		if a := txs[i].Sender; m.mu.senders[a] == nil && !slices.Contains(need, a) {
			need = append(need, a)
		}
	}
	m.mu.Unlock()

	// The same for senders with nothing pending, against their accounts: a gossiped batch that arrives after
	// the block that carried its transactions (the block comes straight from the proposer, the gossip through
	// batching and validation) would otherwise have its signatures checked once more, to be refused. A nonce
	// below the account's is used for good, whatever height the read saw.
	accounts := make(map[state.Address]state.Account, len(need))
	for _, a := range need {
		acct, err := m.ledger.Account(a)
		if err != nil {
			continue // the admission below reads it again, and says why
		}
		accounts[a] = acct
	}
	cand = slices.DeleteFunc(cand, func(i int) bool {
		t := txs[i]
		if acct, ok := accounts[t.Sender]; ok && t.Nonce < acct.Nonce {
			errs[i] = &state.Error{Code: state.CodeBadNonce, Reason: fmt.Sprintf("nonce %d is used, the sender's next nonce is %d", t.Nonce, acct.Nonce)}
			return true
		}
		return false
	})

	verify := make([]*state.Tx, len(cand))
	for j, i := range cand {
		verify[j] = txs[i]
	}
	for j, err := range state.VerifyBatch(verify) {
		if err != nil {
			errs[cand[j]] = err
		}
	}
	cand = slices.DeleteFunc(cand, func(i int) bool { return errs[i] != nil })
	nonceOrder(txs, cand)

	// Admit, with the accounts of senders that have nothing pending. A read is good for the height it was
	// made at: if an Update ran in between, read again.
	for {
		m.mu.Lock()
		var need []state.Address
		if len(accounts) > 0 && readAt != m.mu.height {
			clear(accounts)
		}
		for _, i := range cand {
			a := txs[i].Sender
			if _, ok := accounts[a]; !ok && m.mu.senders[a] == nil && !slices.Contains(need, a) {
				need = append(need, a)
			}
		}
		if len(need) == 0 {
			for _, i := range cand {
				errs[i] = m.admitLocked(txs[i], base+uint64(i), accounts)
			}
			m.countRefusalsLocked(errs)
			m.checkLocked()
			m.mu.Unlock()
			return errs
		}
		readAt = m.mu.height
		m.mu.Unlock()
		for _, a := range need {
			acct, err := m.ledger.Account(a)
			if err != nil {
				for _, i := range cand {
					if txs[i].Sender == a {
						errs[i] = err
					}
				}
				cand = slices.DeleteFunc(cand, func(i int) bool { return txs[i].Sender == a })
				continue
			}
			accounts[a] = acct
		}
	}
}

// nonceOrder reorders cand (indices into txs) so that each sender's transactions come in nonce order, in
// the positions its transactions held: other senders' transactions do not move.
func nonceOrder(txs []*state.Tx, cand []int) {
	slots := make(map[state.Address][]int)
	for pos, i := range cand {
		slots[txs[i].Sender] = append(slots[txs[i].Sender], pos)
	}
	for _, pos := range slots {
		if len(pos) < 2 {
			continue
		}
		idx := make([]int, len(pos))
		for k, p := range pos {
			idx[k] = cand[p]
		}
		slices.SortStableFunc(idx, func(i, j int) int { return cmp.Compare(txs[i].Nonce, txs[j].Nonce) })
		for k, p := range pos {
			cand[p] = idx[k]
		}
	}
}

func usedNonce(t *state.Tx, s *sender) error {
	if t.Nonce < s.base.Nonce {
		return &state.Error{Code: state.CodeBadNonce, Reason: fmt.Sprintf("nonce %d is used, the sender's next nonce is %d", t.Nonce, s.next())}
	}
	return &state.Error{Code: state.CodeBadNonce, Reason: fmt.Sprintf("nonce %d is taken by pending transaction %s (the sender's next nonce is %d)",
		t.Nonce, s.txs[t.Nonce-s.base.Nonce].tx.Hash(), s.next())}
}

// admitLocked admits one verified transaction of the stateless rules. accounts holds the committed state of
// senders that have no pending transactions.
func (m *Mempool) admitLocked(t *state.Tx, seq uint64, accounts map[state.Address]state.Account) error {
	h := t.Hash()
	if _, dup := m.mu.byHash[h]; dup {
		return fmt.Errorf("%w: %s is already pending", ErrDuplicate, h)
	}
	s := m.mu.senders[t.Sender]
	if s == nil {
		acct, ok := accounts[t.Sender]
		if !ok {
			// The sender had pending transactions when Add looked, and this call's own evictions removed them
			// all: this transaction's predecessors are gone.
			return fmt.Errorf("%w: the sender's earlier pending transactions were evicted for higher fees", ErrFull)
		}
		s = &sender{addr: t.Sender, base: acct, readyIdx: -1, tailIdx: -1}
	}
	if t.Nonce < s.next() {
		return usedNonce(t, s)
	}
	if t.Nonce > s.next() {
		return &state.Error{Code: state.CodeBadNonce, Reason: fmt.Sprintf("nonce %d leaves a gap, the sender's next nonce is %d (%d on the ledger, %d pending)",
			t.Nonce, s.next(), s.base.Nonce, len(s.txs))}
	}
	if len(s.txs) >= m.cfg.MaxPerSender {
		return fmt.Errorf("%w: %s has %d pending, the limit is %d", ErrSenderFull, t.Sender, len(s.txs), m.cfg.MaxPerSender)
	}
	cost, _ := t.Cost() // checked in Add
	if cost > s.base.Balance-s.spent {
		return &state.Error{Code: state.CodeInsufficientFunds, Reason: fmt.Sprintf("the sender has %d of which %d is committed to %d pending transactions, the transaction needs %d",
			s.base.Balance, s.spent, len(s.txs), cost)}
	}
	if err := m.makeRoomLocked(t, s); err != nil {
		return err
	}
	e := &entry{tx: t, seq: seq, cost: cost, height: m.mu.height}
	s.txs = append(s.txs, e)
	s.spent += cost
	s.bytes += t.Size()
	m.mu.byHash[h] = e
	m.mu.bytes += t.Size()
	m.mu.stats.admitted++
	s.rekey()
	if len(s.txs) == 1 {
		m.mu.senders[s.addr] = s
		m.mu.ready.push(s)
		m.mu.tails.push(s)
	} else {
		m.mu.tails.fix(s.tailIdx)
	}
	return nil
}

// makeRoomLocked evicts the lowest-fee pending transactions (the last of their sender's, so no gap opens)
// until t fits, as long as each has a lower fee than t.
func (m *Mempool) makeRoomLocked(t *state.Tx, from *sender) error {
	for len(m.mu.byHash)+1 > m.cfg.MaxTxs || m.mu.bytes+t.Size() > m.cfg.MaxBytes {
		if m.mu.tails.len() == 0 {
			return fmt.Errorf("%w: a transaction of %d bytes does not fit in %d", ErrFull, t.Size(), m.cfg.MaxBytes)
		}
		s := m.mu.tails.top()
		victim := s.txs[len(s.txs)-1]
		if s == from || victim.tx.Fee >= t.Fee {
			return fmt.Errorf("%w: %d transactions of %d bytes pending, the lowest evictable fee is %d: offer more than that",
				ErrFull, len(m.mu.byHash), m.mu.bytes, victim.tx.Fee)
		}
		m.dropLocked(s, len(s.txs)-1)
		m.mu.stats.evicted++
	}
	return nil
}

// dropLocked removes s's transactions from index i on and fixes the heaps.
func (m *Mempool) dropLocked(s *sender, i int) {
	for _, e := range s.txs[i:] {
		delete(m.mu.byHash, e.tx.Hash())
		m.mu.bytes -= e.tx.Size()
		s.bytes -= e.tx.Size()
		s.spent -= e.cost
	}
	clear(s.txs[i:])
	s.txs = s.txs[:i]
	m.placeLocked(s)
}

// placeLocked puts s back in order in both heaps after its transactions changed, or forgets it when it has
// none left.
func (m *Mempool) placeLocked(s *sender) {
	if len(s.txs) == 0 {
		if s.readyIdx >= 0 {
			m.mu.ready.remove(s.readyIdx)
		}
		if s.tailIdx >= 0 {
			m.mu.tails.remove(s.tailIdx)
		}
		delete(m.mu.senders, s.addr)
		return
	}
	s.rekey()
	m.mu.ready.fix(s.readyIdx)
	m.mu.tails.fix(s.tailIdx)
}

func (m *Mempool) countRefusalsLocked(errs []error) {
	for _, err := range errs {
		if err == nil {
			continue
		}
		m.mu.stats.refused[reasonClass(err)]++
	}
}

// reasonClass is a refusal's class: a state code name or the mempool's own.
func reasonClass(err error) string {
	switch {
	case errors.Is(err, ErrDuplicate):
		return "duplicate"
	case errors.Is(err, ErrFull):
		return "full"
	case errors.Is(err, ErrSenderFull):
		return "sender_full"
	}
	if c, ok := state.CodeOf(err); ok {
		return c.String()
	}
	return "store"
}

// Reap returns up to maxTxs pending transactions of at most maxBytes wire bytes in all, for a block: by fee,
// higher first, then by arrival, with each sender's transactions in nonce order (a sender's next transaction
// competes once its previous one is taken). A transaction that does not fit in the bytes left ends its
// sender's part of this block; smaller ones of other senders may still fill it. The transactions stay
// pending until Update. It takes O(k log s) for k transactions taken from s senders.
func (m *Mempool) Reap(maxTxs, maxBytes int) []*state.Tx {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]*state.Tx, 0, min(maxTxs, len(m.mu.byHash)))
	var taken []*sender // senders popped from ready; they go back once reapPos is reset
	size := 0
	r := &m.mu.ready
	for len(out) < maxTxs && r.len() > 0 && maxBytes-size >= state.MinTxBytes {
		s := r.pop()
		if s.reapPos == 0 {
			taken = append(taken, s)
		}
		e := s.txs[s.reapPos]
		if size+e.tx.Size() > maxBytes {
			continue // this sender is done for this block
		}
		out = append(out, e.tx)
		size += e.tx.Size()
		s.reapPos++
		if s.reapPos < len(s.txs) {
			s.rekey()
			r.push(s)
		}
	}
	for _, s := range taken {
		s.reapPos = 0
		s.rekey()
		if s.readyIdx >= 0 {
			r.fix(s.readyIdx)
		} else {
			r.push(s)
		}
	}
	m.checkLocked()
	return out
}

// Update brings the mempool up to the block res, which the application has committed: it drops the block's
// transactions (applied or skipped, they are done) and re-checks the pending transactions of every account
// the block changed against its new state, dropping those whose nonce is used, those after a gap, and
// those the sender can no longer pay. (Accounts the block did not change keep valid queues.) The driver calls
// it after App.Commit, from the goroutine that calls Reap. An error means an account could not be read; that
// sender's transactions are dropped.
func (m *Mempool) Update(res *state.Result) error {
	// Which senders to re-check: those the block changed, and those of pending transactions it carried.
	m.mu.Lock()
	m.mu.height = res.Height // Adds that read an account before this re-read it
	var addrs []state.Address
	for _, a := range res.Touched {
		if m.mu.senders[a] != nil {
			addrs = append(addrs, a)
		}
	}
	for _, r := range res.Txs {
		if e := m.mu.byHash[r.Hash]; e != nil {
			addrs = append(addrs, e.tx.Sender)
		}
	}
	m.mu.Unlock()

	// Read their new states outside the lock.
	fresh := make(map[state.Address]state.Account, len(addrs))
	var firstErr error
	for _, a := range addrs {
		if _, ok := fresh[a]; ok {
			continue
		}
		acct, err := m.ledger.Account(a)
		if err != nil {
			if firstErr == nil {
				firstErr = err
			}
			acct = state.Account{Nonce: 1<<64 - 1} // unreadable: drop everything of this sender
		}
		fresh[a] = acct
	}

	m.mu.Lock()
	defer m.mu.Unlock()
	done := make(map[state.Hash]struct{}, len(res.Txs))
	for _, r := range res.Txs {
		if _, ok := m.mu.byHash[r.Hash]; ok {
			done[r.Hash] = struct{}{}
		}
	}
	for a, acct := range fresh {
		if s := m.mu.senders[a]; s != nil {
			m.recheckLocked(s, acct, done)
		}
	}
	// A block transaction admitted after the first look (impossible in practice: its sender's read already
	// showed its nonce used) is still dropped, with everything of its sender, rather than left behind.
	for h := range done {
		if e := m.mu.byHash[h]; e != nil {
			m.recheckLocked(m.mu.senders[e.tx.Sender], state.Account{Nonce: 1<<64 - 1}, done)
		}
	}
	m.checkLocked()
	return firstErr
}

// recheckLocked re-bases s on acct: it removes the transactions in done (carried by the block), then keeps the
// longest run of the rest that starts at acct's nonce, has no gap and fits acct's balance, and drops the
// others.
func (m *Mempool) recheckLocked(s *sender, acct state.Account, done map[state.Hash]struct{}) {
	keep := s.txs[:0]
	var spent uint64
	bytes := 0
	next := acct.Nonce
	broken := false
	for _, e := range s.txs {
		h := e.tx.Hash()
		_, isDone := done[h]
		switch {
		case isDone:
			m.mu.stats.committed++
		case !broken && e.tx.Nonce < next:
			m.mu.stats.dropped++ // another transaction used its nonce
		case !broken && e.tx.Nonce == next && e.cost <= acct.Balance-spent:
			keep = append(keep, e)
			spent += e.cost
			bytes += e.tx.Size()
			next++
			continue
		default:
			// A gap, or more than the sender has left: it cannot apply, nor can anything after it.
			broken = true
			m.mu.stats.dropped++
		}
		delete(m.mu.byHash, h)
		m.mu.bytes -= e.tx.Size()
	}
	clear(s.txs[len(keep):])
	s.txs, s.base, s.spent, s.bytes = keep, acct, spent, bytes
	m.placeLocked(s)
}
