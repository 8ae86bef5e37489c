package content

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/ipfs/go-cid"
)

// Keys in the node's store. A block's key is its binary CID, whose second byte is its codec, so raw blocks
// and manifests sort apart and each can be scanned alone.
const (
	keyPrefix   = "content/"
	blockPrefix = keyPrefix + "b/"
	pinPrefix   = keyPrefix + "p/"
)

// commitBytes is how many bytes of blocks Add, or a fetch from one provider, gathers in one Pebble batch
// before committing it: a few large commits cost Pebble much less than many 1 MiB ones.
const (
	commitBytes = 8 << 20
	batchSlack  = 64 << 10 // keys and record headers
)

// Store keeps blocks and pins in the node's Pebble store under "content/". It is safe for concurrent use.
// Blocks are immutable and named by their hash, so concurrent writers of one block write the same bytes.
type Store struct {
	db *pebble.DB

	blocksWritten atomic.Int64
	bytesWritten  atomic.Int64

	// chunkBufs recycles ChunkSize buffers for reading blocks out of the store.
	chunkBufs sync.Pool
}

// Info describes one local blob.
type Info struct {
	CID    string `json:"cid"`
	Size   int64  `json:"size"`
	Pinned bool   `json:"pinned"`
	// Complete is false for a manifest whose chunks are not all local (a fetch that has not finished).
	Complete bool `json:"complete"`
}

// StoreStats counts what this Store wrote since it was opened.
type StoreStats struct {
	BlocksWritten int64 `json:"blocks_written"`
	BytesWritten  int64 `json:"bytes_written"`
}

// StoreOptions sets what the content store needs of the Pebble options of the database it will be kept
// in (the node calls it before opening its store): value separation, so that a block's bytes are written
// to a blob file once and compactions move references to them instead of rewriting them. Measured with
// `shoulders bench content`, it takes fetches of 1 MiB chunks from about 110 to 160-200 MB/s on a 2-core
// machine; 64 MiB memtables did not help further. The database's format must be at least
// pebble.FormatValueSeparation.
func StoreOptions(o *pebble.Options) {
	o.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           4 << 10,
			MaxBlobReferenceDepth: 10,
			RewriteMinimumAge:     time.Hour,
			TargetGarbageRatio:    0.5,
		}
	}
}

// OpenStore returns the content store kept in db. The db is shared with the node's other parts, each under
// its own prefix; the Store never touches keys outside "content/".
func OpenStore(db *pebble.DB) (*Store, error) {
	if db == nil {
		return nil, errors.New("content: OpenStore: no database")
	}
	s := &Store{db: db}
	s.chunkBufs.New = func() any { b := make([]byte, ChunkSize); return &b }
	return s, nil
}

// Stats returns what the store wrote since it was opened.
func (s *Store) Stats() StoreStats {
	return StoreStats{BlocksWritten: s.blocksWritten.Load(), BytesWritten: s.bytesWritten.Load()}
}

func blockKey(c cid.Cid) []byte { return append([]byte(blockPrefix), c.Bytes()...) }
func pinKey(c cid.Cid) []byte   { return append([]byte(pinPrefix), c.Bytes()...) }

// upperBound is the smallest key greater than every key with the prefix p.
func upperBound(p []byte) []byte {
	ub := slices.Clone(p)
	for i := len(ub) - 1; i >= 0; i-- {
		if ub[i] < 0xff {
			ub[i]++
			return ub[:i+1]
		}
	}
	return nil
}

