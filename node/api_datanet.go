package node

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"time"
	"unicode/utf8"

	"github.com/ipfs/go-cid"
	"golang.org/x/sync/errgroup"

	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/p2p/announce"
	"github.com/shouldersnet/shoulders/p2p/content"
	pb "github.com/shouldersnet/shoulders/proto"
)

// DatanetsResponse is GET /v1/datanets.
type DatanetsResponse struct {
	Datanets []*state.Datanet `json:"datanets"`
}

// DatanetResponse is GET /v1/datanets/{name}: the datanet and its versions, oldest first.
type DatanetResponse struct {
	Datanet  *state.Datanet  `json:"datanet"`
	Versions []state.Version `json:"versions"`
}

// RecordsResponse is GET /v1/datanets/{name}/records.
type RecordsResponse struct {
	Records []state.Record `json:"records"`
}

// CheckRequest is the body of POST /v1/datanets/{name}/check: the records to make local and verify.
type CheckRequest struct {
	CIDs []string `json:"cids"`
}

// CheckResult is what the node found for one record: OK when its content is now local, hashes to its CID,
// has the size the ledger holds and, in a text datanet, is valid UTF-8; otherwise Reason says what is wrong.
type CheckResult struct {
	CID    string `json:"cid"`
	OK     bool   `json:"ok"`
	Reason string `json:"reason,omitempty"`
}

// CheckResponse is the answer of POST /v1/datanets/{name}/check, one result per CID asked, in order.
type CheckResponse struct {
	Results []CheckResult `json:"results"`
}

const (
	maxCheckCIDs = state.MaxRecordsPerTxLimit
	// checkTimeout bounds how long one record's fetch may take during a check.
	checkTimeout = 2 * time.Minute
	// checkConcurrency is how many records of one check request are fetched at once.
	checkConcurrency = 8
)

func (n *Node) datanetHandlers(mux *http.ServeMux) {
	mux.HandleFunc("GET /v1/datanets", n.withLedger(n.getDatanets))
	mux.HandleFunc("GET /v1/datanets/{name}", n.withLedger(n.getDatanet))
	mux.HandleFunc("GET /v1/datanets/{name}/records", n.withLedger(n.getRecords))
	mux.HandleFunc("GET /v1/datanets/{name}/records/{cid}", n.withLedger(n.getRecord))
	mux.HandleFunc("POST /v1/datanets/{name}/check", n.withLedger(n.mutating(n.postCheck)))
}

// datanetError answers a query error: 404 for what does not exist, 500 for a store failure.
func datanetError(w http.ResponseWriter, err error) {
	status := http.StatusInternalServerError
	if errors.Is(err, state.ErrNotFound) {
		status = http.StatusNotFound
	}
	writeJSON(w, status, ErrorResponse{Error: err.Error()})
}

func queryInt(r *http.Request, name string, def uint64) (uint64, error) {
	s := r.URL.Query().Get(name)
	if s == "" {
		return def, nil
	}
	v, err := strconv.ParseUint(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not a whole number", name, s)
	}
	return v, nil
}

func (n *Node) getDatanets(w http.ResponseWriter, r *http.Request) {
	limit, err := queryInt(r, "limit", 0)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	ds, err := n.ledger.App().Datanets(r.URL.Query().Get("after"), int(min(limit, state.MaxQueryLimit)))
	if err != nil {
		datanetError(w, err)
		return
	}
	if ds == nil {
		ds = []*state.Datanet{}
	}
	writeJSON(w, http.StatusOK, DatanetsResponse{Datanets: ds})
}

func (n *Node) getDatanet(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := state.CheckDatanetName(name); err != nil {
		badRequest(w, "datanet: %v", err)
		return
	}
	d, err := n.ledger.App().Datanet(name)
	if err != nil {
		datanetError(w, err)
		return
	}
	vs, err := n.ledger.App().Versions(name)
	if err != nil {
		datanetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, DatanetResponse{Datanet: d, Versions: vs})
}

func (n *Node) getRecords(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	if err := state.CheckDatanetName(name); err != nil {
		badRequest(w, "datanet: %v", err)
		return
	}
	var q state.RecordQuery
	version, err := queryInt(r, "version", 0)
	if err == nil && version > 1<<32-1 {
		err = fmt.Errorf("version: %d is too large", version)
	}
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	q.Version = uint32(version)
	if q.After, err = queryInt(r, "after", 0); err != nil {
		badRequest(w, "%v", err)
		return
	}
	limit, err := queryInt(r, "limit", 0)
	if err != nil {
		badRequest(w, "%v", err)
		return
	}
	q.Limit = int(min(limit, state.MaxQueryLimit))
	if s := r.URL.Query().Get("status"); s != "" {
		if q.Status, err = state.ParseRecordStatus(s); err != nil {
			badRequest(w, "status: %v", err)
			return
		}
	}
	if q.Status != 0 && q.Version != 0 {
		badRequest(w, "status and version: give one or the other (a version's records are all approved)")
		return
	}
	recs, err := n.ledger.App().Records(name, q)
	if err != nil {
		datanetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, RecordsResponse{Records: recs})
}

func (n *Node) getRecord(w http.ResponseWriter, r *http.Request) {
	c, err := content.ParseCID(r.PathValue("cid"))
	if err != nil {
		badRequest(w, "cid: %v", err)
		return
	}
	rec, err := n.ledger.App().Record(r.PathValue("name"), c)
	if err != nil {
		datanetError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, rec)
}

