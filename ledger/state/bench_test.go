package state

import (
	"fmt"
	"testing"

	"github.com/hdevalence/ed25519consensus"
)

// signedTxs returns n fresh (unverified) transfers from senders distinct keys, round robin.
func signedTxs(b *testing.B, n, senders int) []*Tx {
	raws := make([][]byte, n)
	for i := range raws {
		key := testKey(i % senders)
		raw, err := SignTransfer(key, testChain, uint64(i/senders), 1, AddressFromKey(testKey(senders+i%7)), 10)
		if err != nil {
			b.Fatal(err)
		}
		raws[i] = raw
	}
	txs := make([]*Tx, n)
	for i, raw := range raws {
		tx, err := DecodeTx(raw)
		if err != nil {
			b.Fatal(err)
		}
		txs[i] = tx
	}
	return txs
}

func fresh(b *testing.B, txs []*Tx) []*Tx {
	out := make([]*Tx, len(txs))
	for i, t := range txs {
		c, err := DecodeTx(t.Bytes())
		if err != nil {
			b.Fatal(err)
		}
		out[i] = c
	}
	return out
}

// BenchmarkVerify reports the cost per signature (ns/sig) of Verify one by one, of VerifyBatch, and of
// ed25519consensus's own batch verifier as the baseline, for batches of distinct senders and of few.
func BenchmarkVerify(b *testing.B) {
	b.Run("single", func(b *testing.B) {
		txs := signedTxs(b, 256, 256)
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			c := fresh(b, txs[i%len(txs):i%len(txs)+1])
			b.StartTimer()
			if err := c[0].Verify(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N), "ns/sig")
	})
	for _, size := range []int{16, 64, 128, 256, 1024} {
		for _, senders := range []int{size, 100, 10} {
			if senders > size {
				continue
			}
			txs := signedTxs(b, size, senders)
			b.Run(fmt.Sprintf("batch=%d/senders=%d", size, senders), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					b.StopTimer()
					c := fresh(b, txs)
					b.StartTimer()
					for _, err := range VerifyBatch(c) {
						if err != nil {
							b.Fatal(err)
						}
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sig")
			})
			if senders != size {
				continue
			}
			b.Run(fmt.Sprintf("ed25519consensus-batch=%d", size), func(b *testing.B) {
				for i := 0; i < b.N; i++ {
					bv := ed25519consensus.NewPreallocatedBatchVerifier(size)
					for _, t := range txs {
						bv.Add(t.Sender[:], t.signBytes(), t.signature())
					}
					if !bv.Verify() {
						b.Fatal("batch failed")
					}
				}
				b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*size), "ns/sig")
			})
		}
	}
}

// BenchmarkExecute measures Execute of a block of 1,000 transfers from 1,000 senders whose accounts are
// cached (they sent a block before), with signatures already verified by the mempool (known) and without
// (Execute batch-verifies them).
func BenchmarkExecute(b *testing.B) {
	const n = 1000
	g := testGenesis(n, 1<<40)
	nd := newNode(b, g, Options{})
	first := make([][]byte, n)
	for i := range first {
		first[i] = transfer(b, uint64(i), 0, 1, addr((i+1)%n), 5)
	}
	nd.run(first, addr(5000))
	raws := make([][]byte, n)
	for i := range raws {
		raws[i] = transfer(b, uint64(i), 1, 1, addr((i+7)%n), 5)
	}
	blk := nd.block(raws)
	txs := make(map[Hash]*Tx, n)
	for _, raw := range raws {
		t, _ := DecodeTx(raw)
		_ = t.Verify()
		txs[t.Hash()] = t
	}
	known := func(h Hash) *Tx { return txs[h] }
	b.Run("verified", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			res, err := nd.app.Execute(blk, addr(5000), known)
			if err != nil || res.Txs[n-1].Code != CodeOK {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tx")
	})
	b.Run("unverified", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			res, err := nd.app.Execute(blk, addr(5000), nil)
			if err != nil || res.Txs[n-1].Code != CodeOK {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tx")
	})
	b.Run("decode", func(b *testing.B) {
		for i := 0; i < b.N; i++ {
			for _, raw := range raws {
				if _, err := DecodeTx(raw); err != nil {
					b.Fatal(err)
				}
			}
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*n), "ns/tx")
	})
}