// Add stores the blob r reads: it cuts it into chunks, names each, stores every block and (for more than
// one chunk) the manifest, and pins the root. It holds at most one chunk and one batch of blocks in memory
// at a time. An empty blob is a raw block of no bytes. Chunks written before a failure stay (unpinned): they
// may be another blob's too, and a later Add or fetch of the same bytes uses them.
func (s *Store) Add(r io.Reader) (c cid.Cid, size int64, err error) {
	bufp := s.chunkBufs.Get().(*[]byte)
	defer s.chunkBufs.Put(bufp)
	buf := *bufp
	var chunks []cid.Cid
	b := s.db.NewBatchWithSize(commitBytes + batchSlack)
	defer func() { b.Close() }()
	var batched, blocks int64
	for {
		n, rerr := io.ReadFull(r, buf)
		last := rerr == io.EOF || rerr == io.ErrUnexpectedEOF
		if rerr != nil && !last {
			return cid.Undef, 0, fmt.Errorf("content: reading the blob after %d bytes: %w", size, rerr)
		}
		if n > 0 || len(chunks) == 0 {
			if len(chunks) == MaxManifestChunks {
				return cid.Undef, 0, fmt.Errorf("%w: a blob may hold at most %d bytes", ErrTooLarge, MaxBlobSize)
			}
			cc := newCID(CodecRaw, buf[:n])
			chunks = append(chunks, cc)
			size += int64(n)
			key := blockKey(cc)
			if err := b.Set(key, buf[:n], nil); err != nil {
				return cid.Undef, 0, fmt.Errorf("content: batching %s: %w", cc, err)
			}
			batched += int64(n)
			blocks++
		}
		if batched >= commitBytes || last {
			if err := s.commit(b, blocks, batched); err != nil {
				return cid.Undef, 0, err
			}
			b.Close()
			b = s.db.NewBatchWithSize(commitBytes + batchSlack)
			batched, blocks = 0, 0
		}
		if last {
			break
		}
	}
	root := chunks[0]
	if len(chunks) > 1 {
		data, mc, err := encodeManifest(size, chunks)
		if err != nil {
			return cid.Undef, 0, err
		}
		root = mc
		has, err := s.has(blockKey(mc))
		if err != nil {
			return cid.Undef, 0, err
		}
		if !has {
			if err := b.Set(blockKey(mc), data, nil); err != nil {
				return cid.Undef, 0, fmt.Errorf("content: batching manifest %s: %w", mc, err)
			}
			batched += int64(len(data))
			blocks++
		}
	}
	if err := b.Set(pinKey(root), nil, nil); err != nil {
		return cid.Undef, 0, fmt.Errorf("content: pinning %s: %w", root, err)
	}
	if err := s.commit(b, blocks, batched); err != nil {
		return cid.Undef, 0, err
	}
	return root, size, nil
}

func (s *Store) commit(b *pebble.Batch, blocks, bytes int64) error {
	if b.Count() == 0 {
		return nil
	}
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("content: writing blocks: %w", err)
	}
	s.blocksWritten.Add(blocks)
	s.bytesWritten.Add(bytes)
	return nil
}

// PutBlock stores one block after checking that data hashes to c. It refuses a CID ParseCID would refuse,
// a block larger than its kind allows, and a manifest that does not decode.
func (s *Store) PutBlock(c cid.Cid, data []byte) error {
	if err := checkBlock(c, data); err != nil {
		return err
	}
	return s.putVerified(c, data)
}

// checkBlock checks a block against its CID: the CID's form, the block's size and hash, and for a
// manifest its contents.
func checkBlock(c cid.Cid, data []byte) error {
	if err := checkCID(c); err != nil {
		return err
	}
	if IsManifest(c) {
		if len(data) > MaxManifestSize {
			return fmt.Errorf("%w: manifest %s is %d bytes, the limit is %d", ErrTooLarge, c, len(data), MaxManifestSize)
		}
	} else if len(data) > ChunkSize {
		return fmt.Errorf("%w: raw block %s is %d bytes, the limit is %d", ErrTooLarge, c, len(data), ChunkSize)
	}
	if err := verify(c, data); err != nil {
		return err
	}
	if IsManifest(c) {
		if _, err := DecodeManifest(data); err != nil {
			return fmt.Errorf("%s: %w", c, err)
		}
	}
	return nil
}

// blockBatch gathers verified blocks for one commit.
type blockBatch struct {
	s             *Store
	b             *pebble.Batch
	blocks, bytes int64
}

func (s *Store) newBlockBatch() *blockBatch {
	return &blockBatch{s: s, b: s.db.NewBatchWithSize(commitBytes + MaxBlockSize + batchSlack)}
}

// add copies a verified block into the batch.
func (bb *blockBatch) add(c cid.Cid, data []byte) error {
	if err := bb.b.Set(blockKey(c), data, nil); err != nil {
		return fmt.Errorf("content: batching %s: %w", c, err)
	}
	bb.blocks++
	bb.bytes += int64(len(data))
	return nil
}

