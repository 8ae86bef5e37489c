package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func memDB(t testing.TB, fs vfs.FS) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: fs, Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func memStore(t testing.TB) *Store {
	t.Helper()
	fs := vfs.NewMem()
	s, err := OpenStore(memDB(t, fs), fs, "blocks")
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// randomBytes returns n bytes from a seeded generator.
func randomBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func readAll(t testing.TB, s *Store, c cid.Cid) []byte {
	t.Helper()
	r, size, err := s.NewReader(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if int64(len(b)) != size {
		t.Fatalf("read %d bytes, the reader said %d", len(b), size)
	}
	return b
}

func TestAddChunkingBoundaries(t *testing.T) {
	s := memStore(t)
	for _, n := range []int{0, 1, ChunkSize - 1, ChunkSize, ChunkSize + 1, 2 * ChunkSize, 5*ChunkSize + 12345} {
		data := randomBytes(uint64(n), n)
		c, size, err := s.Add(bytes.NewReader(data))
		if err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		if size != int64(n) {
			t.Fatalf("%d bytes: size %d", n, size)
		}
		wantManifest := n > ChunkSize
		if IsManifest(c) != wantManifest {
			t.Fatalf("%d bytes: CID %s, manifest %v, want %v", n, c, IsManifest(c), wantManifest)
		}
		if !wantManifest {
			if want := newCID(CodecRaw, data); c != want {
				t.Fatalf("%d bytes: CID %s, want the raw block's %s", n, c, want)
			}
		} else {
			m, err := s.manifest(c)
			if err != nil {
				t.Fatal(err)
			}
			if m.Size != int64(n) || len(m.Chunks) != (n+ChunkSize-1)/ChunkSize {
				t.Fatalf("%d bytes: manifest size %d, %d chunks", n, m.Size, len(m.Chunks))
			}
			for i, cc := range m.Chunks {
				end := min(n, (i+1)*ChunkSize)
				if want := newCID(CodecRaw, data[i*ChunkSize:end]); cc != want {
					t.Fatalf("%d bytes: chunk %d is %s, want %s", n, i, cc, want)
				}
			}
		}
		if _, err := ParseCID(c.String()); err != nil {
			t.Fatalf("%d bytes: our own CID does not parse: %v", n, err)
		}
		if ok, err := s.Has(c); err != nil || !ok {
			t.Fatalf("%d bytes: Has = %v, %v", n, ok, err)
		}
		if got, err := s.Size(c); err != nil || got != int64(n) {
			t.Fatalf("%d bytes: Size = %d, %v", n, got, err)
		}
		if got := readAll(t, s, c); !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back differs", n)
		}
		if pinned, _ := s.Pinned(c); !pinned {
			t.Fatalf("%d bytes: Add did not pin", n)
		}
		// The same bytes give the same CID.
		c2, _, err := s.Add(bytes.NewReader(data))
		if err != nil || c2 != c {
			t.Fatalf("%d bytes: second Add gave %s, %v", n, c2, err)
		}
	}
}

func TestReaderSeeks(t *testing.T) {
	s := memStore(t)
	data := randomBytes(7, 3*ChunkSize+100)
	c, _, err := s.Add(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	r, _, err := s.NewReader(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for _, off := range []int64{0, ChunkSize - 3, 2*ChunkSize + 5, int64(len(data)) - 1} {
		if _, err := r.Seek(off, io.SeekStart); err != nil {
			t.Fatal(err)
		}
		buf := make([]byte, 10)
		n, err := io.ReadFull(r, buf)
		if err != nil && err != io.ErrUnexpectedEOF {
			t.Fatal(err)
		}
		if !bytes.Equal(buf[:n], data[off:min(off+10, int64(len(data)))]) {
			t.Fatalf("at %d: read differs", off)
		}
	}
	if _, err := r.Seek(-1, io.SeekStart); err == nil {
		t.Fatal("a seek before the start was accepted")
	}
}

func TestManifestRoundTripAndRefusals(t *testing.T) {
	chunks := []cid.Cid{newCID(CodecRaw, []byte("a")), newCID(CodecRaw, []byte("b")), newCID(CodecRaw, []byte("c"))}
	size := int64(2*ChunkSize + 1)
	b, c, err := encodeManifest(size, chunks)
	if err != nil {
		t.Fatal(err)
	}
	if !IsManifest(c) || c != newCID(CodecManifest, b) {
		t.Fatalf("manifest CID %s", c)
	}
	m, err := DecodeManifest(b)
	if err != nil {
		t.Fatal(err)
	}
	if m.Size != size || len(m.Chunks) != 3 || m.Chunks[2] != chunks[2] || m.chunkLen(0) != ChunkSize || m.chunkLen(2) != 1 {
		t.Fatalf("decoded %+v", m)
	}
	bad := func(size int64, chunks []cid.Cid) []byte {
		b, _, err := encodeManifest(size, chunks)
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, tc := range []struct {
		name string
		b    []byte
		want string
	}{
		{"too few chunks", bad(size, chunks[:2]), "2 chunks for 2097153 bytes, want 3"},
		{"fits one chunk", bad(ChunkSize, chunks[:1]), "want more than 1048576"},
		{"a manifest as a chunk", bad(size, []cid.Cid{chunks[0], chunks[1], c}), "chunk 2 is " + c.String() + ", not a raw block"},
		{"unknown field", append(append([]byte{}, b...), 0x20, 0x01), "not canonically encoded"},
		{"garbage", []byte{0xff, 0xff}, "bad manifest"},
	} {
		_, err := DecodeManifest(tc.b)
		if !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: got %v, want an error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestParseCIDSaysWhatIsWrong(t *testing.T) {
	good := newCID(CodecRaw, []byte("x"))
	if c, err := ParseCID(good.String()); err != nil || c != good {
		t.Fatalf("ParseCID(%s) = %s, %v", good, c, err)
	}
	digest := sha256.Sum256([]byte("x"))
	sha2, _ := mh.Encode(digest[:], mh.SHA2_256)
	sha512 := make([]byte, 64)
	sha5, _ := mh.Encode(sha512, mh.SHA2_512)
	for _, tc := range []struct{ in, want string }{
		{"", "empty"},
		{"not-a-cid", `"not-a-cid"`},
		{cid.NewCidV0(sha2).String(), "version 0, want CIDv1"},
		{cid.NewCidV1(cid.DagCBOR, sha2).String(), "codec 0x71, want raw (0x55) or manifest (0x50)"},
		{cid.NewCidV1(cid.Raw, sha5).String(), "multihash sha2-512 of 64 bytes, want sha2-256 of 32"},
	} {
		_, err := ParseCID(tc.in)
		if !errors.Is(err, ErrBadCID) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("ParseCID(%q): got %v, want an error saying %q", tc.in, err, tc.want)
		}
	}
}

func TestStoreBlocksPinsDeleteList(t *testing.T) {
	s := memStore(t)
	small := []byte("a small record")
	sc := newCID(CodecRaw, small)
	if ok, _ := s.HasBlock(sc); ok {
		t.Fatal("an empty store has a block")
	}
	if _, err := s.GetBlock(sc); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), sc.String()) {
		t.Fatalf("GetBlock of a missing block: %v", err)
	}
	if err := s.PutBlock(sc, small); err != nil {
		t.Fatal(err)
	}
	// Wrong bytes are refused, naming the CID, and what was stored stays as it was.
	err := s.PutBlock(sc, []byte("another record"))
	if !errors.Is(err, ErrHashMismatch) || !strings.Contains(err.Error(), sc.String()) {
		t.Fatalf("PutBlock of wrong bytes: %v", err)
	}
	other := newCID(CodecRaw, []byte("never stored"))
	if err := s.PutBlock(other, small); !errors.Is(err, ErrHashMismatch) {
		t.Fatalf("PutBlock of wrong bytes under a new CID: %v", err)
	}
	if ok, _ := s.HasBlock(other); ok {
		t.Fatal("a refused block was stored")
	}
	if got, err := s.GetBlock(sc); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("after refusals, GetBlock = %q, %v", got, err)
	}
	if err := s.PutBlock(sc, bytes.Repeat([]byte{1}, ChunkSize+1)); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("an oversized raw block: %v", err)
	}

	// A large blob: Delete refuses it while pinned, keeps shared chunks, and List shows what is here.
	big := randomBytes(3, 3*ChunkSize)
	bc, _, err := s.Add(bytes.NewReader(big))
	if err != nil {
		t.Fatal(err)
	}
	shared := append(append([]byte{}, big[:ChunkSize]...), []byte("tail")...) // shares chunk 0 with big
	shc, _, err := s.Add(bytes.NewReader(shared))
	if err != nil {
		t.Fatal(err)
	}
	list, err := s.List()
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]Info{
		sc.String():  {CID: sc.String(), Size: int64(len(small)), Complete: true},
		bc.String():  {CID: bc.String(), Size: int64(len(big)), Pinned: true, Complete: true},
		shc.String(): {CID: shc.String(), Size: int64(len(shared)), Pinned: true, Complete: true},
	}
	if len(list) != len(want) {
		t.Fatalf("List = %+v, want %d blobs", list, len(want))
	}
	for _, in := range list {
		if want[in.CID] != in {
			t.Fatalf("List has %+v, want %+v", in, want[in.CID])
		}
	}
	if err := s.Delete(bc); !errors.Is(err, ErrPinned) {
		t.Fatalf("Delete of a pinned blob: %v", err)
	}
	m, _ := s.manifest(bc)
	if err := s.Delete(m.Chunks[1]); err == nil || !strings.Contains(err.Error(), "is a chunk of a local blob") {
		t.Fatalf("Delete of a chunk of a local blob: %v", err)
	}
	if err := s.Unpin(bc); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(bc); err != nil {
		t.Fatal(err)
	}
	if ok, _ := s.Has(bc); ok {
		t.Fatal("a deleted blob is still here")
	}
	if ok, _ := s.HasBlock(m.Chunks[1]); ok {
		t.Fatal("Delete kept a chunk no other blob lists")
	}
	if got := readAll(t, s, shc); !bytes.Equal(got, shared) {
		t.Fatal("deleting a blob damaged another that shares a chunk with it")
	}
	if err := s.Delete(sc); err != nil {
		t.Fatal(err)
	}
	list, _ = s.List()
	if len(list) != 1 || list[0].CID != shc.String() {
		t.Fatalf("after deletes, List = %+v", list)
	}
	// A pin of a blob that is not here yet is listed as such.
	if err := s.Pin(bc); err != nil {
		t.Fatal(err)
	}
	list, _ = s.List()
	if len(list) != 2 {
		t.Fatalf("List = %+v", list)
	}
	pins, _ := s.Pins()
	if len(pins) != 2 {
		t.Fatalf("Pins = %v", pins)
	}
}

