package content

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"
)

func memDB(t testing.TB) *pebble.DB {
	t.Helper()
	db, err := pebble.Open("", &pebble.Options{FS: vfs.NewMem(), Logger: quietLogger{}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func memStore(t testing.TB) *Store {
	t.Helper()
	s, err := OpenStore(memDB(t))
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
