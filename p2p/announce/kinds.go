package announce

import (
	"fmt"
	"slices"
	"strings"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"google.golang.org/protobuf/proto"

	pb "github.com/shouldersnet/shoulders/proto"
)

// spec is what the announcement layer knows about one kind: its name (in the catalog and the API), its topic's
// short name, how to make an empty body, the checks every body must pass, and what subject it is about.
type spec struct {
	name    string
	topic   string
	maxSize int // bytes of the signed announcement
	new     func() proto.Message
	check   func(proto.Message) error
	subject func(announcer peer.ID, body proto.Message) string
	view    func(body proto.Message) any
}

// kinds is the registry of kinds this software understands. Later kinds (datanet versions, model
// registrations) add an entry here.
var kinds = map[pb.Kind]spec{
	pb.Kind_KIND_WORKER_OFFER: {
		name:    "worker",
		topic:   "workers",
		maxSize: 8 << 10,
		new:     func() proto.Message { return new(pb.WorkerOffer) },
		check:   func(m proto.Message) error { return checkWorkerOffer(m.(*pb.WorkerOffer)) },
		subject: func(announcer peer.ID, _ proto.Message) string { return announcer.String() },
		view:    func(m proto.Message) any { return viewWorkerOffer(m.(*pb.WorkerOffer)) },
	},
	// A datanet version's subject is "<owner>/<datanet>": only the owner announces its datanets (the
	// announcer is part of the subject), so nobody else can replace the owner's announcement; a later
	// version replaces an earlier one by seq.
	pb.Kind_KIND_DATANET_VERSION: {
		name:    "datanet",
		topic:   "datanets",
		maxSize: 8 << 10,
		new:     func() proto.Message { return new(pb.DatanetVersion) },
		check:   func(m proto.Message) error { return checkDatanetVersion(m.(*pb.DatanetVersion)) },
		subject: func(announcer peer.ID, m proto.Message) string {
			return announcer.String() + "/" + m.(*pb.DatanetVersion).Datanet
		},
		view: func(m proto.Message) any { return viewDatanetVersion(m.(*pb.DatanetVersion)) },
	},
}

// Kinds lists the kinds this software understands, in protocol number order.
func Kinds() []pb.Kind {
	out := make([]pb.Kind, 0, len(kinds))
	for k := range kinds {
		out = append(out, k)
	}
	slices.Sort(out)
	return out
}

// KindName is the short name of a kind ("worker"), used in topic names, the catalog and the API.
func KindName(k pb.Kind) string {
	if s, ok := kinds[k]; ok {
		return s.name
	}
	return fmt.Sprintf("kind(%d)", int32(k))
}

// TopicOf is the short name of the gossip topic that carries a kind ("workers"); the full topic name is
// /shoulders/<network>/<short name>/1.
func TopicOf(k pb.Kind) string {
	if s, ok := kinds[k]; ok {
		return s.topic
	}
	return KindName(k)
}

// KindByName is the inverse of KindName.
func KindByName(name string) (pb.Kind, bool) {
	for k, s := range kinds {
		if s.name == name {
			return k, true
		}
	}
	return pb.Kind_KIND_UNSPECIFIED, false
}

// View returns the JSON-friendly form of a verified announcement's body, for the API and CLI.
func View(v *Verified) any { return kinds[v.Kind].view(v.Body) }

// Roles a node can take; every node is a client.
const (
	RoleClient    = "client"
	RoleWorker    = "worker"
	RoleValidator = "validator"
)

// KnownRoles lists the roles in the order they are shown.
var KnownRoles = []string{RoleClient, RoleWorker, RoleValidator}

// Limits on a worker offer's fields.
const (
	// MaxAddrs is how many addresses a worker offer may list.
	MaxAddrs      = 32
	maxGPUs       = 64
	maxExecutors  = 16
	maxShortField = 256
)

func checkWorkerOffer(o *pb.WorkerOffer) error {
	bad := func(format string, args ...any) error {
		return refuse(CodeInvalidBody, "worker offer: "+format, args...)
	}
	if len(o.Addrs) > MaxAddrs {
		return bad("%d addrs, the limit is %d", len(o.Addrs), MaxAddrs)
	}
	for i, s := range o.Addrs {
		if len(s) > maxShortField {
			return bad("addrs[%d] is %d bytes, the limit is %d", i, len(s), maxShortField)
		}
		a, err := ma.NewMultiaddr(s)
		if err != nil {
			return bad("addrs[%d] %q is not a multiaddr: %v", i, s, err)
		}
		if _, err := a.ValueForProtocol(ma.P_P2P); err == nil {
			return bad("addrs[%d] %q must not name a peer (/p2p/...)", i, s)
		}
	}
	if len(o.Roles) == 0 {
		return bad("roles is empty")
	}
	seen := map[string]bool{}
	for i, r := range o.Roles {
		if !slices.Contains(KnownRoles, r) {
			return bad("roles[%d] %q is not one of %s", i, truncate(r), strings.Join(KnownRoles, ", "))
		}
		if seen[r] {
			return bad("roles[%d] %q is listed twice", i, r)
		}
		seen[r] = true
	}
	if o.CpuCores == 0 {
		return bad("cpu_cores is 0")
	}
	if len(o.Gpus) > maxGPUs {
		return bad("%d gpus, the limit is %d", len(o.Gpus), maxGPUs)
	}
	gpuIndex := map[uint32]bool{}
	for i, g := range o.Gpus {
		if gpuIndex[g.Index] {
			return bad("gpus[%d] repeats index %d", i, g.Index)
		}
		gpuIndex[g.Index] = true
		if g.Name == "" || len(g.Name) > maxShortField || len(g.Uuid) > maxShortField || len(g.DriverVersion) > maxShortField {
			return bad("gpus[%d] needs a name, and name, uuid and driver_version of at most %d bytes", i, maxShortField)
		}
	}
	if len(o.Executors) > maxExecutors {
		return bad("%d executors, the limit is %d", len(o.Executors), maxExecutors)
	}
	for i, e := range o.Executors {
		if !validToken(e) {
			return bad("executors[%d] %q must be 1-64 characters of a-z 0-9 : / . _ -", i, truncate(e))
		}
	}
	if o.Version == "" || len(o.Version) > 64 {
		return bad("version must be 1-64 bytes")
	}
	return nil
}

