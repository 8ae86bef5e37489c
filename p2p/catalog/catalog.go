// Package catalog keeps what a node has heard: the newest live announcement of every (kind, subject), with
// who announced it, when it was first and last seen, which peer passed it on, and when it expires. It is the
// node's view of the network's workers (and, as later kinds arrive, its datanets and models).
//
// Every entry holds the signed announcement exactly as received, so the catalog can be handed to another
// peer (the catalog sync protocol) and re-verified there, and is re-verified here when it is loaded from
// Pebble after a restart: a corrupt or tampered store loses the bad entries, never the node.
//
// Contracts:
//   - Put keeps an announcement only if it supersedes the one held for its subject (a higher Seq, or the same
//     Seq and a lower ID); the same announcement again only refreshes LastSeen. So an announcement arriving
//     twice, by gossip and by sync, changes nothing visible but the time it was last seen.
//   - Expired entries are never listed; Run removes them from memory and disk.
//   - The catalog is bounded: at most Limits.PerKind entries of each kind and Limits.Bytes of announcements
//     in all. Past either, announcements of new subjects are refused (ErrFull) until entries expire; updates
//     of subjects already held are always taken. HasRoom lets gossip stop forwarding what nobody can keep.
//   - Disk follows memory: Put and the sweep change memory and mark the subject; Flush writes every marked
//     subject as memory holds it then (or its removal) in one batch. Run flushes every FlushInterval and on
//     its way out, and the owner flushes once more after the last Put, before it closes the store. So a
//     restart never brings back an older entry than the one last flushed, and gossip pays for a map update,
//     not a write, per announcement (a subject updated many times between flushes is written once).
//   - Writes to Pebble are not synced: the catalog is a cache of signed facts that the network repeats, so a
//     crash may lose the last few seconds of it and nothing else.
package catalog

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/shouldersnet/shoulders/p2p/announce"
	pb "github.com/shouldersnet/shoulders/proto"
)

// keyPrefix is the catalog's part of the node's Pebble key space: "catalog/<kind>/<subject>".
const keyPrefix = "catalog/"

// Limits bound the catalog. Zero fields take the defaults.
type Limits struct {
	PerKind int // entries of one kind (default 8,192)
	Bytes   int // signed announcement bytes in all (default 64 MiB)
}

// FlushInterval is how often Run writes the changes of the catalog to disk.
const FlushInterval = time.Second

// Default limits.
const (
	DefaultPerKind = 8192
	DefaultBytes   = 64 << 20
)

// ErrFull is returned by Put for a new subject when the catalog is at one of its limits.
var ErrFull = errors.New("catalog: full")

// Entry is one announcement the catalog holds. Entries returned to callers are copies.
type Entry struct {
	Kind         pb.Kind
	Subject      string
	Announcer    peer.ID
	Seq          uint64
	IssuedAt     time.Time
	ExpiresAt    time.Time
	FirstSeen    time.Time
	LastSeen     time.Time
	ReceivedFrom peer.ID
	Announcement *announce.Verified
}

type entryKey struct {
	kind    pb.Kind
	subject string
}

// Catalog is safe for concurrent use. Everyone takes mu, for memory only; Flush holds flushMu across its
// write to Pebble, so two flushes never overtake each other, and nobody waits on I/O but a flush.
type Catalog struct {
	db      *pebble.DB
	network string
	now     func() time.Time
	log     *slog.Logger
	limits  Limits

	flushMu sync.Mutex

	mu struct {
		sync.Mutex
		entries map[entryKey]*Entry
		perKind map[pb.Kind]int
		bytes   int
		// changed is closed and replaced on every visible change; see Changed.
		changed chan struct{}
		// dirty holds the subjects changed in memory since the last flush.
		dirty map[entryKey]struct{}
	}
}

// Config is what Open needs.
type Config struct {
	// Network is the network whose announcements the catalog holds; any other's are dropped on load.
	Network string
	Now     func() time.Time // the clock: time.Now in production
	Log     *slog.Logger
	Limits  Limits
}

// Open loads the catalog held in db, dropping entries that have expired or no longer verify.
func Open(db *pebble.DB, cfg Config) (*Catalog, error) {
	if cfg.Limits.PerKind == 0 {
		cfg.Limits.PerKind = DefaultPerKind
	}
	if cfg.Limits.Bytes == 0 {
		cfg.Limits.Bytes = DefaultBytes
	}
	c := &Catalog{db: db, network: cfg.Network, now: cfg.Now, log: cfg.Log, limits: cfg.Limits}
	c.mu.entries = make(map[entryKey]*Entry)
	c.mu.perKind = make(map[pb.Kind]int)
	c.mu.changed = make(chan struct{})
	c.mu.dirty = make(map[entryKey]struct{})
	if err := c.load(); err != nil {
		return nil, err
	}
	return c, nil
}

// stored is an entry's form on disk. The signed announcement carries everything else.
type stored struct {
	Raw          []byte    `json:"raw"`
	FirstSeen    time.Time `json:"first_seen"`
	LastSeen     time.Time `json:"last_seen"`
	ReceivedFrom string    `json:"received_from"`
}

