package catalog

import (
	"context"
	"crypto/rand"
	"io"
	"log/slog"
	"sync"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/p2p/announce"
	pb "github.com/shouldersnet/shoulders/proto"
)

type clock struct{ t time.Time }

func (c *clock) now() time.Time { return c.t }

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

const testNet = "testnet"

func openDB(t *testing.T, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("db", &pebble.Options{FS: fs, FormatMajorVersion: pebble.FormatValueSeparation, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	return db
}

type quietPebble struct{}

func (quietPebble) Infof(string, ...any)  {}
func (quietPebble) Errorf(string, ...any) {}
func (quietPebble) Fatalf(format string, args ...any) {
	panic("pebble fatal")
}

type author struct {
	key crypto.PrivKey
	id  peer.ID
}

func newAuthor(t testing.TB) author {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return author{k, id}
}

func (a author) offer(t testing.TB, seq uint64, at time.Time, ttl time.Duration, cores uint32) *announce.Verified {
	t.Helper()
	return a.offerIn(t, testNet, seq, at, ttl, cores)
}

func (a author) offerIn(t testing.TB, network string, seq uint64, at time.Time, ttl time.Duration, cores uint32) *announce.Verified {
	t.Helper()
	raw, err := announce.Sign(a.key, network, pb.Kind_KIND_WORKER_OFFER, seq, at, ttl, &pb.WorkerOffer{
		Roles: []string{"worker"}, CpuCores: cores, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := announce.Open(raw, network, at)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewerReplacesOlderNeverTheReverse(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	c, err := Open(openDB(t, vfs.NewMem()), Config{Network: testNet, Now: clk.now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	a := newAuthor(t)
	relay := newAuthor(t).id

	changed := c.Changed()
	if ok, err := c.Put(a.offer(t, 5, clk.t, time.Minute, 4), relay); !ok || err != nil {
		t.Fatalf("first put: %v %v", ok, err)
	}
	select {
	case <-changed:
	default:
		t.Fatal("Changed did not fire on a new subject")
	}
	firstSeen := clk.t

	clk.t = clk.t.Add(time.Second)
	if ok, _ := c.Put(a.offer(t, 4, clk.t, time.Minute, 99), relay); ok {
		t.Fatal("an older announcement replaced a newer one")
	}
	changed = c.Changed()
	if ok, _ := c.Put(a.offer(t, 5, firstSeen, time.Minute, 4), a.id); ok {
		t.Fatal("the same announcement again counted as new")
	}
	select {
	case <-changed:
		t.Fatal("Changed fired for a duplicate")
	default:
	}
	e, ok := c.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String())
	if !ok || e.Seq != 5 || e.LastSeen != clk.t || e.FirstSeen != firstSeen {
		t.Fatalf("after duplicate: %+v", e)
	}

	clk.t = clk.t.Add(time.Second)
	if ok, _ := c.Put(a.offer(t, 6, clk.t, time.Minute, 16), a.id); !ok {
		t.Fatal("a newer announcement was not taken")
	}
	e, _ = c.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String())
	if e.Announcement.Body.(*pb.WorkerOffer).CpuCores != 16 || e.FirstSeen != firstSeen || e.ReceivedFrom != a.id {
		t.Fatalf("newer entry: %+v", e)
	}
}

func TestExpiredEntriesDisappear(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	db := openDB(t, vfs.NewMem())
	c, _ := Open(db, Config{Network: testNet, Now: clk.now, Log: quiet})
	a, b := newAuthor(t), newAuthor(t)
	c.Put(a.offer(t, 1, clk.t, time.Minute, 1), a.id)
	c.Put(b.offer(t, 1, clk.t, time.Hour, 1), b.id)

	clk.t = clk.t.Add(2 * time.Minute)
	if got := c.List(pb.Kind_KIND_WORKER_OFFER); len(got) != 1 || got[0].Announcer != b.id {
		t.Fatalf("after a's expiry, list = %v", got)
	}
	if _, ok := c.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String()); ok {
		t.Fatal("expired entry still readable")
	}
	// An expired subject takes any new announcement, even with a lower seq (the author restarted with a
	// clock behind).
	if ok, _ := c.Put(a.offer(t, 0, clk.t, time.Minute, 1), a.id); !ok {
		t.Fatal("a fresh announcement did not replace an expired one")
	}
	clk.t = clk.t.Add(2 * time.Minute)
	if err := c.sweep(); err != nil {
		t.Fatal(err)
	}
	if _, _, err := db.Get([]byte(storageKey(pb.Kind_KIND_WORKER_OFFER, a.id.String()))); err != pebble.ErrNotFound {
		t.Fatalf("swept entry still on disk: %v", err)
	}
}

func TestSurvivesReopenAndDropsTamperedEntries(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	fs := vfs.NewMem()
	db := openDB(t, fs)
	c, _ := Open(db, Config{Network: testNet, Now: clk.now, Log: quiet})
	a, b := newAuthor(t), newAuthor(t)
	c.Put(a.offer(t, 1, clk.t, time.Hour, 8), b.id)
	c.Put(b.offer(t, 1, clk.t, time.Hour, 2), b.id)
	// Someone edits the store: b's entry now carries a's announcement under b's key, and a junk key appears.
	ea, _ := c.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String())
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	forged := record(&ea)
	db.Set([]byte(storageKey(pb.Kind_KIND_WORKER_OFFER, b.id.String())), forged, pebble.Sync)
	db.Set([]byte(keyPrefix+"worker/junk"), []byte("{not json"), pebble.Sync)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	clk.t = clk.t.Add(time.Minute)
	c2, err := Open(openDB(t, fs), Config{Network: testNet, Now: clk.now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	got := c2.List(pb.Kind_KIND_UNSPECIFIED)
	if len(got) != 1 || got[0].Announcer != a.id || got[0].ReceivedFrom != b.id || got[0].Announcement.Body.(*pb.WorkerOffer).CpuCores != 8 {
		t.Fatalf("after reopen: %+v", got)
	}
}

func TestSameSeqTwoBodiesConverge(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	a := newAuthor(t)
	x, y := a.offer(t, 9, clk.t, time.Minute, 1), a.offer(t, 9, clk.t, time.Minute, 2)
	winner := x
	if y.Supersedes(x) {
		winner = y
	}
	// Whichever arrives first, both catalogs end with the same one.
	for _, order := range [][2]*announce.Verified{{x, y}, {y, x}} {
		c, _ := Open(openDB(t, vfs.NewMem()), Config{Network: testNet, Now: clk.now, Log: quiet})
		c.Put(order[0], a.id)
		c.Put(order[1], a.id)
		if e, _ := c.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String()); e.Announcement.ID != winner.ID {
			t.Fatalf("kept %x, want %x", e.Announcement.ID[:4], winner.ID[:4])
		}
	}
}

func TestLimitsRefuseNewSubjectsOnly(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	c, _ := Open(openDB(t, vfs.NewMem()), Config{Network: testNet, Now: clk.now, Log: quiet, Limits: Limits{PerKind: 2}})
	a, b, x := newAuthor(t), newAuthor(t), newAuthor(t)
	for _, au := range []author{a, b} {
		if ok, err := c.Put(au.offer(t, 1, clk.t, time.Minute, 1), au.id); !ok || err != nil {
			t.Fatal(ok, err)
		}
	}
	if c.HasRoom(pb.Kind_KIND_WORKER_OFFER, x.id.String(), 100) {
		t.Fatal("a full catalog claims room for a new subject")
	}
	if _, err := c.Put(x.offer(t, 1, clk.t, time.Minute, 1), x.id); err != ErrFull {
		t.Fatalf("a third subject: %v, want ErrFull", err)
	}
	if !c.HasRoom(pb.Kind_KIND_WORKER_OFFER, a.id.String(), 100) {
		t.Fatal("a full catalog refuses updates of subjects it holds")
	}
	if ok, err := c.Put(a.offer(t, 2, clk.t, time.Minute, 1), a.id); !ok || err != nil {
		t.Fatalf("an update when full: %v %v", ok, err)
	}
	// Once an entry expires and is swept, a new subject fits again.
	clk.t = clk.t.Add(2 * time.Minute)
	c.Put(b.offer(t, 2, clk.t, time.Hour, 1), b.id)
	if err := c.sweep(); err != nil {
		t.Fatal(err)
	}
	if ok, err := c.Put(x.offer(t, 1, clk.t, time.Minute, 1), x.id); !ok || err != nil || c.Count(pb.Kind_KIND_WORKER_OFFER) != 2 {
		t.Fatalf("after the sweep: %v %v, %d entries", ok, err, c.Count(pb.Kind_KIND_WORKER_OFFER))
	}

	small, _ := Open(openDB(t, vfs.NewMem()), Config{Network: testNet, Now: clk.now, Log: quiet, Limits: Limits{Bytes: 300}})
	small.Put(a.offer(t, 1, clk.t, time.Minute, 1), a.id)
	if _, err := small.Put(b.offer(t, 1, clk.t, time.Minute, 1), b.id); err != ErrFull {
		t.Fatalf("over the byte budget: %v", err)
	}
}

// Writers racing a sweep never leave disk behind memory: after it all, a reopened catalog holds exactly what
// the live one held.
func TestConcurrentWritersAndSweepKeepDiskInStep(t *testing.T) {
	var mu sync.Mutex
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clk.t }
	fs := vfs.NewMem()
	db := openDB(t, fs)
	c, _ := Open(db, Config{Network: testNet, Now: now, Log: quiet})
	authors := []author{newAuthor(t), newAuthor(t), newAuthor(t)}
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 200 {
				au := authors[(w+i)%len(authors)]
				ttl := time.Minute
				if i%3 == 0 {
					ttl = time.Millisecond // expires at once, for the sweeper to race
				}
				c.Put(au.offer(t, uint64(1000+i), now(), ttl, uint32(w+1)), au.id)
			}
		})
	}
	wg.Go(func() {
		for range 200 {
			mu.Lock()
			clk.t = clk.t.Add(time.Millisecond)
			mu.Unlock()
			if err := c.sweep(); err != nil {
				t.Error(err)
			}
		}
	})
	wg.Wait()
	live := c.List(pb.Kind_KIND_UNSPECIFIED)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c2, err := Open(openDB(t, fs), Config{Network: testNet, Now: now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	again := c2.List(pb.Kind_KIND_UNSPECIFIED)
	if len(again) != len(live) {
		t.Fatalf("reopened with %d entries, held %d", len(again), len(live))
	}
	for i := range live {
		if live[i].Announcement.ID != again[i].Announcement.ID {
			t.Fatalf("entry %s: disk has seq %d, memory had %d", live[i].Subject, again[i].Seq, live[i].Seq)
		}
	}
}

func TestAnotherNetworksEntriesAreDroppedOnLoad(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	fs := vfs.NewMem()
	db := openDB(t, fs)
	c, _ := Open(db, Config{Network: "old", Now: clk.now, Log: quiet})
	a := newAuthor(t)
	c.Put(a.offerIn(t, "old", 1, clk.t, time.Hour, 1), a.id)
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	db.Close()
	c2, _ := Open(openDB(t, fs), Config{Network: "new", Now: clk.now, Log: quiet})
	if n := len(c2.List(pb.Kind_KIND_UNSPECIFIED)); n != 0 {
		t.Fatalf("a node moved to another network kept %d of the old network's entries", n)
	}
}

// Puts reach disk at a flush, and Run flushes on its way out: what was put before Run stopped is there
// after a restart, each subject as last put.
func TestRunFlushesOnItsWayOut(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	fs := vfs.NewMem()
	db := openDB(t, fs)
	c, _ := Open(db, Config{Network: testNet, Now: clk.now, Log: quiet})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- c.Run(ctx, time.Hour) }()
	a, b := newAuthor(t), newAuthor(t)
	for seq := range uint64(5) {
		c.Put(a.offer(t, 10+seq, clk.t, time.Hour, uint32(seq+1)), b.id)
	}
	c.Put(b.offer(t, 1, clk.t, time.Hour, 2), b.id)
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	db.Close()
	c2, err := Open(openDB(t, fs), Config{Network: testNet, Now: clk.now, Log: quiet})
	if err != nil {
		t.Fatal(err)
	}
	got := c2.List(pb.Kind_KIND_UNSPECIFIED)
	if len(got) != 2 {
		t.Fatalf("after restart: %d entries, want 2", len(got))
	}
	if e, _ := c2.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String()); e.Seq != 14 || e.Announcement.Body.(*pb.WorkerOffer).CpuCores != 5 {
		t.Fatalf("a's entry after restart: %+v", e)
	}
}
