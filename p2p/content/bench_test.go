package content

import (
	"bytes"
	"context"
	"fmt"
	"math/rand/v2"
	"testing"
)

// BenchmarkFetch fetches a 64 MiB blob on loopback TCP from one provider and from two at once, each
// iteration by a fresh node with an empty store, with stores on disk and in memory; BenchmarkTCPCopy is
// the baseline: the same bytes over one plain TCP connection. Compare MB/s. `shoulders bench content`
// prints the three side by side.
func BenchmarkFetch(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	for _, inMemory := range []bool{false, true} {
		store := map[bool]string{false: "disk", true: "memory"}[inMemory]
		b.Run("store="+store, func(b *testing.B) {
			r := &benchRig{cfg: FetchBenchConfig{Dir: b.TempDir(), InMemory: inMemory, Log: quiet}}
			defer r.close()
			p1, err := r.node(nil)
			if err != nil {
				b.Fatal(err)
			}
			p2, err := r.node(p1)
			if err != nil {
				b.Fatal(err)
			}
			ctx := context.Background()
			root, _, err := p1.svc.Add(bytes.NewReader(data))
			if err != nil {
				b.Fatal(err)
			}
			if _, _, err := p2.svc.Add(bytes.NewReader(data)); err != nil {
				b.Fatal(err)
			}
			if err := p1.svc.Provide(ctx, root); err != nil {
				b.Fatal(err)
			}
			for _, provs := range [][]*benchNode{{p1}, {p1, p2}} {
				b.Run(fmt.Sprintf("providers=%d", len(provs)), func(b *testing.B) {
					b.SetBytes(size)
					for b.Loop() {
						if _, err := r.fetch(ctx, root, provs); err != nil {
							b.Fatal(err)
						}
					}
				})
			}
		})
	}
}

func BenchmarkTCPCopy(b *testing.B) {
	const size = 64 << 20
	data := make([]byte, size)
	b.SetBytes(size)
	for b.Loop() {
		if _, err := tcpCopy(context.Background(), data); err != nil {
			b.Fatal(err)
		}
	}
}