func (c *Catalog) load() error {
	it, err := c.db.NewIter(&pebble.IterOptions{LowerBound: []byte(keyPrefix), UpperBound: []byte(keyPrefix + "\xff")})
	if err != nil {
		return fmt.Errorf("catalog: %w", err)
	}
	defer it.Close()
	now := c.now()
	var drop [][]byte
	for it.First(); it.Valid(); it.Next() {
		key := slices.Clone(it.Key())
		var s stored
		if err := json.Unmarshal(it.Value(), &s); err != nil {
			c.log.Warn("catalog: dropping unreadable entry", "key", string(key), "err", err)
			drop = append(drop, key)
			continue
		}
		v, err := announce.Open(s.Raw, c.network, now)
		if err != nil {
			if !announce.Ignorable(err) {
				c.log.Warn("catalog: dropping entry that no longer verifies", "key", string(key), "err", err)
			}
			drop = append(drop, key)
			continue
		}
		if string(key) != storageKey(v.Kind, v.Subject) {
			c.log.Warn("catalog: dropping entry stored under the wrong key", "key", string(key))
			drop = append(drop, key)
			continue
		}
		from, _ := peer.Decode(s.ReceivedFrom)
		c.addLocked(entryKey{v.Kind, v.Subject}, newEntry(v, from, s.FirstSeen, s.LastSeen))
	}
	if err := it.Error(); err != nil {
		return fmt.Errorf("catalog: reading store: %w", err)
	}
	for _, k := range drop {
		if err := c.db.Delete(k, pebble.NoSync); err != nil {
			return fmt.Errorf("catalog: %w", err)
		}
	}
	return nil
}

func storageKey(kind pb.Kind, subject string) string {
	return keyPrefix + announce.KindName(kind) + "/" + subject
}

func newEntry(v *announce.Verified, from peer.ID, first, last time.Time) *Entry {
	return &Entry{
		Kind: v.Kind, Subject: v.Subject, Announcer: v.Announcer, Seq: v.Seq,
		IssuedAt: v.IssuedAt, ExpiresAt: v.ExpiresAt,
		FirstSeen: first, LastSeen: last, ReceivedFrom: from, Announcement: v,
	}
}

// Put records a verified announcement received from peer from (the node itself for its own). It reports
// whether the catalog now holds a newer announcement than before; its error is ErrFull, when a new subject
// finds the catalog at its limits. The change reaches disk at the next Flush.
func (c *Catalog) Put(v *announce.Verified, from peer.ID) (bool, error) {
	now := c.now()
	if v.Expired(now) {
		return false, nil
	}
	k := entryKey{v.Kind, v.Subject}
	c.mu.Lock()
	defer c.mu.Unlock()
	old, held := c.mu.entries[k]
	if held && old.Expired(now) {
		held = false
	}
	switch {
	case held && old.Announcement.ID == v.ID:
		old.LastSeen = now
		c.mu.dirty[k] = struct{}{}
		return false, nil
	case held && !v.Supersedes(old.Announcement):
		return false, nil
	case !held && !c.hasRoomLocked(k, len(v.Raw)):
		return false, ErrFull
	}
	first := now
	if held {
		first = old.FirstSeen
	}
	c.addLocked(k, newEntry(v, from, first, now))
	c.mu.dirty[k] = struct{}{}
	close(c.mu.changed)
	c.mu.changed = make(chan struct{})
	return true, nil
}

// addLocked sets k's entry, keeping the counts that the limits check.
func (c *Catalog) addLocked(k entryKey, e *Entry) {
	if old, ok := c.mu.entries[k]; ok {
		c.mu.bytes -= len(old.Announcement.Raw)
	} else {
		c.mu.perKind[k.kind]++
	}
	c.mu.entries[k] = e
	c.mu.bytes += len(e.Announcement.Raw)
}

func (c *Catalog) removeLocked(k entryKey) {
	if old, ok := c.mu.entries[k]; ok {
		c.mu.bytes -= len(old.Announcement.Raw)
		c.mu.perKind[k.kind]--
		delete(c.mu.entries, k)
	}
}

func (c *Catalog) hasRoomLocked(k entryKey, size int) bool {
	if _, held := c.mu.entries[k]; held {
		return true
	}
	return c.mu.perKind[k.kind] < c.limits.PerKind && c.mu.bytes+size <= c.limits.Bytes
}

// HasRoom reports whether Put would take an announcement of size bytes about subject: always for a subject
// already held, and for a new one while the catalog is under its limits.
func (c *Catalog) HasRoom(kind pb.Kind, subject string, size int) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.hasRoomLocked(entryKey{kind, subject}, size)
}

// Count is how many entries of kind the catalog holds (expired ones included until they are swept).
func (c *Catalog) Count(kind pb.Kind) int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.perKind[kind]
}

// Expired reports whether the entry has expired at now.
func (e *Entry) Expired(now time.Time) bool { return e.Announcement.Expired(now) }

