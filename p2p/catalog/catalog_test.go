package catalog

import (
	"crypto/rand"
	"io"
	"log/slog"
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

func newAuthor(t *testing.T) author {
	k, _, err := crypto.GenerateEd25519Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	id, _ := peer.IDFromPrivateKey(k)
	return author{k, id}
}

func (a author) offer(t *testing.T, seq uint64, at time.Time, ttl time.Duration, cores uint32) *announce.Verified {
	t.Helper()
	raw, err := announce.Sign(a.key, pb.Kind_KIND_WORKER_OFFER, seq, at, ttl, &pb.WorkerOffer{
		Roles: []string{"worker"}, CpuCores: cores, Version: "test",
	})
	if err != nil {
		t.Fatal(err)
	}
	v, err := announce.Open(raw, at)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

func TestNewerReplacesOlderNeverTheReverse(t *testing.T) {
	clk := &clock{time.UnixMilli(1_790_000_000_000)}
	c, err := Open(openDB(t, vfs.NewMem()), clk.now, quiet)
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
	c, _ := Open(db, clk.now, quiet)
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
	c, _ := Open(db, clk.now, quiet)
	a, b := newAuthor(t), newAuthor(t)
	c.Put(a.offer(t, 1, clk.t, time.Hour, 8), b.id)
	c.Put(b.offer(t, 1, clk.t, time.Hour, 2), b.id)
	// Someone edits the store: b's entry now carries a's announcement under b's key, and a junk key appears.
	ea, _ := c.Get(pb.Kind_KIND_WORKER_OFFER, a.id.String())
	c.mu.Lock()
	forged := c.recordLocked(&ea)
	c.mu.Unlock()
	db.Set([]byte(storageKey(pb.Kind_KIND_WORKER_OFFER, b.id.String())), forged, pebble.Sync)
	db.Set([]byte(keyPrefix+"worker/junk"), []byte("{not json"), pebble.Sync)
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}

	clk.t = clk.t.Add(time.Minute)
	c2, err := Open(openDB(t, fs), clk.now, quiet)
	if err != nil {
		t.Fatal(err)
	}
	got := c2.List(pb.Kind_KIND_UNSPECIFIED)
	if len(got) != 1 || got[0].Announcer != a.id || got[0].ReceivedFrom != b.id || got[0].Announcement.Body.(*pb.WorkerOffer).CpuCores != 8 {
		t.Fatalf("after reopen: %+v", got)
	}
}
