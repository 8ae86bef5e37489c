package node

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/ipfs/go-cid"

	"github.com/shouldersnet/shoulders/p2p/content"
)

// ContentRef is the answer of POST /v1/content and POST /v1/content/{cid}/fetch: a local, verified blob.
type ContentRef struct {
	CID  string `json:"cid"`
	Size int64  `json:"size"`
}

// ContentProvider is one provider of a blob, as GET /v1/content/{cid}/providers lists it.
type ContentProvider struct {
	PeerID string   `json:"peer_id"`
	Addrs  []string `json:"addrs"`
}

// ContentProvidersResponse is GET /v1/content/{cid}/providers.
type ContentProvidersResponse struct {
	Providers []ContentProvider `json:"providers"`
}

// ContentListResponse is GET /v1/content.
type ContentListResponse struct {
	Blobs []content.Info `json:"blobs"`
}

// Provider lookups: how many a request may ask for, and how many by default.
const (
	defaultProviders = 20
	maxProviders     = 100
)

func (n *Node) contentHandlers(mux *http.ServeMux) {
	mux.HandleFunc("POST /v1/content", n.mutating(n.postContent))
	mux.HandleFunc("GET /v1/content", n.listContent)
	mux.HandleFunc("GET /v1/content/{cid}", n.getContent)
	mux.HandleFunc("POST /v1/content/{cid}/fetch", n.mutating(n.fetchContent))
	mux.HandleFunc("GET /v1/content/{cid}/providers", n.getProviders)
}

// pathCID parses the {cid} path parameter, answering 400 naming it when it is not a blob's CID.
func pathCID(w http.ResponseWriter, r *http.Request) (cid.Cid, bool) {
	c, err := content.ParseCID(r.PathValue("cid"))
	if err != nil {
		badRequest(w, "cid: %v", err)
		return cid.Undef, false
	}
	return c, true
}

// postContent stores the request body as a blob, streaming it, and pins and provides it.
func (n *Node) postContent(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, content.MaxBlobSize)
	c, size, err := n.content.Add(r.Body)
	if err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) || errors.Is(err, content.ErrTooLarge) {
			writeJSON(w, http.StatusRequestEntityTooLarge, ErrorResponse{Error: err.Error()})
			return
		}
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	writeJSON(w, http.StatusOK, ContentRef{CID: c.String(), Size: size})
}

func (n *Node) listContent(w http.ResponseWriter, _ *http.Request) {
	list, err := n.blobs.List()
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	if list == nil {
		list = []content.Info{}
	}
	writeJSON(w, http.StatusOK, ContentListResponse{Blobs: list})
}

// writeFetchError answers a failed fetch: 404 when no provider has the blob, 504 when the client gave up,
// 502 when providers were found and failed.
func writeFetchError(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, content.ErrNotFound):
		writeJSON(w, http.StatusNotFound, ErrorResponse{Error: err.Error()})
	case r.Context().Err() != nil:
		writeJSON(w, http.StatusGatewayTimeout, ErrorResponse{Error: err.Error()})
	default:
		writeJSON(w, http.StatusBadGateway, ErrorResponse{Error: err.Error()})
	}
}

// getContent streams a blob, fetching it from the network first when it is not local (unless ?local=1).
// Range requests are answered.
func (n *Node) getContent(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	localOnly := false
	if s := r.URL.Query().Get("local"); s != "" {
		b, err := strconv.ParseBool(s)
		if err != nil {
			badRequest(w, "local: %q is not true or false (1 or 0)", s)
			return
		}
		localOnly = b
	}
	has, err := n.blobs.Has(c)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	if !has {
		if localOnly {
			writeJSON(w, http.StatusNotFound, ErrorResponse{Error: fmt.Sprintf("content %s is not on this node (local=1 asks not to fetch it)", c)})
			return
		}
		if _, err := n.content.Fetch(r.Context(), c, nil); err != nil {
			writeFetchError(w, r, err)
			return
		}
	}
	rd, _, err := n.blobs.NewReader(c)
	if err != nil {
		writeJSON(w, http.StatusInternalServerError, ErrorResponse{Error: err.Error()})
		return
	}
	defer rd.Close()
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("ETag", `"`+c.String()+`"`)
	w.Header().Set("Cache-Control", "public, max-age=31536000, immutable")
	http.ServeContent(w, r, "", time.Time{}, rd)
}

// fetchContent makes a blob local and verified, and pins it.
func (n *Node) fetchContent(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	size, err := n.content.Fetch(r.Context(), c, nil)
	if err != nil {
		writeFetchError(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, ContentRef{CID: c.String(), Size: size})
}

func (n *Node) getProviders(w http.ResponseWriter, r *http.Request) {
	c, ok := pathCID(w, r)
	if !ok {
		return
	}
	limit := defaultProviders
	if s := r.URL.Query().Get("limit"); s != "" {
		l, err := strconv.Atoi(s)
		if err != nil || l < 1 || l > maxProviders {
			badRequest(w, "limit: %q is not a number from 1 to %d", s, maxProviders)
			return
		}
		limit = l
	}
	provs, err := n.content.Providers(r.Context(), c, limit)
	if err != nil {
		writeJSON(w, http.StatusBadGateway, ErrorResponse{Error: err.Error()})
		return
	}
	resp := ContentProvidersResponse{Providers: make([]ContentProvider, 0, len(provs))}
	for _, p := range provs {
		cp := ContentProvider{PeerID: p.ID.String(), Addrs: make([]string, 0, len(p.Addrs))}
		for _, a := range p.Addrs {
			cp.Addrs = append(cp.Addrs, a.String())
		}
		resp.Providers = append(resp.Providers, cp)
	}
	writeJSON(w, http.StatusOK, resp)
}
