package state

import (
	"bytes"
	"crypto/sha256"
	"encoding"
	"encoding/binary"
	"errors"
	"fmt"
	"hash"
	"strconv"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	mh "github.com/multiformats/go-multihash"

	"github.com/shouldersnet/shoulders/ledger/store"
)

// Datanet transaction kinds and their limits. See the package doc's "Datanets" section for the rules.
const (
	KindDatanetCreate     Kind = 2
	KindDatanetContribute Kind = 3
	KindDatanetApprove    Kind = 4
	KindDatanetReject     Kind = 5

	// MaxDatanetName, MaxDescription, MaxLicense, MaxTags and MaxTag bound a datanet's descriptive fields.
	MaxDatanetName = 64
	MaxDescription = 1024
	MaxLicense     = 256
	MaxTags        = 8
	MaxTag         = 32
	// MaxRecordsPerTxLimit is the decoder's limit on records in one transaction; a chain's
	// Params.MaxRecordsPerTx is at most this.
	MaxRecordsPerTxLimit = 1024
	// MaxCIDBytes is the longest binary CID a record may carry (a CIDv1 over a SHA-256 digest is 36 bytes).
	MaxCIDBytes = 64
	// RawBlockMax is the largest record whose CID may use the raw codec: content stores keep blobs up to
	// this size as one raw block and name bigger ones by a manifest (codec CodecManifest).
	RawBlockMax = 1 << 20
	// CodecManifest is the multicodec of a chunked blob's manifest (0x50, "protobuf").
	CodecManifest = 0x50
)

// RecordType says what a datanet's records hold. Text records must be valid UTF-8; the owner's node checks
// that (the ledger never sees record bytes) before it approves.
type RecordType uint8

// The record types.
const (
	RecordText   RecordType = 1
	RecordBinary RecordType = 2
)

func (t RecordType) String() string {
	switch t {
	case RecordText:
		return "text"
	case RecordBinary:
		return "binary"
	}
	return "record_type(" + strconv.Itoa(int(t)) + ")"
}

// ParseRecordType reads "text" or "binary".
func ParseRecordType(s string) (RecordType, error) {
	switch s {
	case "text":
		return RecordText, nil
	case "binary":
		return RecordBinary, nil
	}
	return 0, fmt.Errorf("record type %q: want text or binary", s)
}

// MarshalText writes the type's name.
func (t RecordType) MarshalText() ([]byte, error) { return []byte(t.String()), nil }

// UnmarshalText reads a type's name.
func (t *RecordType) UnmarshalText(b []byte) error {
	v, err := ParseRecordType(string(b))
	*t = v
	return err
}

// DatanetCreate creates a datanet owned by its sender.
type DatanetCreate struct {
	Name        string // 1..MaxDatanetName of a-z 0-9 . _ -, starting with a letter or digit; unique on the chain
	RecordType  RecordType
	Description string   // UTF-8, at most MaxDescription bytes
	License     string   // the licence terms records are contributed under, UTF-8, at most MaxLicense bytes
	Tags        []string // domain tags, at most MaxTags, each 1..MaxTag of a-z 0-9 . _ - :
}

// RecordRef names one record: its content's CID (binary) and size in bytes.
type RecordRef struct {
	CID  []byte
	Size uint64
}

// DatanetContribute adds records to a datanet, pending the owner's approval, credited to the sender.
type DatanetContribute struct {
	Datanet string
	Records []RecordRef
}

// DatanetApprove approves pending records (owner only): they become version N+1, in the order listed.
type DatanetApprove struct {
	Datanet string
	CIDs    [][]byte
}

// DatanetReject rejects pending records (owner only).
type DatanetReject struct {
	Datanet string
	CIDs    [][]byte
}

// Kind returns the payload's kind.
func (*DatanetCreate) Kind() Kind     { return KindDatanetCreate }
func (*DatanetContribute) Kind() Kind { return KindDatanetContribute }
func (*DatanetApprove) Kind() Kind    { return KindDatanetApprove }
func (*DatanetReject) Kind() Kind     { return KindDatanetReject }

