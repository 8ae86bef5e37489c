package content

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"

	pb "github.com/shouldersnet/shoulders/proto"
)

// Protocol is the stream protocol peers fetch blocks with. On one stream a requester writes length-prefixed
// (uvarint) ContentRequest messages, as many as it likes without waiting, and the server answers every CID
// asked for with one length-prefixed ContentResponse, in order: the block, or missing. Either side resets
// the stream on any error; the requester closes its write side when done and the server then closes.
const Protocol = protocol.ID("/shoulders/content/1")

// Wire limits.
const (
	// MaxRequestCIDs is the most CIDs one request may ask for.
	MaxRequestCIDs = 64
	// maxRequestSize bounds a request message: MaxRequestCIDs binary CIDs and their framing.
	maxRequestSize = MaxRequestCIDs * (cidLen + 4)
	// maxResponseSize bounds a response message: the largest block, its CID and the framing.
	maxResponseSize = MaxBlockSize + cidLen + 32
	// serveIdle is how long a server waits for the next request on a stream before closing it.
	serveIdle = time.Minute
)

// Protobuf field numbers of ContentResponse (proto/content.proto).
const (
	respCID     = 1
	respData    = 2
	respMissing = 3
)

var errFrameTooLarge = errors.New("content: message too large")

// readFrame reads one uvarint-length-prefixed message of at most limit bytes into buf (grown when short)
// and returns it. A stream that ends cleanly before a frame starts gives io.EOF.
func readFrame(r *bufio.Reader, limit int, buf []byte) ([]byte, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		if err == io.EOF {
			return nil, io.EOF
		}
		return nil, fmt.Errorf("content: reading a message length: %w", err)
	}
	if n > uint64(limit) {
		return nil, fmt.Errorf("%w: %d bytes, the limit is %d", errFrameTooLarge, n, limit)
	}
	if uint64(cap(buf)) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	if _, err := io.ReadFull(r, buf); err != nil {
		if err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return nil, fmt.Errorf("content: reading a message of %d bytes: %w", n, err)
	}
	return buf, nil
}

// writeRequest writes one request for cids.
func writeRequest(w *bufio.Writer, cids [][]byte) error {
	b, err := proto.Marshal(&pb.ContentRequest{Cids: cids})
	if err != nil {
		return err
	}
	w.Write(binary.AppendUvarint(nil, uint64(len(b))))
	w.Write(b)
	return w.Flush()
}

// decodeRequest decodes a request and checks its limits and every CID in it.
func decodeRequest(b []byte) ([][]byte, error) {
	var req pb.ContentRequest
	if err := proto.Unmarshal(b, &req); err != nil {
		return nil, fmt.Errorf("content: request: %w", err)
	}
	if len(req.Cids) == 0 || len(req.Cids) > MaxRequestCIDs {
		return nil, fmt.Errorf("content: request for %d CIDs, want 1 to %d", len(req.Cids), MaxRequestCIDs)
	}
	for i, c := range req.Cids {
		if _, err := castCID(c); err != nil {
			return nil, fmt.Errorf("content: request CID %d: %w", i, err)
		}
	}
	return req.Cids, nil
}

// writeResponse writes one ContentResponse framed by its length. It encodes the message around data rather
// than marshalling a copy of it: the header goes through w's buffer and data after it, so a block is copied
// once, into the stream.
func writeResponse(w *bufio.Writer, c []byte, data []byte, missing bool) error {
	var hdr [64]byte
	body := protowire.SizeTag(respCID) + protowire.SizeBytes(len(c))
	if missing {
		body += protowire.SizeTag(respMissing) + 1
	} else {
		body += protowire.SizeTag(respData) + protowire.SizeBytes(len(data))
	}
	h := binary.AppendUvarint(hdr[:0], uint64(body))
	h = protowire.AppendTag(h, respCID, protowire.BytesType)
	h = protowire.AppendBytes(h, c)
	if missing {
		h = protowire.AppendTag(h, respMissing, protowire.VarintType)
		h = protowire.AppendVarint(h, 1)
		_, err := w.Write(h)
		return err
	}
	h = protowire.AppendTag(h, respData, protowire.BytesType)
	h = protowire.AppendVarint(h, uint64(len(data)))
	if _, err := w.Write(h); err != nil {
		return err
	}
	_, err := w.Write(data)
	return err
}

