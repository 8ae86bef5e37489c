package consensus

import (
	"encoding/binary"
	"errors"
	"fmt"
)

// Limits of the wire format. The decoder rejects anything beyond them before allocating for it.
const (
	// MaxValidators is the largest validator set.
	MaxValidators = 4096
	// MaxRound is the largest round a message may carry. Rounds grow only by timeouts, so a million rounds is
	// weeks of a stalled height; anything beyond is malformed.
	MaxRound = 1 << 20
	// MaxBlockBytes is the largest encoded block (header, count, length-prefixed transactions).
	MaxBlockBytes = 16 << 20
	// MaxMessageBytes is the largest encoded message: a commit with a maximal block and certificate.
	MaxMessageBytes = MaxBlockBytes + 1<<20
	// MaxChainIDLen is the longest chain ID.
	MaxChainIDLen = 64
)

// Message tags: the first byte of an encoded message.
const (
	tagProposal = 1
	tagVote     = 2
	tagCommit   = 3
)

const (
	headerSize = 8 + 4 + 2 + 8 + 32 + 32 + 32
	voteSize   = 1 + 8 + 4 + 2 + 32 + 64
)

const (
	blockDomain = "shoulders/block/v1\x00"
	signDomain  = "shoulders/consensus/v1\x00"
)

// ErrMalformed is returned (wrapped, with the field at fault) for bytes that are not a canonical message.
var ErrMalformed = errors.New("consensus: malformed message")

// EncodeMessage returns the canonical encoding of m. It panics if m is not a *Vote, *Proposal or *Commit
// or is missing its block or certificate: that is a programming error, not bad input.
func EncodeMessage(m Message) []byte { return AppendMessage(nil, m) }

// AppendMessage appends the canonical encoding of m to dst.
func AppendMessage(dst []byte, m Message) []byte {
	switch m := m.(type) {
	case *Vote:
		dst = append(dst, tagVote)
		return appendVote(dst, m)
	case *Proposal:
		dst = append(dst, tagProposal)
		dst = binary.BigEndian.AppendUint64(dst, m.Height)
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.Round))
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.POLRound))
		dst = append(dst, m.Signature[:]...)
		return appendBlock(dst, m.Block)
	case *Commit:
		dst = append(dst, tagCommit)
		dst = appendBlock(dst, m.Block)
		return AppendCertificate(dst, m.Certificate)
	}
	panic(fmt.Sprintf("consensus: cannot encode %T", m))
}

func appendVote(dst []byte, v *Vote) []byte {
	dst = append(dst, byte(v.Type))
	dst = binary.BigEndian.AppendUint64(dst, v.Height)
	dst = binary.BigEndian.AppendUint32(dst, uint32(v.Round))
	dst = binary.BigEndian.AppendUint16(dst, v.Validator)
	dst = append(dst, v.BlockHash[:]...)
	return append(dst, v.Signature[:]...)
}

func appendHeader(dst []byte, h *Header) []byte {
	dst = binary.BigEndian.AppendUint64(dst, h.Height)
	dst = binary.BigEndian.AppendUint32(dst, uint32(h.Round))
	dst = binary.BigEndian.AppendUint16(dst, h.Proposer)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.Time))
	dst = append(dst, h.PrevHash[:]...)
	dst = append(dst, h.AppHash[:]...)
	return append(dst, h.TxsHash[:]...)
}

func appendBlock(dst []byte, b *Block) []byte {
	dst = appendHeader(dst, &b.Header)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(b.Txs)))
	for _, tx := range b.Txs {
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(tx)))
		dst = append(dst, tx...)
	}
	return dst
}

// EncodeBlock returns the canonical encoding of b (what the store keeps).
func EncodeBlock(b *Block) []byte { return appendBlock(make([]byte, 0, blockSize(b)), b) }

// AppendCertificate appends the canonical encoding of c to dst.
func AppendCertificate(dst []byte, c *Certificate) []byte {
	dst = binary.BigEndian.AppendUint64(dst, c.Height)
	dst = binary.BigEndian.AppendUint32(dst, uint32(c.Round))
	dst = append(dst, c.BlockHash[:]...)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(c.Signers)))
	dst = append(dst, c.Signers...)
	for i := range c.Signatures {
		dst = append(dst, c.Signatures[i][:]...)
	}
	return dst
}