func (*DatanetCreate) spend() uint64     { return 0 }
func (*DatanetContribute) spend() uint64 { return 0 }
func (*DatanetApprove) spend() uint64    { return 0 }
func (*DatanetReject) spend() uint64     { return 0 }

// Payload layouts (after the common header), big-endian:
//
//	create:     name_len(1) name  record_type(1)  desc_len(2) desc  license_len(2) license  n_tags(1) n×(len(1) tag)
//	contribute: name_len(1) name  n(2) n×(cid_len(1) cid  size(8))
//	approve:    name_len(1) name  n(2) n×(cid_len(1) cid)
//	reject:     as approve

func (p *DatanetCreate) appendTo(dst []byte) []byte {
	dst = appendStr8(dst, p.Name)
	dst = append(dst, byte(p.RecordType))
	dst = appendStr16(dst, p.Description)
	dst = appendStr16(dst, p.License)
	dst = append(dst, byte(len(p.Tags)))
	for _, t := range p.Tags {
		dst = appendStr8(dst, t)
	}
	return dst
}

func (p *DatanetContribute) appendTo(dst []byte) []byte {
	dst = appendStr8(dst, p.Datanet)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(p.Records)))
	for _, r := range p.Records {
		dst = append(dst, byte(len(r.CID)))
		dst = append(dst, r.CID...)
		dst = binary.BigEndian.AppendUint64(dst, r.Size)
	}
	return dst
}

func appendCIDList(dst []byte, name string, cids [][]byte) []byte {
	dst = appendStr8(dst, name)
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(cids)))
	for _, c := range cids {
		dst = append(dst, byte(len(c)))
		dst = append(dst, c...)
	}
	return dst
}

func (p *DatanetApprove) appendTo(dst []byte) []byte { return appendCIDList(dst, p.Datanet, p.CIDs) }
func (p *DatanetReject) appendTo(dst []byte) []byte  { return appendCIDList(dst, p.Datanet, p.CIDs) }

func appendStr8(dst []byte, s string) []byte {
	dst = append(dst, byte(len(s)))
	return append(dst, s...)
}

func appendStr16(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
	return append(dst, s...)
}

// reader decodes a payload; the first error sticks and names the field.
type reader struct {
	b    []byte
	kind string
	err  error
}

func (r *reader) fail(format string, args ...any) {
	if r.err == nil {
		r.err = refuse(CodeMalformed, r.kind+": "+format, args...)
	}
}