// commit writes the batch and starts a new one.
func (bb *blockBatch) commit() error {
	err := bb.s.commit(bb.b, bb.blocks, bb.bytes)
	bb.b.Close()
	bb.b = bb.s.db.NewBatchWithSize(commitBytes + MaxBlockSize + batchSlack)
	bb.blocks, bb.bytes = 0, 0
	return err
}

func (bb *blockBatch) close() { bb.b.Close() }

func (s *Store) putVerified(c cid.Cid, data []byte) error {
	if err := s.db.Set(blockKey(c), data, pebble.NoSync); err != nil {
		return fmt.Errorf("content: storing %s: %w", c, err)
	}
	s.blocksWritten.Add(1)
	s.bytesWritten.Add(int64(len(data)))
	return nil
}

// GetBlock returns a copy of the block c.
func (s *Store) GetBlock(c cid.Cid) ([]byte, error) {
	return s.getBlockInto(c, nil)
}

// getBlockInto reads block c into buf when it fits (else into a new slice) and returns it.
func (s *Store) getBlockInto(c cid.Cid, buf []byte) ([]byte, error) {
	v, closer, err := s.db.Get(blockKey(c))
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, fmt.Errorf("%w: block %s", ErrNotFound, c)
	}
	if err != nil {
		return nil, fmt.Errorf("content: reading %s: %w", c, err)
	}
	defer closer.Close()
	if cap(buf) < len(v) {
		buf = make([]byte, len(v))
	}
	buf = buf[:len(v)]
	copy(buf, v)
	return buf, nil
}

// HasBlock reports whether block c is in the store.
func (s *Store) HasBlock(c cid.Cid) (bool, error) { return s.has(blockKey(c)) }

// has reports whether key exists without reading its value.
func (s *Store) has(key []byte) (bool, error) {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: key, UpperBound: append(slices.Clip(key), 0)})
	if err != nil {
		return false, fmt.Errorf("content: %w", err)
	}
	ok := it.First()
	if err := it.Close(); err != nil {
		return false, fmt.Errorf("content: %w", err)
	}
	return ok, nil
}

// manifest reads and decodes the local manifest c.
func (s *Store) manifest(c cid.Cid) (*Manifest, error) {
	b, err := s.GetBlock(c)
	if err != nil {
		return nil, err
	}
	m, err := DecodeManifest(b)
	if err != nil {
		return nil, fmt.Errorf("content: local manifest %s: %w", c, err)
	}
	return m, nil
}

// Has reports whether the whole blob c is local: its block, or its manifest and every chunk.
func (s *Store) Has(c cid.Cid) (bool, error) {
	if !IsManifest(c) {
		return s.HasBlock(c)
	}
	m, err := s.manifest(c)
	if errors.Is(err, ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	missing, err := s.missing(m)
	return err == nil && len(missing) == 0, err
}

// missing returns the indexes of m's chunks that are not local.
func (s *Store) missing(m *Manifest) ([]int, error) {
	var out []int
	for i, cc := range m.Chunks {
		ok, err := s.HasBlock(cc)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, i)
		}
	}
	return out, nil
}

// Size returns the size of blob c: the manifest's size, or the block's length.
func (s *Store) Size(c cid.Cid) (int64, error) {
	if IsManifest(c) {
		m, err := s.manifest(c)
		if err != nil {
			return 0, err
		}
		return m.Size, nil
	}
	v, closer, err := s.db.Get(blockKey(c))
	if errors.Is(err, pebble.ErrNotFound) {
		return 0, fmt.Errorf("%w: block %s", ErrNotFound, c)
	}
	if err != nil {
		return 0, fmt.Errorf("content: reading %s: %w", c, err)
	}
	defer closer.Close()
	return int64(len(v)), nil
}

// Pin marks blob c to be kept (and provided). The blob need not be complete yet.
func (s *Store) Pin(c cid.Cid) error {
	if err := s.db.Set(pinKey(c), nil, pebble.NoSync); err != nil {
		return fmt.Errorf("content: pinning %s: %w", c, err)
	}
	return nil
}