// Limits on a datanet version's fields.
const (
	MaxProviders = 16
	maxTags      = 8
)

func checkDatanetVersion(d *pb.DatanetVersion) error {
	bad := func(format string, args ...any) error {
		return refuse(CodeInvalidBody, "datanet version: "+format, args...)
	}
	if !validToken(d.Datanet) || strings.Contains(d.Datanet, "/") || strings.Contains(d.Datanet, ":") {
		return bad("datanet %q must be 1-64 characters of a-z 0-9 . _ -", truncate(d.Datanet))
	}
	if d.Version == 0 {
		return bad("version is 0, versions count from 1")
	}
	c, err := cid.Decode(d.Root)
	if err != nil || c.Version() != 1 {
		return bad("root %q is not a CIDv1", truncate(d.Root))
	}
	if d.RecordCount == 0 {
		return bad("record_count is 0")
	}
	if d.RecordType != "text" && d.RecordType != "binary" {
		return bad("record_type %q, want text or binary", truncate(d.RecordType))
	}
	if len(d.License) > maxShortField {
		return bad("license of %d bytes, the limit is %d", len(d.License), maxShortField)
	}
	if len(d.Tags) > maxTags {
		return bad("%d tags, the limit is %d", len(d.Tags), maxTags)
	}
	for i, t := range d.Tags {
		if !validToken(t) {
			return bad("tags[%d] %q must be 1-64 characters of a-z 0-9 : / . _ -", i, truncate(t))
		}
	}
	if len(d.Providers) > MaxProviders {
		return bad("%d providers, the limit is %d", len(d.Providers), MaxProviders)
	}
	for i, p := range d.Providers {
		if _, err := peer.Decode(p); err != nil {
			return bad("providers[%d] %q is not a peer ID", i, truncate(p))
		}
	}
	return nil
}

// DatanetVersionView is the API's JSON form of a datanet version announcement.
type DatanetVersionView struct {
	Datanet     string   `json:"datanet"`
	Version     uint32   `json:"version"`
	Root        string   `json:"root"`
	RecordCount uint32   `json:"record_count"`
	Bytes       uint64   `json:"bytes"`
	RecordType  string   `json:"record_type"`
	License     string   `json:"license"`
	Tags        []string `json:"tags"`
	Providers   []string `json:"providers"`
	Height      uint64   `json:"height"`
}

func viewDatanetVersion(d *pb.DatanetVersion) DatanetVersionView {
	return DatanetVersionView{
		Datanet: d.Datanet, Version: d.Version, Root: d.Root, RecordCount: d.RecordCount, Bytes: d.Bytes,
		RecordType: d.RecordType, License: d.License, Tags: nonNil(d.Tags), Providers: nonNil(d.Providers), Height: d.Height,
	}
}

func validToken(s string) bool {
	if s == "" || len(s) > 64 {
		return false
	}
	for _, c := range []byte(s) {
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9', strings.IndexByte(":/._-", c) >= 0:
		default:
			return false
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "..."
	}
	return s
}

// WorkerOfferView is the API's JSON form of a worker offer.
type WorkerOfferView struct {
	Addrs       []string  `json:"addrs"`
	Roles       []string  `json:"roles"`
	CPUCores    uint32    `json:"cpu_cores"`
	MemoryBytes uint64    `json:"memory_bytes"`
	GPUs        []GPUView `json:"gpus"`
	Executors   []string  `json:"executors"`
	Version     string    `json:"version"`
}

// GPUView is the API's JSON form of one GPU in an offer.
type GPUView struct {
	Index         uint32 `json:"index"`
	UUID          string `json:"uuid"`
	Name          string `json:"name"`
	MemoryMiB     uint64 `json:"memory_mib"`
	DriverVersion string `json:"driver_version"`
}

func viewWorkerOffer(o *pb.WorkerOffer) WorkerOfferView {
	v := WorkerOfferView{
		Addrs:       nonNil(o.Addrs),
		Roles:       nonNil(o.Roles),
		CPUCores:    o.CpuCores,
		MemoryBytes: o.MemoryBytes,
		GPUs:        []GPUView{},
		Executors:   nonNil(o.Executors),
		Version:     o.Version,
	}
	for _, g := range o.Gpus {
		v.GPUs = append(v.GPUs, GPUView{Index: g.Index, UUID: g.Uuid, Name: g.Name, MemoryMiB: g.MemoryMib, DriverVersion: g.DriverVersion})
	}
	return v
}

func nonNil(s []string) []string {
	if s == nil {
		return []string{}
	}
	return s
}
