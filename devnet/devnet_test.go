package devnet

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// lineWatcher is an io.Writer that keeps what is written and signals when a line containing want appears.
type lineWatcher struct {
	mu   sync.Mutex
	buf  bytes.Buffer
	want string
	seen chan struct{}
	once sync.Once
}

func (w *lineWatcher) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.buf.Write(p)
	if strings.Contains(w.buf.String(), w.want) {
		w.once.Do(func() { close(w.seen) })
	}
	return len(p), nil
}

func (w *lineWatcher) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.buf.String()
}

func buildBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "shoulders")
	cmd := exec.Command("go", "build", "-o", bin, "github.com/shouldersnet/shoulders/cmd/shoulders")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("building shoulders: %v\n%s", err, out)
	}
	return bin
}

// The README's first command: a devnet of separate node processes finds itself, says so, and stops cleanly
// on interrupt; started again on the same directory it brings back the same nodes.
func TestDevnetFindsItselfAndStopsCleanly(t *testing.T) {
	if testing.Short() {
		t.Skip("builds the binary and runs node processes: skipped in -short mode")
	}
	bin := buildBinary(t)
	dir := t.TempDir()
	cfg := Config{Exe: bin, Dir: dir, Validators: 3, Nodes: 1, StatusEvery: 100 * time.Millisecond}

	// run starts the devnet, waits until its nodes found each other, runs during (if not nil) and stops it.
	run := func(during func(members []Member)) string {
		out := &lineWatcher{want: "all 4 nodes found each other", seen: make(chan struct{})}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- Run(ctx, cfg, out) }()
		select {
		case <-out.seen:
		case err := <-done:
			t.Fatalf("devnet ended early: %v\n%s", err, out)
		case <-time.After(90 * time.Second):
			cancel()
			<-done
			t.Fatalf("the nodes did not find each other in 90s:\n%s", out)
		}
		if during != nil {
			members, err := Prepare(cfg)
			if err != nil {
				t.Fatal(err)
			}
			during(members)
		}
		cancel()
		select {
		case err := <-done:
			if err != nil {
				t.Fatalf("devnet: %v\n%s", err, out)
			}
		case <-time.After(30 * time.Second):
			t.Fatalf("devnet did not stop within 30s:\n%s", out)
		}
		if !strings.Contains(out.String(), "devnet: stopped") {
			t.Fatalf("no clean stop reported:\n%s", out)
		}
		return out.String()
	}

	// The README's flow: a transfer from the first node's account to the observer's, waited for, then the
	// observer's balance.
	var height string
	first := run(func(members []Member) {
		to := members[3]
		out, err := exec.Command(bin, "transfer", to.PeerID, "1234", "--wait", "--home", members[0].Home).CombinedOutput()
		if err != nil || !strings.Contains(string(out), "committed at height") {
			t.Fatalf("transfer: %v\n%s", err, out)
		}
		height = strings.TrimSuffix(strings.Fields(string(out[strings.Index(string(out), "committed at height"):]))[3], ":")
		// The observer follows the chain by block sync: let its API wait for that height, then ask it.
		if out, err := exec.Command(bin, "ledger", "block", height, "--wait", "30s", "--api", to.API).CombinedOutput(); err != nil {
			t.Fatalf("the observer never reached height %s: %v\n%s", height, err, out)
		}
		out, err = exec.Command(bin, "ledger", "account", to.PeerID, "--api", to.API).CombinedOutput()
		if want := fmt.Sprintf("balance: %d", FundEach+1234); err != nil || !strings.Contains(string(out), want) {
			t.Fatalf("the observer's view of the account: %v\n%s", err, out)
		}
	})
	t.Logf("transfer committed at height %s", height)
	members, err := Prepare(cfg)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range members {
		if !strings.Contains(first, m.PeerID) || !strings.Contains(first, m.API) {
			t.Fatalf("%s (%s at %s) is not in the devnet's listing:\n%s", m.Name, m.PeerID, m.API, first)
		}
		log, err := os.ReadFile(m.Log)
		if err != nil || !strings.Contains(string(log), "node stopped") {
			t.Fatalf("%s's log does not end in a clean stop: %v\n%s", m.Name, err, log)
		}
	}
	// Same directory, same nodes, same chain.
	second := run(func(members []Member) {
		out, err := exec.Command(bin, "ledger", "account", members[3].PeerID, "--api", members[0].API).CombinedOutput()
		if err != nil || !strings.Contains(string(out), fmt.Sprintf("balance: %d", FundEach+1234)) {
			t.Fatalf("after a restart the transfer is gone: %v\n%s", err, out)
		}
	})
	for _, m := range members {
		if !strings.Contains(second, m.PeerID) {
			t.Fatalf("restarted devnet lost %s (%s):\n%s", m.Name, m.PeerID, second)
		}
	}
}

func TestPrepareRefusesNonsense(t *testing.T) {
	for _, v := range []int{0, -1, 101} {
		if _, err := Prepare(Config{Dir: t.TempDir(), Validators: v}); err == nil || !strings.Contains(err.Error(), "--validators") {
			t.Errorf("--validators %d: %v", v, err)
		}
	}
	if _, err := Prepare(Config{Dir: t.TempDir(), Validators: 4, Nodes: 97}); err == nil || !strings.Contains(err.Error(), "--nodes") {
		t.Errorf("--nodes 97: %v", err)
	}
}