func (r *reader) take(n int, field string) []byte {
	if r.err != nil {
		return nil
	}
	if len(r.b) < n {
		r.fail("%s ends after %d of %d bytes", field, len(r.b), n)
		return nil
	}
	out := r.b[:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u8(field string) int {
	b := r.take(1, field)
	if b == nil {
		return 0
	}
	return int(b[0])
}

func (r *reader) u16(field string) int {
	b := r.take(2, field)
	if b == nil {
		return 0
	}
	return int(binary.BigEndian.Uint16(b))
}

func (r *reader) u32(field string) uint32 {
	b := r.take(4, field)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint32(b)
}

func (r *reader) u64(field string) uint64 {
	b := r.take(8, field)
	if b == nil {
		return 0
	}
	return binary.BigEndian.Uint64(b)
}

func (r *reader) str8(field string) string  { return string(r.take(r.u8(field+" length"), field)) }
func (r *reader) str16(field string) string { return string(r.take(r.u16(field+" length"), field)) }

func (r *reader) end() error {
	if r.err == nil && len(r.b) != 0 {
		r.fail("%d bytes after the payload", len(r.b))
	}
	return r.err
}

func decodeDatanetCreate(b []byte) (Payload, error) {
	r := &reader{b: b, kind: "datanet_create"}
	p := &DatanetCreate{Name: r.str8("name")}
	p.RecordType = RecordType(r.u8("record_type"))
	p.Description = r.str16("description")
	p.License = r.str16("license")
	n := r.u8("tag count")
	for i := 0; i < n && r.err == nil; i++ {
		p.Tags = append(p.Tags, r.str8("tags["+strconv.Itoa(i)+"]"))
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if err := p.check(); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *DatanetCreate) check() error {
	bad := func(format string, args ...any) error {
		return refuse(CodeMalformed, "datanet_create: "+format, args...)
	}
	if err := CheckDatanetName(p.Name); err != nil {
		return bad("%v", err)
	}
	if p.RecordType != RecordText && p.RecordType != RecordBinary {
		return bad("record_type %d, want 1 (text) or 2 (binary)", p.RecordType)
	}
	if len(p.Description) > MaxDescription || !utf8.ValidString(p.Description) {
		return bad("description must be UTF-8 of at most %d bytes", MaxDescription)
	}
	if len(p.License) > MaxLicense || !utf8.ValidString(p.License) {
		return bad("license must be UTF-8 of at most %d bytes", MaxLicense)
	}
	if len(p.Tags) > MaxTags {
		return bad("%d tags, at most %d", len(p.Tags), MaxTags)
	}
	for i, t := range p.Tags {
		if !validTag(t) {
			return bad("tags[%d] %q: want 1..%d of a-z 0-9 . _ - :", i, t, MaxTag)
		}
		for _, u := range p.Tags[:i] {
			if u == t {
				return bad("tags[%d] %q is listed twice", i, t)
			}
		}
	}
	return nil
}

// CheckDatanetName says why name is not a valid datanet name, or returns nil.
func CheckDatanetName(name string) error {
	if len(name) == 0 || len(name) > MaxDatanetName {
		return fmt.Errorf("name %q has %d bytes, want 1..%d", name, len(name), MaxDatanetName)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case (c == '.' || c == '_' || c == '-') && i > 0:
		default:
			return fmt.Errorf("name %q: byte %d (%q) is not allowed; use a-z 0-9 . _ - (starting with a letter or digit)", name, i, c)
		}
	}
	return nil
}

func validTag(t string) bool {
	if len(t) == 0 || len(t) > MaxTag {
		return false
	}
	for i := 0; i < len(t); i++ {
		c := t[i]
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-' || c == ':') {
			return false
		}
	}
	return true
}

func decodeDatanetContribute(b []byte) (Payload, error) {
	r := &reader{b: b, kind: "datanet_contribute"}
	p := &DatanetContribute{Datanet: r.str8("datanet")}
	n := r.u16("record count")
	if r.err == nil && (n == 0 || n > MaxRecordsPerTxLimit) {
		r.fail("%d records, want 1..%d", n, MaxRecordsPerTxLimit)
	}
	for i := 0; i < n && r.err == nil; i++ {
		c := r.take(r.u8("records["+strconv.Itoa(i)+"].cid length"), "records["+strconv.Itoa(i)+"].cid")
		p.Records = append(p.Records, RecordRef{CID: c, Size: r.u64("records[" + strconv.Itoa(i) + "].size")})
	}
	if err := r.end(); err != nil {
		return nil, err
	}
	if err := CheckDatanetName(p.Datanet); err != nil {
		return nil, refuse(CodeMalformed, "datanet_contribute: datanet %v", err)
	}
	cids := make([][]byte, len(p.Records))
	for i, rec := range p.Records {
		if err := CheckRecordCID(rec.CID, rec.Size); err != nil {
			return nil, refuse(CodeMalformed, "datanet_contribute: records[%d]: %v", i, err)
		}
		cids[i] = rec.CID
	}
	if i, j := repeated(cids); i >= 0 {
		return nil, refuse(CodeMalformed, "datanet_contribute: records[%d] repeats records[%d] (%s)", i, j, cidString(cids[i]))
	}
	return p, nil
}

func decodeCIDList(kind string, b []byte) (string, [][]byte, error) {
	r := &reader{b: b, kind: kind}
	name := r.str8("datanet")
	n := r.u16("record count")
	if r.err == nil && (n == 0 || n > MaxRecordsPerTxLimit) {
		r.fail("%d records, want 1..%d", n, MaxRecordsPerTxLimit)
	}
	var cids [][]byte
	for i := 0; i < n && r.err == nil; i++ {
		cids = append(cids, r.take(r.u8("records["+strconv.Itoa(i)+"] length"), "records["+strconv.Itoa(i)+"]"))
	}
	if err := r.end(); err != nil {
		return "", nil, err
	}
	if err := CheckDatanetName(name); err != nil {
		return "", nil, refuse(CodeMalformed, "%s: datanet %v", kind, err)
	}
	for i, c := range cids {
		if _, err := parseRecordCID(c); err != nil {
			return "", nil, refuse(CodeMalformed, "%s: records[%d]: %v", kind, i, err)
		}
	}
	if i, j := repeated(cids); i >= 0 {
		return "", nil, refuse(CodeMalformed, "%s: records[%d] repeats records[%d] (%s)", kind, i, j, cidString(cids[i]))
	}
	return name, cids, nil
}

func decodeDatanetApprove(b []byte) (Payload, error) {
	name, cids, err := decodeCIDList("datanet_approve", b)
	if err != nil {
		return nil, err
	}
	return &DatanetApprove{Datanet: name, CIDs: cids}, nil
}

func decodeDatanetReject(b []byte) (Payload, error) {
	name, cids, err := decodeCIDList("datanet_reject", b)
	if err != nil {
		return nil, err
	}
	return &DatanetReject{Datanet: name, CIDs: cids}, nil
}

// repeated returns the indexes of the first element equal to an earlier one, or -1, -1.
func repeated(cids [][]byte) (int, int) {
	seen := make(map[string]int, len(cids))
	for i, c := range cids {
		if j, ok := seen[string(c)]; ok {
			return i, j
		}
		seen[string(c)] = i
	}
	return -1, -1
}

// parseRecordCID accepts exactly the canonical binary form of a CIDv1 over a SHA-256 digest with the raw or
// the manifest codec.
func parseRecordCID(b []byte) (cid.Cid, error) {
	if len(b) == 0 || len(b) > MaxCIDBytes {
		return cid.Undef, fmt.Errorf("CID of %d bytes, want 1..%d", len(b), MaxCIDBytes)
	}
	c, err := cid.Cast(b)
	if err != nil {
		return cid.Undef, fmt.Errorf("not a CID: %v", err)
	}
	if !bytes.Equal(c.Bytes(), b) {
		return cid.Undef, errors.New("CID is not in canonical form")
	}
	if c.Version() != 1 {
		return cid.Undef, fmt.Errorf("CID %s is version %d, want 1", c, c.Version())
	}
	if codec := c.Type(); codec != cid.Raw && codec != CodecManifest {
		return cid.Undef, fmt.Errorf("CID %s has codec 0x%x, want raw (0x55) or manifest (0x50)", c, codec)
	}
	d, err := mh.Decode(c.Hash())
	if err != nil || d.Code != mh.SHA2_256 || d.Length != sha256.Size {
		return cid.Undef, fmt.Errorf("CID %s is not over a SHA-256 digest", c)
	}
	return c, nil
}

// CheckRecordCID says why a record's CID and size cannot name a record: not a CIDv1 over SHA-256 with the
// raw or manifest codec, an empty record, or a size its codec cannot have (raw blocks hold at most
// RawBlockMax bytes, manifests name bigger blobs).
func CheckRecordCID(b []byte, size uint64) error {
	c, err := parseRecordCID(b)
	if err != nil {
		return err
	}
	switch {
	case size == 0:
		return fmt.Errorf("record %s is empty", c)
	case c.Type() == cid.Raw && size > RawBlockMax:
		return fmt.Errorf("record %s: a raw CID names at most %d bytes, the record claims %d", c, RawBlockMax, size)
	case c.Type() == CodecManifest && size <= RawBlockMax:
		return fmt.Errorf("record %s: a manifest CID names more than %d bytes, the record claims %d", c, RawBlockMax, size)
	}
	return nil
}

// cidString shows a binary CID the way people see it (base32 "bafk..."), or as hex when it does not parse.
func cidString(b []byte) string {
	c, err := cid.Cast(b)
	if err != nil {
		return fmt.Sprintf("%x", b)
	}
	return c.String()
}

// Record statuses.
type RecordStatus uint8

// The statuses a record goes through: pending until the owner approves or rejects it.
const (
	RecordPending  RecordStatus = 1
	RecordApproved RecordStatus = 2
	RecordRejected RecordStatus = 3
)

func (s RecordStatus) String() string {
	switch s {
	case RecordPending:
		return "pending"
	case RecordApproved:
		return "approved"
	case RecordRejected:
		return "rejected"
	}
	return "status(" + strconv.Itoa(int(s)) + ")"
}

// MarshalText writes the status's name.
func (s RecordStatus) MarshalText() ([]byte, error) { return []byte(s.String()), nil }

// UnmarshalText reads a status's name.
func (s *RecordStatus) UnmarshalText(b []byte) error {
	v, err := ParseRecordStatus(string(b))
	*s = v
	return err
}

// ParseRecordStatus reads "pending", "approved" or "rejected".
func ParseRecordStatus(name string) (RecordStatus, error) {
	for _, v := range []RecordStatus{RecordPending, RecordApproved, RecordRejected} {
		if v.String() == name {
			return v, nil
		}
	}
	return 0, fmt.Errorf("%q, want pending, approved or rejected", name)
}

// Datanet is a datanet's committed state.
type Datanet struct {
	Name        string     `json:"name"`
	Owner       Address    `json:"owner"`
	RecordType  RecordType `json:"record_type"`
	Description string     `json:"description"`
	License     string     `json:"license"`
	Tags        []string   `json:"tags"`
	Created     uint64     `json:"created_height"`
	Versions    uint32     `json:"versions"`    // the latest version (0 before the first approval)
	Approved    uint32     `json:"approved"`    // records in the latest version
	Contributed uint64     `json:"contributed"` // records ever contributed (distinct content)
	Pending     uint32     `json:"pending"`
	Rejected    uint32     `json:"rejected"`

	root []byte // SHA-256 state over the latest version's list (see versionListHeader)
}

// Record is one record of a datanet.
type Record struct {
	CID         string       `json:"cid"`
	Size        uint64       `json:"size"`
	Contributor Address      `json:"contributor"`
	Status      RecordStatus `json:"status"`
	Height      uint64       `json:"height"`            // where it was contributed
	Seq         uint64       `json:"seq"`               // its place among the datanet's contributions, from 0
	Version     uint32       `json:"version,omitempty"` // the version that approved it
	Position    uint32       `json:"position"`          // its place in the approved list, from 0 (approved only)

	cid []byte
}

// Version is one version of a datanet: the first Records approved records, in approval order.
type Version struct {
	Version uint32 `json:"version"`
	Root    string `json:"root"`    // CIDv1 (raw, SHA-256) of the version's record list
	Records uint32 `json:"records"` // records in the version
	Added   uint32 `json:"added"`   // records this version added
	Height  uint64 `json:"height"`  // where it was approved
}

// versionListHeader starts the byte string a version's root names. After it, one line per record in
// approval order: "<cid> <size> <contributor>\n" (CID in base32, size in decimal, contributor as a peer ID).
// VersionList reproduces it, so anyone can check a version's record list against its root.
const versionListHeader = "shoulders-datanet-records/1\n"

// VersionLine is one record's line in a version's list.
func VersionLine(r Record) string {
	return r.CID + " " + strconv.FormatUint(r.Size, 10) + " " + r.Contributor.String() + "\n"
}

// VersionRoot computes the root of a record list (records in approval order), as the ledger does.
func VersionRoot(records []Record) string {
	h := sha256.New()
	h.Write([]byte(versionListHeader))
	for _, r := range records {
		h.Write([]byte(VersionLine(r)))
	}
	return rawCID(h.Sum(nil)).String()
}

func rawCID(sum []byte) cid.Cid {
	m, err := mh.Encode(sum, mh.SHA2_256)
	if err != nil {
		panic(err) // a 32-byte digest always encodes
	}
	return cid.NewCidV1(cid.Raw, m)
}

// Key layout of datanet state (inside the application keyspace; n is the datanet name with a length byte):
//
//	D<name>          datanet
//	R<n><cid>        record
//	Q<n><seq 8>      the cid of the seq'th contribution (contribution order)
//	O<n><pos 4>      the cid of the pos'th approved record (approval order)
//	V<n><version 4>  version
const (
	prefixDatanet      = 'D'
	prefixRecord       = 'R'
	prefixContribution = 'Q'
	prefixApproved     = 'O'
	prefixVersion      = 'V'
)

func datanetKey(name string) []byte { return append([]byte{prefixDatanet}, name...) }

func scoped(prefix byte, name string) []byte {
	k := make([]byte, 0, 2+len(name)+MaxCIDBytes)
	k = append(k, prefix, byte(len(name)))
	return append(k, name...)
}

func recordKey(name string, c []byte) []byte { return append(scoped(prefixRecord, name), c...) }
func contributionKey(name string, seq uint64) []byte {
	return binary.BigEndian.AppendUint64(scoped(prefixContribution, name), seq)
}
func approvedKey(name string, pos uint32) []byte {
	return binary.BigEndian.AppendUint32(scoped(prefixApproved, name), pos)
}
func versionKey(name string, v uint32) []byte {
	return binary.BigEndian.AppendUint32(scoped(prefixVersion, name), v)
}

func encodeDatanet(d *Datanet) []byte {
	b := make([]byte, 0, 128+len(d.Description)+len(d.License))
	b = append(b, d.Owner[:]...)
	b = append(b, byte(d.RecordType))
	b = binary.BigEndian.AppendUint64(b, d.Created)
	b = binary.BigEndian.AppendUint32(b, d.Versions)
	b = binary.BigEndian.AppendUint32(b, d.Approved)
	b = binary.BigEndian.AppendUint64(b, d.Contributed)
	b = binary.BigEndian.AppendUint32(b, d.Pending)
	b = binary.BigEndian.AppendUint32(b, d.Rejected)
	b = appendStr8(b, string(d.root))
	b = appendStr16(b, d.Description)
	b = appendStr16(b, d.License)
	b = append(b, byte(len(d.Tags)))
	for _, t := range d.Tags {
		b = appendStr8(b, t)
	}
	return b
}

func decodeDatanet(name string, v []byte) (*Datanet, error) {
	r := &reader{b: v, kind: "datanet record"}
	d := &Datanet{Name: name, Tags: []string{}}
	copy(d.Owner[:], r.take(32, "owner"))
	d.RecordType = RecordType(r.u8("record type"))
	d.Created = r.u64("created")
	d.Versions = r.u32("versions")
	d.Approved = r.u32("approved")
	d.Contributed = r.u64("contributed")
	d.Pending = r.u32("pending")
	d.Rejected = r.u32("rejected")
	d.root = []byte(r.str8("root state"))
	d.Description = r.str16("description")
	d.License = r.str16("license")
	n := r.u8("tags")
	for i := 0; i < n && r.err == nil; i++ {
		d.Tags = append(d.Tags, r.str8("tag"))
	}
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("%w: datanet %q: %v", ErrStore, name, err)
	}
	return d, nil
}

