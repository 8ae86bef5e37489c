//go:build invariants

package mempool

import "fmt"

// checkLocked verifies the mempool's bookkeeping after every change (go test -tags invariants): each
// sender's queue is contiguous from its base nonce and affordable, the totals add up, the hash index holds
// exactly the queued transactions, and both heaps are in order.
func (m *Mempool) checkLocked() {
	count, bytes := 0, 0
	for a, s := range m.mu.senders {
		if s.addr != a || len(s.txs) == 0 || s.reapPos != 0 {
			panic(fmt.Sprintf("mempool: invariant: sender %s: addr %s, %d txs, reapPos %d", a, s.addr, len(s.txs), s.reapPos))
		}
		var spent uint64
		sb := 0
		for i, e := range s.txs {
			if e.tx.Nonce != s.base.Nonce+uint64(i) || e.tx.Sender != a || m.mu.byHash[e.tx.Hash()] != e {
				panic(fmt.Sprintf("mempool: invariant: sender %s tx %d: nonce %d (base %d)", a, i, e.tx.Nonce, s.base.Nonce))
			}
			spent += e.cost
			sb += e.tx.Size()
		}
		if spent != s.spent || spent > s.base.Balance || sb != s.bytes {
			panic(fmt.Sprintf("mempool: invariant: sender %s spends %d (recorded %d) of %d, bytes %d (recorded %d)", a, spent, s.spent, s.base.Balance, sb, s.bytes))
		}
		head, last := s.txs[0], s.txs[len(s.txs)-1]
		if s.readyFee != head.tx.Fee || s.readySeq != head.seq || s.tailFee != last.tx.Fee || s.tailSeq != last.seq {
			panic(fmt.Sprintf("mempool: invariant: sender %s has stale heap keys", a))
		}
		if s.readyIdx < 0 || m.mu.ready.s[s.readyIdx] != s || s.tailIdx < 0 || m.mu.tails.s[s.tailIdx] != s {
			panic(fmt.Sprintf("mempool: invariant: sender %s is not in its heaps", a))
		}
		count += len(s.txs)
		bytes += sb
	}
	if count != len(m.mu.byHash) || bytes != m.mu.bytes || m.mu.ready.len() != len(m.mu.senders) || m.mu.tails.len() != len(m.mu.senders) {
		panic(fmt.Sprintf("mempool: invariant: %d queued, %d indexed; %d bytes, %d recorded; heaps %d/%d for %d senders",
			count, len(m.mu.byHash), bytes, m.mu.bytes, m.mu.ready.len(), m.mu.tails.len(), len(m.mu.senders)))
	}
	for _, h := range []*senderHeap{&m.mu.ready, &m.mu.tails} {
		for i := 1; i < h.len(); i++ {
			if h.less(h.s[i], h.s[(i-1)/2]) {
				panic("mempool: invariant: heap out of order")
			}
		}
	}
	if len(m.mu.byHash) > m.cfg.MaxTxs || m.mu.bytes > m.cfg.MaxBytes {
		panic(fmt.Sprintf("mempool: invariant: %d transactions of %d bytes over the bounds", len(m.mu.byHash), m.mu.bytes))
	}
}