// response is a decoded ContentResponse. Its slices alias the message it was decoded from.
type response struct {
	cid     []byte
	data    []byte
	missing bool
}

// decodeResponse decodes a ContentResponse without copying the block out of b. It accepts what proto.Unmarshal
// accepts (fields in any order, a repeated field's last value wins, unknown fields skipped), and then
// requires a CID and no data alongside missing.
func decodeResponse(b []byte) (response, error) {
	var r response
	for len(b) > 0 {
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return response{}, fmt.Errorf("content: response: %w", protowire.ParseError(n))
		}
		b = b[n:]
		switch {
		case num == respCID && typ == protowire.BytesType:
			r.cid, n = protowire.ConsumeBytes(b)
		case num == respData && typ == protowire.BytesType:
			r.data, n = protowire.ConsumeBytes(b)
		case num == respMissing && typ == protowire.VarintType:
			var v uint64
			v, n = protowire.ConsumeVarint(b)
			r.missing = v != 0
		default:
			n = protowire.ConsumeFieldValue(num, typ, b)
		}
		if n < 0 {
			return response{}, fmt.Errorf("content: response field %d: %w", num, protowire.ParseError(n))
		}
		b = b[n:]
	}
	if len(r.cid) == 0 {
		return response{}, errors.New("content: response names no CID")
	}
	if r.missing && len(r.data) > 0 {
		return response{}, errors.New("content: response says missing and carries data")
	}
	return r, nil
}

// serve answers requests on one stream until the requester closes it, is idle for serveIdle, or errs. It
// holds at most one block at a time, and runs only within the per-peer and total stream limits.
func (s *Service) serve(st network.Stream) {
	p := st.Conn().RemotePeer()
	if !s.admit(p) {
		s.log.Debug("content: refusing a stream over the limit", "peer", p)
		st.Reset()
		return
	}
	defer s.release(p)
	if err := s.serveStream(st); err != nil {
		s.log.Debug("content: serving a stream", "peer", p, "err", err)
		st.Reset()
		return
	}
	st.Close()
}

func (s *Service) serveStream(st network.Stream) error {
	br := bufio.NewReaderSize(st, 4<<10)
	bw := bufio.NewWriterSize(st, 64<<10)
	bufp := s.store.chunkBufs.Get().(*[]byte)
	defer s.store.chunkBufs.Put(bufp)
	reqBuf := make([]byte, 0, 1024)
	for {
		st.SetReadDeadline(time.Now().Add(serveIdle))
		msg, err := readFrame(br, maxRequestSize, reqBuf)
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		cids, err := decodeRequest(msg)
		if err != nil {
			return err
		}
		for _, raw := range cids {
			c, _ := castCID(raw) // decodeRequest checked it
			data, err := s.store.getBlockInto(c, *bufp)
			missing := errors.Is(err, ErrNotFound)
			if err != nil && !missing {
				return err
			}
			st.SetWriteDeadline(time.Now().Add(s.cfg.BlockTimeout))
			if err := writeResponse(bw, raw, data, missing); err != nil {
				return fmt.Errorf("content: writing %s: %w", c, err)
			}
			if !missing {
				s.blocksServed.Add(1)
				s.bytesServed.Add(int64(len(data)))
			}
		}
		// Answer at once unless the next request is already here.
		if br.Buffered() == 0 {
			st.SetWriteDeadline(time.Now().Add(s.cfg.BlockTimeout))
			if err := bw.Flush(); err != nil {
				return fmt.Errorf("content: writing: %w", err)
			}
		}
	}
}

// admit takes one serving slot for p, if p and everyone together are under their stream limits.
func (s *Service) admit(p peer.ID) bool {
	s.serving.Lock()
	defer s.serving.Unlock()
	if s.serving.total >= s.cfg.ServeStreams || s.serving.perPeer[p] >= s.cfg.ServeStreamsPerPeer {
		return false
	}
	s.serving.total++
	s.serving.perPeer[p]++
	return true
}

func (s *Service) release(p peer.ID) {
	s.serving.Lock()
	defer s.serving.Unlock()
	s.serving.total--
	if s.serving.perPeer[p]--; s.serving.perPeer[p] == 0 {
		delete(s.serving.perPeer, p)
	}
}
