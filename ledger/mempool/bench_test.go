package mempool

import (
	"testing"

	"github.com/shouldersnet/shoulders/ledger/state"
)

// poolTxs returns n transfers from senders senders (n/senders each, nonces 0..), fees varying.
func poolTxs(b *testing.B, n, senders int) []*state.Tx {
	out := make([]*state.Tx, n)
	for i := range out {
		s := i % senders
		out[i] = tx(b, s, uint64(i/senders), 1+uint64(i%7), (s+1)%senders, 5)
	}
	return out
}

func fresh(b *testing.B, txs []*state.Tx) []*state.Tx {
	out := make([]*state.Tx, len(txs))
	for i, t := range txs {
		out[i], _ = state.DecodeTx(t.Bytes())
	}
	return out
}

// BenchmarkAdd admits 10,000 transactions from 1,000 senders, in batches of 100: with signatures already
// checked (the mempool's own bookkeeping) and unchecked (Add batch-verifies them).
func BenchmarkAdd(b *testing.B) {
	const n, senders, batch = 10_000, 1_000, 100
	c := newChain(b, genesis(senders, 1<<40))
	txs := poolTxs(b, n, senders)
	for _, t := range txs {
		_ = t.Verify()
	}
	run := func(b *testing.B, verified bool) {
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			m := New(c.app, Config{})
			in := txs
			if !verified {
				in = fresh(b, txs)
			}
			b.StartTimer()
			for j := 0; j < n; j += batch {
				for _, err := range m.Add(in[j : j+batch]) {
					if err != nil {
						b.Fatal(err)
					}
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tx")
	}
	b.ResetTimer()
	b.Run("verified", func(b *testing.B) { run(b, true) })
	b.Run("unverified", func(b *testing.B) { run(b, false) })
}

// BenchmarkReap takes 1,000 transactions from a mempool of 10,000 (from 1,000 and from 10,000 senders).
func BenchmarkReap(b *testing.B) {
	for _, senders := range []int{1_000, 10_000} {
		b.Run(map[int]string{1000: "senders=1000", 10000: "senders=10000"}[senders], func(b *testing.B) {
			c := newChain(b, genesis(senders, 1<<40))
			m := New(c.app, Config{})
			txs := poolTxs(b, 10_000, senders)
			for _, t := range txs {
				_ = t.Verify()
			}
			for _, err := range m.Add(txs) {
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if got := m.Reap(1000, 4<<20); len(got) != 1000 {
					b.Fatal(len(got))
				}
			}
		})
	}
}

// BenchmarkUpdate removes a committed block of 1,000 transactions (the first of each of 1,000 senders) from
// a mempool of 10,000 and re-checks those senders.
func BenchmarkUpdate(b *testing.B) {
	const senders = 1000
	txs := poolTxs(b, 10_000, senders)
	for _, t := range txs {
		_ = t.Verify()
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		c := newChain(b, genesis(senders, 1<<40))
		m := New(c.app, Config{})
		m.Add(txs)
		var raws [][]byte
		for _, t := range m.Reap(1000, 4<<20) {
			raws = append(raws, t.Bytes())
		}
		res := c.commit(raws, m)
		b.StartTimer()
		if err := m.Update(res); err != nil {
			b.Fatal(err)
		}
		if m.Len() != 9000 {
			b.Fatal(m.Len())
		}
	}
}
