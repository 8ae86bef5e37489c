package devnet

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"io"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
)

// faultNet is a 4-validator devnet of real node processes under a steady load of transfers.
type faultNet struct {
	t       *testing.T
	net     *Net
	clients []*node.Client
	keys    []ed25519.PrivateKey // sender i submits through validator i % 4
	nonces  []uint64
	chainID string
	fee     uint64

	mu        sync.Mutex
	submitted map[string]bool // hash → admitted by a validator
	stopLoad  context.CancelFunc
	loadDone  sync.WaitGroup
}

func startFaultNet(t *testing.T) *faultNet {
	if testing.Short() {
		t.Skip("runs four node processes through faults: skipped in -short mode")
	}
	bin := buildBinary(t)
	f := &faultNet{t: t, submitted: map[string]bool{}}
	var accounts []state.Address
	for range 8 {
		_, k, _ := ed25519.GenerateKey(rand.Reader)
		f.keys = append(f.keys, k)
		accounts = append(accounts, state.AddressFromKey(k))
	}
	f.nonces = make([]uint64, len(f.keys))
	net, err := Start(Config{Exe: bin, Dir: t.TempDir(), Validators: 4, Accounts: accounts, LogLevel: "warn"}, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	f.net = net
	t.Cleanup(net.Stop)
	for _, m := range net.Members {
		c, _ := node.NewClient(m.API)
		f.clients = append(f.clients, c)
	}
	f.waitUp(0, 1, 2, 3)
	st, err := f.clients[0].LedgerStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.chainID, f.fee = st.ChainID, uint64(st.MinFee)
	return f
}

// waitUp waits (bounded) until the given nodes answer and have committed a block: a process that is
// starting refuses connections, so ask again every 100 ms.
func (f *faultNet) waitUp(nodes ...int) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	for _, i := range nodes {
		for {
			_, err := f.clients[i].Block(ctx, 1, 10*time.Second, true)
			if err == nil {
				break
			}
			if !errors.Is(err, node.ErrUnreachable) || ctx.Err() != nil {
				f.t.Fatalf("%s did not come up: %v", f.net.Members[i].Name, err)
			}
			select {
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
}

// load submits transfers every 50 ms through every validator that answers, until stopped.
func (f *faultNet) load() {
	ctx, cancel := context.WithCancel(context.Background())
	f.stopLoad = cancel
	to := state.AddressFromKey(f.keys[0])
	for v := range 4 {
		f.loadDone.Go(func() {
			tick := time.NewTicker(50 * time.Millisecond)
			defer tick.Stop()
			for {
				select {
				case <-ctx.Done():
					return
				case <-tick.C:
				}
				for s := v; s < len(f.keys); s += 4 {
					f.mu.Lock()
					nonce := f.nonces[s]
					f.mu.Unlock()
					raw, err := state.SignTransfer(f.keys[s], f.chainID, nonce, f.fee, to, 1)
					if err != nil {
						f.t.Error(err)
						return
					}
					rctx, rcancel := context.WithTimeout(ctx, 2*time.Second)
					res, err := f.clients[v].Submit(rctx, [][]byte{raw}, false)
					rcancel()
					if err != nil || res[0].Status != "pending" {
						continue // the validator is down or paused: this sender waits for it
					}
					f.mu.Lock()
					f.nonces[s]++
					f.submitted[res[0].Hash] = true
					f.mu.Unlock()
				}
			}
		})
	}
}

func (f *faultNet) stop() {
	f.stopLoad()
	f.loadDone.Wait()
}

// height is the committed height of node i.
func (f *faultNet) height(i int) uint64 {
	f.t.Helper()
	st, err := f.clients[i].LedgerStatus(context.Background())
	if err != nil {
		f.t.Fatalf("%s: %v", f.net.Members[i].Name, err)
	}
	return st.Height
}

// reaches waits until node i has committed height h (bounded) and reports whether it did.
func (f *faultNet) reaches(i int, h uint64, within time.Duration) bool {
	ctx, cancel := context.WithTimeout(context.Background(), within)
	defer cancel()
	for ctx.Err() == nil {
		wait := min(time.Until(deadlineOf(ctx)), 10*time.Second)
		_, err := f.clients[i].Block(ctx, h, wait, true)
		if err == nil {
			return true
		}
		if errors.Is(err, node.ErrUnreachable) {
			select { // the node is down or starting: ask again shortly
			case <-ctx.Done():
			case <-time.After(100 * time.Millisecond):
			}
		}
	}
	return false
}

func deadlineOf(ctx context.Context) time.Time {
	d, _ := ctx.Deadline()
	return d
}

// agree checks that every node holds the same blocks (hash and app hash) up to height h, so the same
// transactions; that transfers the validators admitted were committed; and that no validator reported
// evidence of equivocation (all four are honest).
func (f *faultNet) agree(h uint64) {
	f.t.Helper()
	ctx := context.Background()
	chains := make([][]node.BlockView, len(f.clients))
	for i, c := range f.clients {
		for height := uint64(1); height <= h; height++ {
			b, err := c.Block(ctx, height, 30*time.Second, true)
			if err != nil {
				f.t.Fatalf("%s: block %d: %v", f.net.Members[i].Name, height, err)
			}
			chains[i] = append(chains[i], b)
		}
	}
	for i := range chains[1:] {
		for j, b := range chains[i+1] {
			if a := chains[0][j]; b.Hash != a.Hash || b.AppHash != a.AppHash {
				f.t.Fatalf("fork at height %d: %s has %s, %s has %s", b.Height, f.net.Members[0].Name, a.Hash, f.net.Members[i+1].Name, b.Hash)
			}
		}
	}
	committed := 0
	f.mu.Lock()
	for _, b := range chains[0] {
		for _, hash := range b.TxHashes {
			if f.submitted[hash] {
				committed++
			}
		}
	}
	f.mu.Unlock()
	if committed == 0 {
		f.t.Fatal("no transfer was committed under the load")
	}
	for i, c := range f.clients {
		d, err := c.Consensus(ctx)
		if err != nil {
			f.t.Fatalf("%s: %v", f.net.Members[i].Name, err)
		}
		if d.Evidence != 0 {
			f.t.Fatalf("%s reported %d pieces of evidence among honest validators", f.net.Members[i].Name, d.Evidence)
		}
	}
	f.t.Logf("%d heights and %d committed transfers agree on all four nodes", h, committed)
}

// waitActive follows node 0's chain from height from+1 until validator i proposes a block or signs a
// certificate (a certificate holds the first two thirds of precommits, so not every one carries every live
// signer), for at most a minute; it fails the test if that never happens.
func (f *faultNet) waitActive(i int, from uint64) {
	f.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	id := f.net.Members[i].PeerID
	for h := from + 1; ctx.Err() == nil; {
		b, err := f.clients[0].Block(ctx, h, 10*time.Second, true)
		var apiErr *node.APIError
		switch {
		case errors.As(err, &apiErr) && apiErr.Status == 404:
			continue // not committed within the wait: ask again
		case err != nil && ctx.Err() == nil:
			f.t.Fatalf("%s: block %d: %v", f.net.Members[0].Name, h, err)
		case err != nil:
			continue
		}
		if b.Proposer == id || slices.Contains(b.Certificate.Signers, id) {
			f.t.Logf("%s is active again at height %d (%d heights after %d)", f.net.Members[i].Name, h, h-from, from)
			return
		}
		h++
	}
	f.t.Fatalf("%s neither proposed nor signed a block within a minute after height %d (node 0 at %d)", f.net.Members[i].Name, from, f.height(0))
}

// kill -9 one of four validators under load: the chain keeps committing; the killed node restarts, syncs
// and rejoins; every node agrees on every block and app hash, and no committed transfer is lost.
func TestKillOneOfFourUnderLoad(t *testing.T) {
	f := startFaultNet(t)
	f.load()
	if err := f.net.Kill(3); err != nil {
		t.Fatal(err)
	}
	h := f.height(0)
	if !f.reaches(0, h+10, 30*time.Second) {
		t.Fatalf("with one validator of four dead, the chain did not commit 10 more blocks in 30s (at %d)", f.height(0))
	}
	if err := f.net.Restart(3); err != nil {
		t.Fatal(err)
	}
	f.waitUp(3)
	head := f.height(0)
	if !f.reaches(3, head, 30*time.Second) {
		t.Fatalf("the restarted validator did not catch up to %d in 30s", head)
	}
	// It takes part again: it proposes or signs a block.
	f.waitActive(3, head)
	f.stop()
	f.agree(f.height(3))
}

// kill -9 two of four: the chain halts without forking, and resumes when one of them returns.
func TestKillTwoOfFourHaltsAndResumes(t *testing.T) {
	f := startFaultNet(t)
	f.load()
	if err := f.net.Kill(2); err != nil {
		t.Fatal(err)
	}
	if err := f.net.Kill(3); err != nil {
		t.Fatal(err)
	}
	// In flight when they died, at most one more height can still be decided; after that, nothing.
	h := max(f.height(0), f.height(1)) + 1
	f.reaches(0, h, 2*time.Second)
	h = max(f.height(0), f.height(1))
	if f.reaches(0, h+1, 5*time.Second) || f.reaches(1, h+1, time.Second) {
		t.Fatalf("with two validators of four dead the chain went on past %d", h)
	}
	if err := f.net.Restart(2); err != nil {
		t.Fatal(err)
	}
	f.waitUp(2)
	if !f.reaches(0, h+5, 60*time.Second) {
		t.Fatalf("the chain did not resume after a validator came back (at %d)", f.height(0))
	}
	if err := f.net.Restart(3); err != nil {
		t.Fatal(err)
	}
	f.waitUp(3)
	if !f.reaches(3, f.height(0), 30*time.Second) {
		t.Fatal("the last validator did not catch up")
	}
	f.stop()
	f.agree(f.height(3))
}

// SIGSTOP a validator for 10 s under load: the others go on; once it continues, it catches up, and every
// node agrees.
func TestPausedValidatorCatchesUp(t *testing.T) {
	f := startFaultNet(t)
	f.load()
	if err := f.net.Signal(1, syscall.SIGSTOP); err != nil {
		t.Fatal(err)
	}
	h := f.height(0)
	paused := time.Now()
	if !f.reaches(0, h+10, 30*time.Second) {
		t.Fatalf("with one validator paused, the chain did not commit 10 more blocks (at %d)", f.height(0))
	}
	// The fault lasts 10 seconds, as the issue states it: a duration to hold, not an event to wait for.
	if rest := 10*time.Second - time.Since(paused); rest > 0 {
		<-time.After(rest)
	}
	if err := f.net.Signal(1, syscall.SIGCONT); err != nil {
		t.Fatal(err)
	}
	head := f.height(0)
	if !f.reaches(1, head, 30*time.Second) {
		t.Fatal("the paused validator did not catch up")
	}
	f.waitActive(1, head)
	f.stop()
	f.agree(f.height(1))
}
