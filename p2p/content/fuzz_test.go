package content

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/ipfs/go-cid"
	"google.golang.org/protobuf/proto"

	pb "github.com/shouldersnet/shoulders/proto"
)

// FuzzDecodeManifest: no input panics, and whatever decodes re-encodes to the same bytes (the encoding is
// canonical) and satisfies the manifest's invariants.
func FuzzDecodeManifest(f *testing.F) {
	chunks := []cid.Cid{newCID(CodecRaw, []byte("a")), newCID(CodecRaw, []byte("b"))}
	good, _, _ := encodeManifest(ChunkSize+1, chunks)
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x08, 0x01})
	f.Add(append(append([]byte{}, good...), 0x20, 0x01))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := DecodeManifest(b)
		if err != nil {
			return
		}
		again, _, err := encodeManifest(m.Size, m.Chunks)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("a decoded manifest does not re-encode to its bytes: %v", err)
		}
		if m.Size <= ChunkSize || len(m.Chunks) != chunkCount(m.Size) {
			t.Fatalf("decoded %d chunks for %d bytes", len(m.Chunks), m.Size)
		}
		for i, c := range m.Chunks {
			if c.Type() != CodecRaw || checkCID(c) != nil {
				t.Fatalf("chunk %d is %s", i, c)
			}
		}
	})
}

// FuzzDecodeResponse: the hand-written decoder never panics, and agrees with the generated one on every
// message it accepts.
func FuzzDecodeResponse(f *testing.F) {
	c := newCID(CodecRaw, []byte("x")).Bytes()
	var buf bytes.Buffer
	for _, m := range []struct {
		data    []byte
		missing bool
	}{{[]byte("x"), false}, {nil, true}, {nil, false}} {
		buf.Reset()
		w := newTestWriter(&buf)
		writeResponse(w, c, m.data, m.missing)
		w.Flush()
		f.Add(skipLength(buf.Bytes()))
	}
	f.Add([]byte{0x0a})
	f.Add([]byte{0x12, 0x01, 0x00, 0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeResponse(b)
		if err != nil {
			return
		}
		var m pb.ContentResponse
		if err := proto.Unmarshal(b, &m); err != nil {
			t.Fatalf("accepted what proto.Unmarshal refuses: %v", err)
		}
		if !bytes.Equal(r.cid, m.Cid) || !bytes.Equal(r.data, m.Data) || r.missing != m.Missing {
			t.Fatalf("decoded %+v, proto.Unmarshal %+v", r, &m)
		}
	})
}

// FuzzDecodeRequest: a request never panics the server's decoder, and what it accepts is within limits.
func FuzzDecodeRequest(f *testing.F) {
	good, _ := proto.Marshal(&pb.ContentRequest{Cids: [][]byte{newCID(CodecRaw, nil).Bytes()}})
	f.Add(good)
	f.Add([]byte{})
	f.Add([]byte{0x0a, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		cids, err := decodeRequest(b)
		if err != nil {
			return
		}
		if len(cids) == 0 || len(cids) > MaxRequestCIDs {
			t.Fatalf("accepted %d CIDs", len(cids))
		}
		for _, c := range cids {
			if _, err := castCID(c); err != nil {
				t.Fatal(err)
			}
		}
	})
}

func newTestWriter(b *bytes.Buffer) *bufio.Writer { return bufio.NewWriter(b) }

// skipLength drops a frame's length prefix.
func skipLength(b []byte) []byte {
	_, n := binary.Uvarint(b)
	return b[n:]
}