func TestPutBlockChecksManifests(t *testing.T) {
	s := memStore(t)
	b := []byte{0x08, 0x01} // size 1, nothing else: decodes, but is no valid manifest
	c := newCID(CodecManifest, b)
	if err := s.PutBlock(c, b); !errors.Is(err, ErrBadManifest) || !strings.Contains(err.Error(), c.String()) {
		t.Fatalf("PutBlock of an invalid manifest: %v", err)
	}
}

// diskStore opens a store on the real file system in a temporary directory, as a node does.
func diskStore(t *testing.T) (*Store, string) {
	t.Helper()
	dir := t.TempDir()
	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	blocks := filepath.Join(dir, "blocks")
	s, err := OpenStore(db, vfs.Default, blocks)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("O_DIRECT writes: %v", s.direct)
	return s, blocks
}

func TestLargeBlocksAreFilesOnDisk(t *testing.T) {
	s, dir := diskStore(t)
	// Sizes around the file threshold and O_DIRECT's alignment.
	for _, n := range []int{fileMin, fileMin + 1, 100_003, 4096 * 50, ChunkSize - 1, ChunkSize} {
		data := randomBytes(uint64(n), n)
		c := newCID(CodecRaw, data)
		if err := s.PutBlock(c, data); err != nil {
			t.Fatalf("%d bytes: %v", n, err)
		}
		_, statErr := os.Stat(s.filePath(c))
		if inFile(c, n) != (statErr == nil) {
			t.Fatalf("%d bytes: in a file %v, want %v", n, statErr == nil, inFile(c, n))
		}
		if got, err := s.GetBlock(c); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("%d bytes: read back %d bytes, %v", n, len(got), err)
		}
		if size, err := s.Size(c); err != nil || size != int64(n) {
			t.Fatalf("%d bytes: Size = %d, %v", n, size, err)
		}
	}
	// A blob's chunks are files, and deleting the blob removes them.
	data := randomBytes(5, 3*ChunkSize+77)
	c, _, err := s.Add(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	if got := readAll(t, s, c); !bytes.Equal(got, data) {
		t.Fatal("the blob read back differs")
	}
	m, _ := s.manifest(c)
	if err := s.Unpin(c); err != nil {
		t.Fatal(err)
	}
	if err := s.Delete(c); err != nil {
		t.Fatal(err)
	}
	for _, cc := range m.Chunks {
		if _, err := os.Stat(s.filePath(cc)); !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("chunk %s's file is still there after Delete: %v", cc, err)
		}
	}
	if tmp, _ := os.ReadDir(filepath.Join(dir, tmpDir)); len(tmp) != 0 {
		t.Fatalf("temporary files left: %v", tmp)
	}
}

