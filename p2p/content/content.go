// Package content owns content-addressed blobs: naming them (CIDv1, sha2-256), keeping them (small blocks
// and the index in the node's Pebble store under the "content/" prefix, blocks over 64 KiB in files of
// their own), serving their blocks to peers over /shoulders/content/1, finding providers and announcing
// what this node provides through the DHT, and fetching a blob from any provider, several chunks in
// parallel from several providers, each verified against its CID before it is kept.
//
// What it must never do: keep or hand on a byte that does not hash to the CID it was asked for (nothing is
// trusted because of who sent it: only the hash decides), hold anything a peer sends or asks for without a
// bound, or keep a goroutine that Run, Fetch or a stream handler does not own and stop.
//
// Decisions where the design is silent:
//   - A blob of at most ChunkSize (1 MiB) bytes is one block with the raw codec (0x55). A larger one is cut
//     into ChunkSize raw chunks and named by a manifest block (proto ContentManifest: size, chunk size, the
//     chunks' binary CIDs) whose CID has the codec 0x50 ("protobuf"), so a manifest is never mistaken for a
//     blob's bytes. The chunk size is fixed and the manifest's encoding canonical, so one blob has one CID;
//     a manifest that is not canonical, or describes a blob that fits one chunk, is refused. A manifest is
//     at most MaxManifestSize bytes, which caps a blob at MaxBlobSize (128 GiB).
//   - Blocks are stored once however many blobs share them; a blob is kept when pinned. Add and a finished
//     Fetch pin; Delete refuses a pinned blob and keeps the chunks another local manifest still lists.
//   - Writes are not synced (pebble.NoSync, no fsync of block files): every block is verified against its
//     name whenever it is read from a peer, and a block lost in a crash is fetched again, so a sync per
//     block buys nothing. A block file found gone, of the wrong size or with bytes that do not hash to its
//     CID (every read of a file checks) counts as missing and is dropped.
//   - Chunks are files, not Pebble values: Pebble rewrites values as it flushes and compacts, which held a
//     fetching node to about 190 MB/s (now about 400 MB/s, with the provider hashing what it serves).
//     Files are written with O_DIRECT where the file system allows it (on the 2-core VM measured, 0.5 ms
//     of CPU per MiB against 2 ms through the page cache, and a chunk is written once and rarely read
//     soon); reads go through the page cache, as a served chunk is often asked for again.
//   - The fetch protocol pipelines: a requester sends several requests on one stream without waiting, and
//     the server answers each CID with one block (or "missing") in the order asked. Each provider of a
//     fetch gets one stream and a window of chunks in flight, read as they arrive and handed to two
//     storers that verify and write them (so the stream never waits on a hash or a disk write); providers
//     pull the next missing chunk from a shared queue (work stealing), so a fast provider does more of the
//     work. A provider that sends bytes that do not match the CID is dropped for the rest of that fetch;
//     one that fails (disconnects, times out) is dropped and its chunks go back to the queue for the others.
//   - A fetch starts from the chunks already in the store: an interrupted fetch resumes where it stopped.
//   - The service provides (DHT provider records) every pinned blob at start and every ReprovideInterval
//     (12 h), and newly pinned ones at once; a provide that fails is retried with backoff.
package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
	"google.golang.org/protobuf/proto"

	pb "github.com/shouldersnet/shoulders/proto"
)

// Sizes of blocks and blobs.
const (
	// ChunkSize is the size of every chunk of a blob but the last, and the largest blob held in one raw block.
	ChunkSize = 1 << 20
	// MaxManifestChunks is the most chunks one manifest lists.
	MaxManifestChunks = 1 << 17
	// MaxBlobSize is the largest blob a manifest can name (128 GiB).
	MaxBlobSize = int64(MaxManifestChunks) * ChunkSize
	// MaxManifestSize bounds a manifest block: a header and MaxManifestChunks chunk CIDs of 38 encoded bytes.
	MaxManifestSize = 64 + MaxManifestChunks*(2+cidLen)
	// MaxBlockSize is the largest block of any kind.
	MaxBlockSize = MaxManifestSize
)

// Multicodecs of the two kinds of block.
const (
	CodecRaw      = 0x55 // a blob's bytes, or one chunk of them
	CodecManifest = 0x50 // a ContentManifest ("protobuf")
)

// cidLen is the length of a binary CIDv1 with a sha2-256 multihash: version, codec, hash code, length, digest.
const cidLen = 4 + sha256.Size

// Errors.
var (
	ErrNotFound     = errors.New("content: not found")
	ErrHashMismatch = errors.New("content: data does not hash to its CID")
	ErrPinned       = errors.New("content: pinned")
	ErrBadCID       = errors.New("content: bad CID")
	ErrBadManifest  = errors.New("content: bad manifest")
	ErrTooLarge     = errors.New("content: too large")
)

// ParseCID parses a CID in its string form and accepts only what this package names blobs with: CIDv1, a
// sha2-256 multihash of 32 bytes, and the raw or manifest codec. The error says which of these is wrong.
func ParseCID(s string) (cid.Cid, error) {
	if s == "" {
		return cid.Undef, fmt.Errorf("%w: empty", ErrBadCID)
	}
	c, err := cid.Decode(s)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %q: %v", ErrBadCID, s, err)
	}
	if err := checkCID(c); err != nil {
		return cid.Undef, fmt.Errorf("%w (%q)", err, s)
	}
	return c, nil
}

// castCID decodes a binary CID and checks it as ParseCID does.
func castCID(b []byte) (cid.Cid, error) {
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("%w: %v", ErrBadCID, err)
	}
	if err := checkCID(c); err != nil {
		return cid.Undef, err
	}
	return c, nil
}