func encodeRecord(r *Record) []byte {
	b := make([]byte, 0, 32+8+1+8+8+4+4)
	b = append(b, r.Contributor[:]...)
	b = binary.BigEndian.AppendUint64(b, r.Size)
	b = append(b, byte(r.Status))
	b = binary.BigEndian.AppendUint64(b, r.Height)
	b = binary.BigEndian.AppendUint64(b, r.Seq)
	b = binary.BigEndian.AppendUint32(b, r.Version)
	return binary.BigEndian.AppendUint32(b, r.Position)
}

const recordSize = 32 + 8 + 1 + 8 + 8 + 4 + 4

func decodeRecord(c []byte, v []byte) (*Record, error) {
	if len(v) != recordSize {
		return nil, fmt.Errorf("%w: record %s of %d bytes, want %d", ErrStore, cidString(c), len(v), recordSize)
	}
	r := &Record{CID: cidString(c), cid: bytes.Clone(c)}
	copy(r.Contributor[:], v)
	r.Size = binary.BigEndian.Uint64(v[32:])
	r.Status = RecordStatus(v[40])
	r.Height = binary.BigEndian.Uint64(v[41:])
	r.Seq = binary.BigEndian.Uint64(v[49:])
	r.Version = binary.BigEndian.Uint32(v[57:])
	r.Position = binary.BigEndian.Uint32(v[61:])
	return r, nil
}

