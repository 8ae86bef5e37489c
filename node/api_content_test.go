package node

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"io"
	"math/rand/v2"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shouldersnet/shoulders/p2p/content"
	pb "github.com/shouldersnet/shoulders/proto"
)

// Two nodes, B bootstrapping from A: a blob put on A through the API is fetched by B through the DHT,
// streamed, listed and its providers shown; bad CIDs and missing blobs are answered plainly.
func TestContentAPI(t *testing.T) {
	dir := t.TempDir()
	a := start(t, initHome(t, filepath.Join(dir, "a"), nil, "1s"), Options{})
	b := start(t, initHome(t, filepath.Join(dir, "b"), a.Addrs()[:1], "1s"), Options{})
	nodes := []*running{a, b}
	waitUntil(t, 60*time.Second, nodes, hostsOf(nodes), "the two nodes hear each other and have each other in their DHTs", func() bool {
		for _, n := range nodes {
			if len(n.Catalog().List(pb.Kind_KIND_WORKER_OFFER)) != 2 || n.Network().DHT().RoutingTable().Size() == 0 {
				return false
			}
		}
		return true
	})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	ca, _ := NewClient(a.APIURL())
	cb, _ := NewClient(b.APIURL())

	data := make([]byte, 3*content.ChunkSize+77)
	r := rand.New(rand.NewPCG(1, 2))
	for i := range data {
		data[i] = byte(r.Uint32())
	}
	id, size, err := ca.PutContent(ctx, bytes.NewReader(data))
	if err != nil || size != int64(len(data)) {
		t.Fatalf("PutContent: %s %d %v", id, size, err)
	}
	c, err := content.ParseCID(id)
	if err != nil || !content.IsManifest(c) {
		t.Fatalf("PutContent gave %q: %v", id, err)
	}
	// The node provides what it is given on its own; providing here too makes the test independent of when.
	if err := a.Content().Provide(ctx, c); err != nil {
		t.Fatal(err)
	}

	get := func(cl *Client, local bool) ([]byte, error) {
		rd, n, err := cl.GetContent(ctx, id, local)
		if err != nil {
			return nil, err
		}
		defer rd.Close()
		b, err := io.ReadAll(rd)
		if err == nil && n != int64(len(b)) {
			t.Errorf("Content-Length %d, body %d bytes", n, len(b))
		}
		return b, err
	}
	if got, err := get(ca, true); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GET on A: %d bytes, %v", len(got), err)
	}
	var apiErr *APIError
	if _, err := get(cb, true); !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound || !strings.Contains(apiErr.Message, id) {
		t.Fatalf("GET ?local=1 on B before fetching: %v", err)
	}
	if got, err := get(cb, false); err != nil || sha256.Sum256(got) != sha256.Sum256(data) {
		t.Fatalf("GET on B (fetching from A): %d bytes, %v", len(got), err)
	}
	if size, err := cb.FetchContent(ctx, id); err != nil || size != int64(len(data)) {
		t.Fatalf("FetchContent of a local blob: %d %v", size, err)
	}
	list, err := cb.ListContent(ctx)
	if err != nil || len(list) != 1 || list[0].CID != id || !list[0].Pinned || !list[0].Complete || list[0].Size != int64(len(data)) {
		t.Fatalf("ListContent on B: %+v, %v", list, err)
	}
	provs, err := cb.ContentProviders(ctx, id, 0)
	found := false
	for _, p := range provs {
		found = found || (p.PeerID == a.ID().String() && len(p.Addrs) > 0)
	}
	if err != nil || !found {
		t.Fatalf("providers seen from B: %+v, %v", provs, err)
	}

	// A range of the blob, across a chunk boundary.
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, b.APIURL()+"/v1/content/"+id+"?local=1", nil)
	req.Header.Set("Range", "bytes=1048570-1048585")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	part, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != http.StatusPartialContent || !bytes.Equal(part, data[1048570:1048586]) {
		t.Fatalf("range request: %d, %d bytes", resp.StatusCode, len(part))
	}

	if content.Sum(data) != c {
		t.Fatalf("content.Sum gives %s, the node %s", content.Sum(data), c)
	}
	missing := content.Sum([]byte("nobody has this")).String()
	for _, tc := range []struct {
		call   func() error
		status int
		want   string
	}{
		{func() error { _, err := get(cb, false); return err }, 0, ""},
		{func() error { _, err := cb.FetchContent(ctx, "nonsense"); return err }, 400, `cid: content: bad CID: "nonsense"`},
		{func() error {
			_, _, err := cb.GetContent(ctx, "QmYwAPJzv5CZsnA625s3Xf2nemtYgPpHdWEz79ojWnPbdG", false)
			return err
		}, 400, "cid: content: bad CID: version 0, want CIDv1"},
		{func() error { _, err := cb.ContentProviders(ctx, id, 1000); return err }, 400, `limit: "1000"`},
		{func() error { _, _, err := cb.GetContent(ctx, missing, false); return err }, 404, "no provider of " + missing + " found"},
		{func() error { _, err := cb.FetchContent(ctx, missing); return err }, 404, missing},
	} {
		err := tc.call()
		if tc.status == 0 {
			if err != nil {
				t.Errorf("got %v", err)
			}
			continue
		}
		if !errors.As(err, &apiErr) || apiErr.Status != tc.status || !strings.Contains(apiErr.Message, tc.want) {
			t.Errorf("got %v, want a %d saying %q", err, tc.status, tc.want)
		}
	}
}
