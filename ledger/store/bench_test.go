package store

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/shouldersnet/shoulders/ledger/consensus"
)

// BenchmarkCommitHeight measures the per-height batch (block, certificate, validator set, height) on the
// real filesystem under the test's temporary directory, synced: each op is one fsync'd Pebble batch
// holding a block of 100 transactions of 250 bytes. Compare with BenchmarkFsyncBaseline, one write and
// fsync of a file of the same size on the same disk: the floor any durable store pays.
func BenchmarkCommitHeight(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	c := newChain(b)
	s.Init(c.g)
	var ds []*consensus.Decision
	b.ReportAllocs()
	for b.Loop() {
		if len(ds) == 0 {
			b.StopTimer()
			for range 1024 {
				ds = append(ds, c.next(100, 250))
			}
			b.StartTimer()
		}
		if err := s.CommitHeight(ds[0], nil, nil); err != nil {
			b.Fatal(err)
		}
		ds = ds[1:]
	}
	b.SetBytes(int64(len(consensus.EncodeBlock(c.next(100, 250).Block))))
}

// BenchmarkSaveSignState measures the synced write that must precede every vote a validator sends.
func BenchmarkSaveSignState(b *testing.B) {
	s, err := Open(b.TempDir(), Options{})
	if err != nil {
		b.Fatal(err)
	}
	defer s.Close()
	ss := consensus.SignState{Height: 1, Step: consensus.StepPrevote, POLRound: -1, LockedRound: -1}
	for b.Loop() {
		ss.Round++
		if err := s.SaveSignState(&ss, nil); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkFsyncBaseline overwrites a block-sized buffer in a file and fsyncs it: the floor under
// BenchmarkCommitHeight on this disk.
func BenchmarkFsyncBaseline(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "baseline"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 100*(250+4)+200)
	b.SetBytes(int64(len(buf)))
	for b.Loop() {
		if _, err := f.WriteAt(buf, 0); err != nil { // in place, like Pebble's recycled WAL
			b.Fatal(err)
		}
		if err := f.Sync(); err != nil {
			b.Fatal(err)
		}
	}
}