func TestLostBlockFilesCountAsMissing(t *testing.T) {
	s, _ := diskStore(t)
	data := randomBytes(11, 3*ChunkSize)
	c, _, err := s.Add(bytes.NewReader(data))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := s.manifest(c)
	gone, short, damaged := m.Chunks[0], m.Chunks[1], m.Chunks[2]
	// As a crash can leave them: a file never written, one cut short, one with the right size and wrong bytes.
	if err := os.Remove(s.filePath(gone)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(s.filePath(short), 1000); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.filePath(damaged), make([]byte, ChunkSize), 0o644); err != nil {
		t.Fatal(err)
	}
	if ok, err := s.HasBlock(gone); ok || err != nil {
		t.Fatalf("HasBlock of a block whose file is gone = %v, %v", ok, err)
	}
	if _, err := s.GetBlock(short); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "holds 1000 bytes") {
		t.Fatalf("GetBlock of a block whose file was cut short: %v", err)
	}
	r, _, err := s.NewReader(c)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if _, err := r.Seek(2*ChunkSize, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(r); !errors.Is(err, ErrNotFound) || !strings.Contains(err.Error(), "chunk 2") || !strings.Contains(err.Error(), "do not match its CID") {
		t.Fatalf("reading a damaged chunk: %v", err)
	}
	if got := s.Stats().BlocksLost; got != 3 {
		t.Fatalf("BlocksLost = %d, want 3", got)
	}
	missing, err := s.missing(m)
	if err != nil || len(missing) != 3 {
		t.Fatalf("missing = %v, %v; want all three chunks", missing, err)
	}
	// Stored again (as a fetch would), they are whole.
	for i, cc := range m.Chunks {
		if err := s.PutBlock(cc, data[i*ChunkSize:(i+1)*ChunkSize]); err != nil {
			t.Fatal(err)
		}
	}
	if got := readAll(t, s, c); !bytes.Equal(got, data) {
		t.Fatal("the blob read back differs after its chunks were stored again")
	}
}