// record encodes e as it is stored.
func record(e *Entry) []byte {
	b, err := json.Marshal(stored{Raw: e.Announcement.Raw, FirstSeen: e.FirstSeen, LastSeen: e.LastSeen, ReceivedFrom: e.ReceivedFrom.String()})
	if err != nil {
		panic(fmt.Sprintf("catalog: encoding an entry cannot fail: %v", err))
	}
	return b
}

// Flush writes every subject changed since the last flush, as memory holds it now, in one batch. If the
// write fails, the subjects stay marked for the next flush.
func (c *Catalog) Flush() error {
	c.flushMu.Lock()
	defer c.flushMu.Unlock()
	type change struct {
		k     entryKey
		entry Entry // a copy; the zero Entry (no announcement) when the subject is gone
	}
	c.mu.Lock()
	if len(c.mu.dirty) == 0 {
		c.mu.Unlock()
		return nil
	}
	changes := make([]change, 0, len(c.mu.dirty))
	for k := range c.mu.dirty {
		ch := change{k: k}
		if e, ok := c.mu.entries[k]; ok {
			ch.entry = *e
		}
		changes = append(changes, ch)
	}
	clear(c.mu.dirty)
	c.mu.Unlock()

	b := c.db.NewBatch()
	defer b.Close()
	var err error
	for _, ch := range changes {
		key := []byte(storageKey(ch.k.kind, ch.k.subject))
		if ch.entry.Announcement == nil {
			err = b.Delete(key, nil)
		} else {
			err = b.Set(key, record(&ch.entry), nil)
		}
		if err != nil {
			break
		}
	}
	if err == nil {
		err = b.Commit(pebble.NoSync)
	}
	if err != nil {
		c.mu.Lock()
		for _, ch := range changes {
			c.mu.dirty[ch.k] = struct{}{}
		}
		c.mu.Unlock()
		return fmt.Errorf("catalog: %w", err)
	}
	return nil
}

// List returns the live entries of kind (every kind when kind is KIND_UNSPECIFIED), ordered by kind then
// subject.
func (c *Catalog) List(kind pb.Kind) []Entry {
	now := c.now()
	c.mu.Lock()
	out := make([]Entry, 0, len(c.mu.entries))
	for k, e := range c.mu.entries {
		if (kind == pb.Kind_KIND_UNSPECIFIED || k.kind == kind) && !e.Expired(now) {
			out = append(out, *e)
		}
	}
	c.mu.Unlock()
	slices.SortFunc(out, func(a, b Entry) int {
		if a.Kind != b.Kind {
			return int(a.Kind) - int(b.Kind)
		}
		return strings.Compare(a.Subject, b.Subject)
	})
	return out
}

// Digest lists (kind, subject, seq, ID prefix) of the live entries, in List order: what a catalog sync
// request tells a peer this node already holds.
func (c *Catalog) Digest() []*pb.CatalogHave {
	entries := c.List(pb.Kind_KIND_UNSPECIFIED)
	out := make([]*pb.CatalogHave, 0, len(entries))
	for _, e := range entries {
		out = append(out, &pb.CatalogHave{Kind: e.Kind, Subject: e.Subject, Seq: e.Seq, Id: e.Announcement.ID[:DigestIDLen]})
	}
	return out
}

// DigestIDLen is how much of an announcement's ID a digest carries.
const DigestIDLen = 8

// Get returns the live entry of kind about subject.
func (c *Catalog) Get(kind pb.Kind, subject string) (Entry, bool) {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.mu.entries[entryKey{kind, subject}]
	if !ok || e.Expired(now) {
		return Entry{}, false
	}
	return *e, true
}

// Changed returns a channel that is closed at the next visible change (a new subject or a newer
// announcement). Call it again after it fires to wait for the one after.
func (c *Catalog) Changed() <-chan struct{} {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.mu.changed
}

// Run writes the catalog's changes to disk every FlushInterval and removes expired entries every interval,
// until ctx is done; then it flushes once more. The caller owns the goroutine that runs it.
func (c *Catalog) Run(ctx context.Context, interval time.Duration) error {
	sweep := time.NewTicker(interval)
	defer sweep.Stop()
	flush := time.NewTicker(FlushInterval)
	defer flush.Stop()
	for {
		select {
		case <-ctx.Done():
			return c.Flush()
		case <-flush.C:
			if err := c.Flush(); err != nil {
				return err
			}
		case <-sweep.C:
			if err := c.sweep(); err != nil {
				return err
			}
		}
	}
}

// sweep removes expired entries from memory and then from disk.
func (c *Catalog) sweep() error {
	now := c.now()
	c.mu.Lock()
	gone := 0
	for k, e := range c.mu.entries {
		if e.Expired(now) {
			c.removeLocked(k)
			c.mu.dirty[k] = struct{}{}
			gone++
		}
	}
	c.mu.Unlock()
	if gone == 0 {
		return nil
	}
	c.log.Debug("catalog: removed expired entries", "count", gone)
	return c.Flush()
}