// blockSize is the length of b's encoding.
func blockSize(b *Block) int {
	n := headerSize + 4
	for _, tx := range b.Txs {
		n += 4 + len(tx)
	}
	return n
}

// DecodeMessage decodes one canonical message. It accepts exactly the bytes EncodeMessage produces: any
// other input (trailing bytes, out-of-range fields, lengths beyond the data or the limits) is an error
// wrapping ErrMalformed, and the decoder never allocates more than the input's size. Decoded blocks
// do not alias b. Decoding checks form, not meaning: signatures, heights and hashes are the core's job.
func DecodeMessage(b []byte) (Message, error) {
	if len(b) == 0 {
		return nil, fmt.Errorf("%w: empty", ErrMalformed)
	}
	if len(b) > MaxMessageBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrMalformed, len(b), MaxMessageBytes)
	}
	r := reader{b: b, off: 1}
	var m Message
	switch b[0] {
	case tagVote:
		v := new(Vote)
		r.vote(v)
		m = v
	case tagProposal:
		p := new(Proposal)
		p.Height = r.u64()
		p.Round = r.round("round")
		p.POLRound = int32(r.u32())
		r.sig(&p.Signature)
		p.Block = r.block()
		if r.err == nil && (p.POLRound < -1 || p.POLRound >= p.Round) {
			r.fail("pol_round %d not in [-1, round %d)", p.POLRound, p.Round)
		}
		m = p
	case tagCommit:
		c := &Commit{}
		c.Block = r.block()
		c.Certificate = r.certificate()
		m = c
	default:
		return nil, fmt.Errorf("%w: unknown tag %d", ErrMalformed, b[0])
	}
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	if r.err != nil {
		return nil, r.err
	}
	return m, nil
}

// DecodeBlock decodes a canonical block encoding (EncodeBlock).
func DecodeBlock(b []byte) (*Block, error) {
	r := reader{b: b}
	blk := r.block()
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	return blk, r.err
}

// DecodeCertificate decodes a canonical certificate encoding (AppendCertificate).
func DecodeCertificate(b []byte) (*Certificate, error) {
	r := reader{b: b}
	c := r.certificate()
	if r.err == nil && r.off != len(b) {
		r.fail("%d trailing bytes", len(b)-r.off)
	}
	return c, r.err
}

// reader decodes big-endian fields, remembering the first error; after an error every read returns zero.
type reader struct {
	b   []byte
	off int
	err error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = fmt.Errorf("%w: at byte %d: %s", ErrMalformed, r.off, fmt.Sprintf(format, args...))
	}
}

func (r *reader) take(n int, what string) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || len(r.b)-r.off < n {
		r.fail("%s: need %d bytes, have %d", what, n, len(r.b)-r.off)
		return nil
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s
}

func (r *reader) u8() uint8 {
	if s := r.take(1, "u8"); s != nil {
		return s[0]
	}
	return 0
}

func (r *reader) u16() uint16 {
	if s := r.take(2, "u16"); s != nil {
		return binary.BigEndian.Uint16(s)
	}
	return 0
}

