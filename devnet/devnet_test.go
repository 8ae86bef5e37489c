package devnet

import (
	"bytes"
	"context"
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
	cfg := Config{Exe: bin, Dir: dir, Nodes: 3, StatusEvery: 100 * time.Millisecond}

	run := func() string {
		out := &lineWatcher{want: "all 3 nodes found each other", seen: make(chan struct{})}
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

	first := run()
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
	// Same directory, same nodes.
	second := run()
	for _, m := range members {
		if !strings.Contains(second, m.PeerID) {
			t.Fatalf("restarted devnet lost %s (%s):\n%s", m.Name, m.PeerID, second)
		}
	}
}

func TestPrepareRefusesNonsense(t *testing.T) {
	for _, n := range []int{0, -1, 101} {
		if _, err := Prepare(Config{Dir: t.TempDir(), Nodes: n}); err == nil || !strings.Contains(err.Error(), "--nodes") {
			t.Errorf("--nodes %d: %v", n, err)
		}
	}
}