// postCheck makes each record local (fetching it from the network when needed) and verifies it, which is
// what an owner's node does before its owner signs an approval.
func (n *Node) postCheck(w http.ResponseWriter, r *http.Request) {
	name := r.PathValue("name")
	d, err := n.ledger.App().Datanet(name)
	if err != nil {
		datanetError(w, err)
		return
	}
	var req CheckRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		badRequest(w, "body: want {\"cids\": [...]}: %v", err)
		return
	}
	if len(req.CIDs) == 0 || len(req.CIDs) > maxCheckCIDs {
		badRequest(w, "cids: %d given, want 1..%d", len(req.CIDs), maxCheckCIDs)
		return
	}
	resp := CheckResponse{Results: make([]CheckResult, len(req.CIDs))}
	var g errgroup.Group // owned by this request: Wait returns when every check has ended
	g.SetLimit(checkConcurrency)
	for i, s := range req.CIDs {
		g.Go(func() error {
			resp.Results[i] = n.checkRecord(r.Context(), d, s)
			return nil
		})
	}
	g.Wait()
	writeJSON(w, http.StatusOK, resp)
}

func (n *Node) checkRecord(ctx context.Context, d *state.Datanet, s string) CheckResult {
	res := CheckResult{CID: s}
	c, err := content.ParseCID(s)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	rec, err := n.ledger.App().Record(d.Name, c)
	if err != nil {
		res.Reason = err.Error()
		return res
	}
	ctx, cancel := context.WithTimeout(ctx, checkTimeout)
	defer cancel()
	size, err := n.Content().Fetch(ctx, c, nil)
	if err != nil {
		res.Reason = "could not fetch its content: " + err.Error()
		return res
	}
	if uint64(size) != rec.Size {
		res.Reason = fmt.Sprintf("its content has %d bytes, the contribution claims %d", size, rec.Size)
		return res
	}
	if d.RecordType == state.RecordText {
		if err := n.checkUTF8(c); err != nil {
			res.Reason = err.Error()
			return res
		}
	}
	res.OK = true
	return res
}

// checkUTF8 reads a local blob and says where it stops being UTF-8, if it does.
func (n *Node) checkUTF8(c cid.Cid) error {
	rd, _, err := n.Blobs().NewReader(c)
	if err != nil {
		return err
	}
	defer rd.Close()
	br := bufio.NewReaderSize(rd, 64<<10)
	var off int64
	for {
		r, size, err := br.ReadRune()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
		if r == utf8.RuneError && size == 1 {
			return fmt.Errorf("this is a text datanet and the record is not valid UTF-8 (byte %d)", off)
		}
		off += int64(size)
	}
}

// announceDatanets publishes a datanet version announcement for each datanet this node's key owns whenever
// a new version of it commits, and renews them every announce interval. It runs while the node runs (owned
// by Run's errgroup) and returns when ctx ends.
func (n *Node) announceDatanets(ctx context.Context) error {
	announced := map[string]uint32{} // datanet -> version last published
	t := time.NewTicker(n.cfg.AnnounceInterval)
	defer t.Stop()
	heights := n.ledger.Driver().Heights()
	renew := true
	for {
		if err := n.publishDatanets(ctx, announced, renew); err != nil && ctx.Err() == nil {
			n.log.Warn("announcing datanets", "err", err)
		}
		renew = false
		select {
		case <-ctx.Done():
			return nil
		case <-heights:
			heights = n.ledger.Driver().Heights()
		case <-t.C:
			renew = true
		}
	}
}

func (n *Node) publishDatanets(ctx context.Context, announced map[string]uint32, renew bool) error {
	self, err := state.AddressOf(n.ID())
	if err != nil {
		return err
	}
	after := ""
	for {
		ds, err := n.ledger.App().Datanets(after, 1000)
		if err != nil || len(ds) == 0 {
			return err
		}
		for _, d := range ds {
			if d.Owner != self || d.Versions == 0 || (!renew && announced[d.Name] == d.Versions) {
				continue
			}
			if err := n.publishDatanet(ctx, d); err != nil {
				return err
			}
			announced[d.Name] = d.Versions
		}
		after = ds[len(ds)-1].Name
	}
}

// publishDatanet announces d's latest version. The providers are this node: it fetched and verified every
// record before its owner approved it.
func (n *Node) publishDatanet(ctx context.Context, d *state.Datanet) error {
	v, err := n.ledger.App().DatanetVersion(d.Name, d.Versions)
	if err != nil {
		return err
	}
	var total uint64
	var after uint64
	for {
		recs, err := n.ledger.App().Records(d.Name, state.RecordQuery{Version: v.Version, After: after})
		if err != nil {
			return err
		}
		for _, r := range recs {
			total += r.Size
		}
		if len(recs) < state.MaxQueryLimit {
			break
		}
		after += uint64(len(recs))
	}
	body := &pb.DatanetVersion{
		Datanet: d.Name, Version: v.Version, Root: v.Root, RecordCount: v.Records, Bytes: total,
		RecordType: d.RecordType.String(), License: d.License, Tags: d.Tags, Providers: []string{n.ID().String()},
		Height: v.Height,
	}
	ttl := min(3*n.cfg.AnnounceInterval, announce.MaxTTL)
	_, err = n.net.Publish(ctx, pb.Kind_KIND_DATANET_VERSION, body, ttl)
	return err
}
