package ledger

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"strings"
	"testing"
)

func TestReadFrame(t *testing.T) {
	var stream []byte
	bodies := [][]byte{nil, []byte("vote"), bytes.Repeat([]byte{7}, 200<<10)}
	for _, b := range bodies {
		stream = append(binary.AppendUvarint(stream, uint64(len(b))), b...)
	}
	r := bufio.NewReader(bytes.NewReader(stream))
	for i, want := range bodies {
		got, err := readFrame(r, 1<<20)
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("frame %d: %d bytes, %v; want %d bytes", i, len(got), err, len(want))
		}
	}
	if _, err := readFrame(r, 1<<20); !errors.Is(err, io.EOF) {
		t.Fatalf("after the last frame: %v, want EOF", err)
	}

	// A frame cut short is an error, not a short body.
	cut := binary.AppendUvarint(nil, 1000)
	cut = append(cut, make([]byte, 10)...)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(cut)), 1<<20); !errors.Is(err, io.ErrUnexpectedEOF) {
		t.Fatalf("truncated frame: %v", err)
	}
	// A frame over the limit is refused before its body is read.
	big := binary.AppendUvarint(nil, 1<<40)
	if _, err := readFrame(bufio.NewReader(bytes.NewReader(big)), 1<<20); err == nil || !strings.Contains(err.Error(), "limit") {
		t.Fatalf("oversized frame: %v", err)
	}
}

// A peer's queue is bounded by bytes as well as frames, and what an outage left queued is dropped.
func TestOutQueueBounds(t *testing.T) {
	tr := &transport{}
	p := &outPeer{queue: make(chan []byte, outQueue)}
	block := make([]byte, 16<<20)
	for range 4 {
		tr.enqueue(p, block)
	}
	tr.enqueue(p, block) // over outQueueBytes
	if len(p.queue) != 4 || tr.dropped.Load() != 1 || p.queued.Load() != 4*int64(len(block)) {
		t.Fatalf("queue %d frames, %d bytes, %d dropped", len(p.queue), p.queued.Load(), tr.dropped.Load())
	}
	tr.discard(p)
	if len(p.queue) != 0 || p.queued.Load() != 0 || tr.dropped.Load() != 5 {
		t.Fatalf("after discard: queue %d frames, %d bytes, %d dropped", len(p.queue), p.queued.Load(), tr.dropped.Load())
	}
	tr.enqueue(p, []byte("vote"))
	if len(p.queue) != 1 {
		t.Fatal("a small frame was refused after the queue drained")
	}
}