func (r *reader) u32() uint32 {
	if s := r.take(4, "u32"); s != nil {
		return binary.BigEndian.Uint32(s)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if s := r.take(8, "u64"); s != nil {
		return binary.BigEndian.Uint64(s)
	}
	return 0
}

func (r *reader) round(what string) int32 {
	v := r.u32()
	if v > MaxRound {
		r.fail("%s %d over limit %d", what, v, MaxRound)
		return 0
	}
	return int32(v)
}

func (r *reader) hash(h *Hash) {
	if s := r.take(32, "hash"); s != nil {
		copy(h[:], s)
	}
}

func (r *reader) sig(sig *Signature) {
	if s := r.take(64, "signature"); s != nil {
		copy(sig[:], s)
	}
}

func (r *reader) vote(v *Vote) {
	v.Type = Step(r.u8())
	if r.err == nil && v.Type != Prevote && v.Type != Precommit {
		r.fail("vote type %d", v.Type)
	}
	v.Height = r.u64()
	v.Round = r.round("round")
	v.Validator = r.u16()
	r.hash(&v.BlockHash)
	r.sig(&v.Signature)
}

func (r *reader) header(h *Header) {
	h.Height = r.u64()
	h.Round = r.round("header round")
	h.Proposer = r.u16()
	h.Time = int64(r.u64())
	r.hash(&h.PrevHash)
	r.hash(&h.AppHash)
	r.hash(&h.TxsHash)
}

func (r *reader) block() *Block {
	start := r.off
	b := &Block{}
	r.header(&b.Header)
	n := r.u32()
	if r.err != nil {
		return nil
	}
	// Every transaction takes at least its 4-byte length: bound the count by what is left before allocating.
	if uint64(n)*4 > uint64(len(r.b)-r.off) {
		r.fail("%d transactions cannot fit in %d bytes", n, len(r.b)-r.off)
		return nil
	}
	if n > 0 {
		b.Txs = make([][]byte, n)
	}
	// Transactions are copied into one allocation so the block does not alias the caller's buffer.
	var data []byte
	for i := range b.Txs {
		l := r.u32()
		s := r.take(int(l), "transaction")
		if r.err != nil {
			return nil
		}
		if data == nil {
			data = make([]byte, 0, len(r.b)-r.off+len(s))
		}
		data = append(data, s...)
		b.Txs[i] = data[len(data)-len(s) : len(data) : len(data)]
	}
	if r.off-start > MaxBlockBytes {
		r.fail("block of %d bytes over limit %d", r.off-start, MaxBlockBytes)
		return nil
	}
	return b
}

func (r *reader) certificate() *Certificate {
	c := &Certificate{}
	c.Height = r.u64()
	c.Round = r.round("certificate round")
	r.hash(&c.BlockHash)
	nb := int(r.u16())
	if r.err == nil && (nb == 0 || nb > (MaxValidators+7)/8) {
		r.fail("signer bitmap of %d bytes", nb)
	}
	bm := r.take(nb, "signer bitmap")
	if r.err != nil {
		return nil
	}
	c.Signers = append(Bitmap(nil), bm...)
	k := c.Signers.Count()
	if k == 0 {
		r.fail("certificate without signers")
		return nil
	}
	sigs := r.take(64*k, "certificate signatures")
	if r.err != nil {
		return nil
	}
	c.Signatures = make([]Signature, k)
	for i := range c.Signatures {
		copy(c.Signatures[i][:], sigs[64*i:])
	}
	return c
}

// signBytes appends to dst the bytes a validator signs for a message of step s: a domain tag, the chain
// ID, the step, height, round, (for proposals) the POL round, and the block hash. The validator's index is
// not included: its key already names it.
func signBytes(dst []byte, chainID string, s Step, height uint64, round, polRound int32, h *Hash) []byte {
	dst = append(dst, signDomain...)
	dst = append(dst, byte(len(chainID)))
	dst = append(dst, chainID...)
	dst = append(dst, byte(s))
	dst = binary.BigEndian.AppendUint64(dst, height)
	dst = binary.BigEndian.AppendUint32(dst, uint32(round))
	if s == StepPropose {
		dst = binary.BigEndian.AppendUint32(dst, uint32(polRound))
	}
	return append(dst, h[:]...)
}

// VoteSignBytes returns the bytes a validator signs for v in chain chainID.
func VoteSignBytes(chainID string, v *Vote) []byte {
	return signBytes(nil, chainID, v.Type, v.Height, v.Round, -1, &v.BlockHash)
}

// ProposalSignBytes returns the bytes a proposer signs for a proposal of the block with hash h.
func ProposalSignBytes(chainID string, height uint64, round, polRound int32, h Hash) []byte {
	return signBytes(nil, chainID, StepPropose, height, round, polRound, &h)
}