// Unpin removes c's pin; the blob stays until Delete.
func (s *Store) Unpin(c cid.Cid) error {
	if err := s.db.Delete(pinKey(c), pebble.NoSync); err != nil {
		return fmt.Errorf("content: unpinning %s: %w", c, err)
	}
	return nil
}

// Pinned reports whether c is pinned.
func (s *Store) Pinned(c cid.Cid) (bool, error) { return s.has(pinKey(c)) }

// Pins returns every pinned CID.
func (s *Store) Pins() ([]cid.Cid, error) {
	var out []cid.Cid
	err := s.scan([]byte(pinPrefix), func(k []byte, _ *pebble.Iterator) error {
		c, err := cid.Cast(k[len(pinPrefix):])
		if err != nil {
			return fmt.Errorf("content: pin key %x: %w", k, err)
		}
		out = append(out, c)
		return nil
	})
	return out, err
}

// scan calls fn for every key with prefix, in order.
func (s *Store) scan(prefix []byte, fn func(key []byte, it *pebble.Iterator) error) error {
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: prefix, UpperBound: upperBound(prefix)})
	if err != nil {
		return fmt.Errorf("content: %w", err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if err := fn(it.Key(), it); err != nil {
			it.Close()
			return err
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("content: %w", err)
	}
	return nil
}

// codecPrefix is the key prefix of every block of one codec: the binary CID starts with version 1 and the
// codec (each a one-byte varint).
func codecPrefix(codec byte) []byte {
	return []byte{'c', 'o', 'n', 't', 'e', 'n', 't', '/', 'b', '/', 1, codec}
}

// manifests returns every local manifest, decoded, by CID.
func (s *Store) manifests() (map[cid.Cid]*Manifest, error) {
	out := map[cid.Cid]*Manifest{}
	err := s.scan(codecPrefix(CodecManifest), func(k []byte, it *pebble.Iterator) error {
		c, err := cid.Cast(k[len(blockPrefix):])
		if err != nil {
			return fmt.Errorf("content: block key %x: %w", k, err)
		}
		v, err := it.ValueAndErr()
		if err != nil {
			return fmt.Errorf("content: reading %s: %w", c, err)
		}
		m, err := DecodeManifest(v)
		if err != nil {
			return fmt.Errorf("content: local manifest %s: %w", c, err)
		}
		out[c] = m
		return nil
	})
	return out, err
}

// Delete removes blob c: a manifest with its chunks (except those another local manifest lists or that are
// pinned themselves), or a raw block. It refuses a pinned blob, and a raw block that is a chunk of a local
// manifest. Deleting what is not there is not an error.
func (s *Store) Delete(c cid.Cid) error {
	if pinned, err := s.Pinned(c); err != nil {
		return err
	} else if pinned {
		return fmt.Errorf("%w: %s is pinned; unpin it first", ErrPinned, c)
	}
	ms, err := s.manifests()
	if err != nil {
		return err
	}
	keep := map[cid.Cid]bool{}
	for mc, m := range ms {
		if mc == c {
			continue
		}
		for _, cc := range m.Chunks {
			keep[cc] = true
		}
	}
	if !IsManifest(c) {
		if keep[c] {
			return fmt.Errorf("content: %s is a chunk of a local blob; delete that blob first", c)
		}
		return s.db.Delete(blockKey(c), pebble.NoSync)
	}
	b := s.db.NewBatch()
	defer b.Close()
	if m, ok := ms[c]; ok {
		for _, cc := range m.Chunks {
			if keep[cc] {
				continue
			}
			if pinned, err := s.Pinned(cc); err != nil {
				return err
			} else if pinned {
				continue
			}
			b.Delete(blockKey(cc), nil)
		}
	}
	b.Delete(blockKey(c), nil)
	if err := b.Commit(pebble.NoSync); err != nil {
		return fmt.Errorf("content: deleting %s: %w", c, err)
	}
	return nil
}

// List returns the local blobs: every manifest (complete or not), every raw block that is pinned or is no
// manifest's chunk, and every pin whose blob is not here yet, sorted by CID.
func (s *Store) List() ([]Info, error) {
	pins, err := s.Pins()
	if err != nil {
		return nil, err
	}
	pinned := map[cid.Cid]bool{}
	for _, p := range pins {
		pinned[p] = true
	}
	ms, err := s.manifests()
	if err != nil {
		return nil, err
	}
	chunkOf := map[cid.Cid]bool{}
	for _, m := range ms {
		for _, cc := range m.Chunks {
			chunkOf[cc] = true
		}
	}
	seen := map[cid.Cid]bool{}
	var out []Info
	for mc, m := range ms {
		missing, err := s.missing(m)
		if err != nil {
			return nil, err
		}
		out = append(out, Info{CID: mc.String(), Size: m.Size, Pinned: pinned[mc], Complete: len(missing) == 0})
		seen[mc] = true
	}
	err = s.scan(codecPrefix(CodecRaw), func(k []byte, it *pebble.Iterator) error {
		c, err := cid.Cast(k[len(blockPrefix):])
		if err != nil {
			return fmt.Errorf("content: block key %x: %w", k, err)
		}
		if chunkOf[c] && !pinned[c] {
			return nil
		}
		lv := it.LazyValue()
		out = append(out, Info{CID: c.String(), Size: int64(lv.Len()), Pinned: pinned[c], Complete: true})
		seen[c] = true
		return nil
	})
	if err != nil {
		return nil, err
	}
	for _, p := range pins {
		if !seen[p] {
			out = append(out, Info{CID: p.String(), Size: -1, Pinned: true})
		}
	}
	slices.SortFunc(out, func(a, b Info) int { return bytes.Compare([]byte(a.CID), []byte(b.CID)) })
	return out, nil
}

// Reader reads a local blob from the store, chunk by chunk. It is not safe for concurrent use.
type Reader struct {
	s      *Store
	root   cid.Cid
	chunks []cid.Cid
	size   int64
	off    int64
	cur    []byte // the chunk holding off, or nil
	curIdx int
	bufp   *[]byte
}

// NewReader returns a reader of the local blob c and its size. A chunk missing when the reader reaches it
// is an error wrapping ErrNotFound that names the chunk.
func (s *Store) NewReader(c cid.Cid) (*Reader, int64, error) {
	r := &Reader{s: s, root: c, curIdx: -1}
	if IsManifest(c) {
		m, err := s.manifest(c)
		if err != nil {
			return nil, 0, err
		}
		r.chunks, r.size = m.Chunks, m.Size
	} else {
		size, err := s.Size(c)
		if err != nil {
			return nil, 0, err
		}
		r.chunks, r.size = []cid.Cid{c}, size
	}
	r.bufp = s.chunkBufs.Get().(*[]byte)
	return r, r.size, nil
}

// Read implements io.Reader.
func (r *Reader) Read(p []byte) (int, error) {
	if r.bufp == nil {
		return 0, errors.New("content: read of a closed reader")
	}
	if r.off >= r.size {
		return 0, io.EOF
	}
	idx := int(r.off / ChunkSize)
	if idx != r.curIdx {
		b, err := r.s.getBlockInto(r.chunks[idx], *r.bufp)
		if err != nil {
			return 0, fmt.Errorf("content: chunk %d of %s: %w", idx, r.root, err)
		}
		r.cur, r.curIdx = b, idx
	}
	n := copy(p, r.cur[r.off-int64(idx)*ChunkSize:])
	r.off += int64(n)
	return n, nil
}

// Seek implements io.Seeker.
func (r *Reader) Seek(offset int64, whence int) (int64, error) {
	var abs int64
	switch whence {
	case io.SeekStart:
		abs = offset
	case io.SeekCurrent:
		abs = r.off + offset
	case io.SeekEnd:
		abs = r.size + offset
	default:
		return 0, fmt.Errorf("content: seek: bad whence %d", whence)
	}
	if abs < 0 {
		return 0, fmt.Errorf("content: seek to %d, before the start", abs)
	}
	r.off = abs
	return abs, nil
}

// Close releases the reader's buffer.
func (r *Reader) Close() error {
	if r.bufp != nil {
		r.s.chunkBufs.Put(r.bufp)
		r.bufp, r.cur = nil, nil
	}
	return nil
}