func checkCID(c cid.Cid) error {
	if c.Version() != 1 {
		return fmt.Errorf("%w: version %d, want CIDv1", ErrBadCID, c.Version())
	}
	if t := c.Type(); t != CodecRaw && t != CodecManifest {
		return fmt.Errorf("%w: codec 0x%x, want raw (0x55) or manifest (0x50)", ErrBadCID, t)
	}
	d, err := mh.Decode(c.Hash())
	if err != nil {
		return fmt.Errorf("%w: multihash: %v", ErrBadCID, err)
	}
	if d.Code != mh.SHA2_256 || d.Length != sha256.Size {
		return fmt.Errorf("%w: multihash %s of %d bytes, want sha2-256 of 32", ErrBadCID, mh.Codes[d.Code], d.Length)
	}
	return nil
}

// IsManifest reports whether c names a manifest (a blob of more than one chunk).
func IsManifest(c cid.Cid) bool { return c.Type() == CodecManifest }

// newCID names data of a codec.
func newCID(codec uint64, data []byte) cid.Cid {
	sum := sha256.Sum256(data)
	return cidOfDigest(codec, sum[:])
}

func cidOfDigest(codec uint64, digest []byte) cid.Cid {
	m := make([]byte, 2+len(digest))
	m[0], m[1] = mh.SHA2_256, sha256.Size
	copy(m[2:], digest)
	return cid.NewCidV1(codec, m)
}

// verify checks that data hashes to c, which must have passed checkCID.
func verify(c cid.Cid, data []byte) error {
	sum := sha256.Sum256(data)
	if !bytes.Equal(c.Hash()[2:], sum[:]) {
		return fmt.Errorf("%w: %d bytes given for %s hash to %x", ErrHashMismatch, len(data), c, sum)
	}
	return nil
}

// Manifest is a decoded, checked manifest.
type Manifest struct {
	Size   int64
	Chunks []cid.Cid
}

// chunkLen is the length chunk i must have.
func (m *Manifest) chunkLen(i int) int {
	if i < len(m.Chunks)-1 {
		return ChunkSize
	}
	return int(m.Size - int64(len(m.Chunks)-1)*ChunkSize)
}

// chunkCount is how many chunks a blob of size bytes has (at least one).
func chunkCount(size int64) int {
	return int(max(1, (size+ChunkSize-1)/ChunkSize))
}

// encodeManifest returns the canonical encoding of a manifest and its CID.
func encodeManifest(size int64, chunks []cid.Cid) ([]byte, cid.Cid, error) {
	m := &pb.ContentManifest{Size: uint64(size), ChunkSize: ChunkSize, Chunks: make([][]byte, len(chunks))}
	for i, c := range chunks {
		m.Chunks[i] = c.Bytes()
	}
	b, err := proto.MarshalOptions{Deterministic: true}.Marshal(m)
	if err != nil {
		return nil, cid.Undef, fmt.Errorf("content: encoding manifest: %w", err)
	}
	return b, newCID(CodecManifest, b), nil
}

// DecodeManifest decodes and checks a manifest block: canonical encoding, the fixed chunk size, a size of
// more than one chunk and at most MaxBlobSize, and exactly as many raw sha2-256 chunk CIDs as the size needs.
// It does not check the block against a CID; callers verify first.
func DecodeManifest(b []byte) (*Manifest, error) {
	if len(b) > MaxManifestSize {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", ErrBadManifest, len(b), MaxManifestSize)
	}
	var m pb.ContentManifest
	if err := proto.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadManifest, err)
	}
	if m.ChunkSize != ChunkSize {
		return nil, fmt.Errorf("%w: chunk_size %d, want %d", ErrBadManifest, m.ChunkSize, ChunkSize)
	}
	if m.Size <= ChunkSize || m.Size > uint64(MaxBlobSize) {
		return nil, fmt.Errorf("%w: size %d, want more than %d (one chunk) and at most %d", ErrBadManifest, m.Size, ChunkSize, MaxBlobSize)
	}
	size := int64(m.Size)
	if want := chunkCount(size); len(m.Chunks) != want {
		return nil, fmt.Errorf("%w: %d chunks for %d bytes, want %d", ErrBadManifest, len(m.Chunks), size, want)
	}
	out := &Manifest{Size: size, Chunks: make([]cid.Cid, len(m.Chunks))}
	for i, raw := range m.Chunks {
		c, err := castCID(raw)
		if err != nil {
			return nil, fmt.Errorf("%w: chunk %d: %v", ErrBadManifest, i, err)
		}
		if c.Type() != CodecRaw {
			return nil, fmt.Errorf("%w: chunk %d is %s, not a raw block", ErrBadManifest, i, c)
		}
		out.Chunks[i] = c
	}
	canon, _, err := encodeManifest(size, out.Chunks)
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(canon, b) {
		return nil, fmt.Errorf("%w: not canonically encoded (unknown fields, or fields out of order)", ErrBadManifest)
	}
	return out, nil
}

// Sum returns the CID that Store.Add would give data, without storing anything.
func Sum(data []byte) cid.Cid {
	if len(data) <= ChunkSize {
		return newCID(CodecRaw, data)
	}
	chunks := make([]cid.Cid, 0, chunkCount(int64(len(data))))
	for off := 0; off < len(data); off += ChunkSize {
		chunks = append(chunks, newCID(CodecRaw, data[off:min(off+ChunkSize, len(data))]))
	}
	_, c, err := encodeManifest(int64(len(data)), chunks)
	if err != nil {
		panic(err) // a manifest of valid CIDs always encodes
	}
	return c
}