func encodeVersion(v *Version, root []byte) []byte {
	b := appendStr8(nil, string(root))
	b = binary.BigEndian.AppendUint32(b, v.Records)
	b = binary.BigEndian.AppendUint32(b, v.Added)
	return binary.BigEndian.AppendUint64(b, v.Height)
}

func decodeVersion(n uint32, b []byte) (*Version, error) {
	r := &reader{b: b, kind: "version record"}
	root := r.take(r.u8("root length"), "root")
	v := &Version{Version: n, Root: cidString(root)}
	v.Records = r.u32("records")
	v.Added = r.u32("added")
	v.Height = r.u64("height")
	if err := r.end(); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrStore, err)
	}
	return v, nil
}

// rootState resumes the SHA-256 state over a datanet's version list (a fresh one, with the header written,
// before the first version).
func rootState(saved []byte) (hash.Hash, error) {
	h := sha256.New()
	if len(saved) == 0 {
		h.Write([]byte(versionListHeader))
		return h, nil
	}
	if err := h.(encoding.BinaryUnmarshaler).UnmarshalBinary(saved); err != nil {
		return nil, fmt.Errorf("%w: version list hash state: %v", ErrStore, err)
	}
	return h, nil
}

// readKV reads a key through the block's overlay: what this block wrote, else the committed value. ok is
// false when the key has no value.
func (x *exec) readKV(key []byte) ([]byte, bool, error) {
	if v, ok := x.kv[string(key)]; ok {
		return v, true, nil
	}
	v, err := x.app.store.AppGet(key)
	switch {
	case errors.Is(err, store.ErrNotFound):
		return nil, false, nil
	case err != nil:
		return nil, false, fmt.Errorf("%w: %q: %w", ErrStore, key, err)
	}
	return v, true, nil
}

