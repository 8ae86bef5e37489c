package mempool

import (
	"cmp"
	"slices"

	"github.com/shouldersnet/shoulders/ledger/state"
)

// Snapshot is the mempool's state for /debug/mempool. It is a copy: later changes do not show in it.
type Snapshot struct {
	Count    int    `json:"count"`
	Bytes    int    `json:"bytes"`
	MaxTxs   int    `json:"max_txs"`
	MaxBytes int    `json:"max_bytes"`
	Senders  int    `json:"senders"`
	Height   uint64 `json:"height"` // of the last Update
	// Oldest is the pending transaction that arrived first.
	Oldest *Pending `json:"oldest,omitempty"`
	// Queues are the senders with the most pending transactions, longest first (at most the limit asked for).
	Queues []Queue `json:"queues"`

	Admitted  uint64            `json:"admitted"`  // transactions admitted since start
	Committed uint64            `json:"committed"` // removed because a block carried them
	Dropped   uint64            `json:"dropped"`   // removed because a block made them invalid
	Evicted   uint64            `json:"evicted"`   // removed to make room for a higher fee
	Refused   map[string]uint64 `json:"refused"`   // refusals by reason ("bad_nonce", "duplicate", "full", ...)
}

// Pending is one pending transaction.
type Pending struct {
	Hash     state.Hash    `json:"hash"`
	Sender   state.Address `json:"sender"`
	Nonce    uint64        `json:"nonce"`
	Fee      state.Amount  `json:"fee"`
	Size     int           `json:"size"`
	Admitted uint64        `json:"admitted_height"` // the mempool's height when it was admitted
}

// Queue is one sender's pending transactions.
type Queue struct {
	Sender  state.Address `json:"sender"`
	Count   int           `json:"count"`
	Bytes   int           `json:"bytes"`
	Nonce   uint64        `json:"nonce"`   // the account's nonce: the first pending transaction's
	Balance state.Amount  `json:"balance"` // the account's committed balance
	Spent   state.Amount  `json:"spent"`   // what its pending transactions cost
	HeadFee state.Amount  `json:"head_fee"`
}

// Snapshot returns the mempool's state with up to maxQueues sender queues. It takes O(senders) under the lock.
func (m *Mempool) Snapshot(maxQueues int) Snapshot {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := Snapshot{
		Count: len(m.mu.byHash), Bytes: m.mu.bytes, MaxTxs: m.cfg.MaxTxs, MaxBytes: m.cfg.MaxBytes,
		Senders: len(m.mu.senders), Height: m.mu.height,
		Admitted: m.mu.stats.admitted, Committed: m.mu.stats.committed, Dropped: m.mu.stats.dropped, Evicted: m.mu.stats.evicted,
		Refused: make(map[string]uint64, len(m.mu.stats.refused)),
	}
	for k, v := range m.mu.stats.refused {
		s.Refused[k] = v
	}
	var oldest *entry
	for _, q := range m.mu.senders {
		// Within a sender, arrival follows nonce order except for batches admitted out of order, so the
		// oldest of all is nearly always some sender's first; look at every entry to be exact.
		for _, e := range q.txs {
			if oldest == nil || e.seq < oldest.seq {
				oldest = e
			}
		}
		s.Queues = append(s.Queues, Queue{Sender: q.addr, Count: len(q.txs), Bytes: q.bytes, Nonce: q.base.Nonce,
			Balance: state.Amount(q.base.Balance), Spent: state.Amount(q.spent), HeadFee: state.Amount(q.txs[0].tx.Fee)})
	}
	slices.SortFunc(s.Queues, func(a, b Queue) int {
		if c := cmp.Compare(b.Count, a.Count); c != 0 {
			return c
		}
		return slices.Compare(a.Sender[:], b.Sender[:])
	})
	s.Queues = s.Queues[:min(len(s.Queues), max(maxQueues, 0))]
	if oldest != nil {
		t := oldest.tx
		s.Oldest = &Pending{Hash: t.Hash(), Sender: t.Sender, Nonce: t.Nonce, Fee: state.Amount(t.Fee), Size: t.Size(), Admitted: oldest.height}
	}
	return s
}