func TestOpenStoreRemovesWhatACrashLeft(t *testing.T) {
	dir := t.TempDir()
	db, err := pebble.Open(filepath.Join(dir, "db"), &pebble.Options{Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	blocks := filepath.Join(dir, "blocks")
	s, err := OpenStore(db, vfs.Default, blocks)
	if err != nil {
		t.Fatal(err)
	}
	kept := randomBytes(1, ChunkSize)
	kc := newCID(CodecRaw, kept)
	if err := s.PutBlock(kc, kept); err != nil {
		t.Fatal(err)
	}
	// A block file whose index entry was never committed, a stray file, and a temporary file.
	orphan := newCID(CodecRaw, randomBytes(2, ChunkSize))
	if err := os.WriteFile(s.filePath(orphan), randomBytes(2, ChunkSize), 0o644); err != nil {
		t.Fatal(err)
	}
	stray := filepath.Join(blocks, shard(kc.String()), "stray")
	tmp := filepath.Join(blocks, tmpDir, kc.String()+".7")
	for _, p := range []string{stray, tmp} {
		if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	s, err = OpenStore(db, vfs.Default, blocks)
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{s.filePath(orphan), stray, tmp} {
		if _, err := os.Stat(p); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("%s survived OpenStore: %v", p, err)
		}
	}
	if got, err := s.GetBlock(kc); err != nil || !bytes.Equal(got, kept) {
		t.Fatalf("an indexed block after reopening: %d bytes, %v", len(got), err)
	}
}

// failingReader returns its bytes, then an error.
type failingReader struct{ r io.Reader }

func (f *failingReader) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	if err == io.EOF {
		return n, errors.New("disk on fire")
	}
	return n, err
}

func TestAFailedAddLeavesNoUnindexedFiles(t *testing.T) {
	s, dir := diskStore(t)
	data := randomBytes(8, 3*ChunkSize) // less than one commit's worth
	_, _, err := s.Add(&failingReader{bytes.NewReader(data)})
	if err == nil || !strings.Contains(err.Error(), "disk on fire") {
		t.Fatalf("Add from a failing reader: %v", err)
	}
	for i := range 3 {
		c := newCID(CodecRaw, data[i*ChunkSize:(i+1)*ChunkSize])
		if ok, _ := s.HasBlock(c); ok {
			t.Fatalf("chunk %d is indexed after the failed Add", i)
		}
	}
	var files []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, path)
		}
		return nil
	})
	if len(files) != 0 {
		t.Fatalf("files left by the failed Add: %v", files)
	}
}