// writeKV records a write of the block, to be committed with it (Result.Write) and hashed into the app hash.
func (x *exec) writeKV(key, value []byte) {
	k := string(key)
	if _, ok := x.kv[k]; !ok {
		x.kvOrder = append(x.kvOrder, k)
	}
	x.kv[k] = value
}

func (x *exec) datanet(name string) (*Datanet, error) {
	v, ok, err := x.readKV(datanetKey(name))
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, refuse(CodeNoDatanet, "datanet %q does not exist", name)
	}
	return decodeDatanet(name, v)
}

func (x *exec) record(name string, c []byte) (*Record, error) {
	v, ok, err := x.readKV(recordKey(name, c))
	if err != nil || !ok {
		return nil, err
	}
	return decodeRecord(c, v)
}

// prepareDatanet checks a datanet transaction against the state and returns the writes that apply it, to be
// run only once the sender has paid (so a refused transaction changes nothing).
func (x *exec) prepareDatanet(t *Tx) (func() error, error) {
	p := &x.app.genesis.Params
	switch pl := t.Payload.(type) {
	case *DatanetCreate:
		_, ok, err := x.readKV(datanetKey(pl.Name))
		if err != nil {
			return nil, err
		}
		if ok {
			return nil, refuse(CodeDatanetExists, "datanet %q already exists", pl.Name)
		}
		return func() error {
			tags := pl.Tags
			if tags == nil {
				tags = []string{}
			}
			d := &Datanet{Name: pl.Name, Owner: t.Sender, RecordType: pl.RecordType, Description: pl.Description,
				License: pl.License, Tags: tags, Created: x.height}
			x.writeKV(datanetKey(pl.Name), encodeDatanet(d))
			return nil
		}, nil

	case *DatanetContribute:
		if len(pl.Records) > p.MaxRecordsPerTx {
			return nil, refuse(CodeBadRecord, "%d records, the chain's max_records_per_tx is %d", len(pl.Records), p.MaxRecordsPerTx)
		}
		d, err := x.datanet(pl.Datanet)
		if err != nil {
			return nil, err
		}
		var fresh []RecordRef
		var dup *Record
		for i, r := range pl.Records {
			if r.Size > p.MaxRecordBytes {
				return nil, refuse(CodeBadRecord, "records[%d] %s has %d bytes, the chain's max_record_bytes is %d",
					i, cidString(r.CID), r.Size, p.MaxRecordBytes)
			}
			old, err := x.record(pl.Datanet, r.CID)
			if err != nil {
				return nil, err
			}
			if old != nil {
				if dup == nil {
					dup = old
				}
				continue
			}
			fresh = append(fresh, r)
		}
		if len(fresh) == 0 {
			return nil, refuse(CodeDuplicate, "all %d records are already in datanet %q (%s first, contributed by %s)",
				len(pl.Records), pl.Datanet, dup.CID, dup.Contributor)
		}
		return func() error {
			for _, r := range fresh {
				rec := &Record{Contributor: t.Sender, Size: r.Size, Status: RecordPending, Height: x.height, Seq: d.Contributed}
				x.writeKV(recordKey(d.Name, r.CID), encodeRecord(rec))
				x.writeKV(contributionKey(d.Name, d.Contributed), bytes.Clone(r.CID))
				d.Contributed++
				d.Pending++
			}
			x.writeKV(datanetKey(d.Name), encodeDatanet(d))
			return nil
		}, nil

	case *DatanetApprove, *DatanetReject:
		name, cids, verb := "", [][]byte(nil), "reject"
		switch pl := pl.(type) {
		case *DatanetApprove:
			name, cids, verb = pl.Datanet, pl.CIDs, "approve"
		case *DatanetReject:
			name, cids = pl.Datanet, pl.CIDs
		}
		approve := verb == "approve"
		if len(cids) > p.MaxRecordsPerTx {
			return nil, refuse(CodeBadRecord, "%d records, the chain's max_records_per_tx is %d", len(cids), p.MaxRecordsPerTx)
		}
		d, err := x.datanet(name)
		if err != nil {
			return nil, err
		}
		if d.Owner != t.Sender {
			return nil, refuse(CodeNotOwner, "datanet %q is owned by %s; only its owner can %s records", name, d.Owner, verb)
		}
		recs := make([]*Record, len(cids))
		for i, c := range cids {
			r, err := x.record(name, c)
			if err != nil {
				return nil, err
			}
			switch {
			case r == nil:
				return nil, refuse(CodeBadRecord, "records[%d] %s is not a record of datanet %q", i, cidString(c), name)
			case r.Status == RecordApproved:
				return nil, refuse(CodeBadRecord, "records[%d] %s is already approved (version %d)", i, r.CID, r.Version)
			case r.Status == RecordRejected:
				return nil, refuse(CodeBadRecord, "records[%d] %s was rejected", i, r.CID)
			}
			recs[i] = r
		}
		var h hash.Hash // the version list's SHA-256 state, resumed (approvals only)
		if approve {
			if h, err = rootState(d.root); err != nil {
				return nil, err
			}
		}
		return func() error {
			if !approve {
				for i, r := range recs {
					r.Status = RecordRejected
					x.writeKV(recordKey(name, cids[i]), encodeRecord(r))
				}
				d.Pending -= uint32(len(recs))
				d.Rejected += uint32(len(recs))
				x.writeKV(datanetKey(name), encodeDatanet(d))
				return nil
			}
			d.Versions++
			for i, r := range recs {
				r.Status, r.Version, r.Position = RecordApproved, d.Versions, d.Approved
				x.writeKV(recordKey(name, cids[i]), encodeRecord(r))
				x.writeKV(approvedKey(name, d.Approved), bytes.Clone(cids[i]))
				h.Write([]byte(VersionLine(*r)))
				d.Approved++
			}
			d.Pending -= uint32(len(recs))
			state, err := h.(encoding.BinaryMarshaler).MarshalBinary()
			if err != nil {
				panic(err) // sha256 always marshals
			}
			d.root = state
			root := rawCID(h.Sum(nil)).Bytes()
			v := &Version{Version: d.Versions, Records: d.Approved, Added: uint32(len(recs)), Height: x.height}
			x.writeKV(versionKey(name, d.Versions), encodeVersion(v, root))
			x.writeKV(datanetKey(name), encodeDatanet(d))
			return nil
		}, nil
	}
	return nil, nil
}
