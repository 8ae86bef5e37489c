package node

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/shouldersnet/shoulders/p2p/content"
)

// PutContent is POST /v1/content: it streams r to the node, which stores, pins and provides it, and returns
// the blob's CID and size. Only ctx bounds it: a large upload takes as long as it takes.
func (c *Client) PutContent(ctx context.Context, r io.Reader) (string, int64, error) {
	resp, err := c.request(ctx, http.MethodPost, "/v1/content", nil, r, "application/octet-stream")
	if err != nil {
		return "", 0, err
	}
	defer resp.Body.Close()
	var v ContentRef
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return "", 0, fmt.Errorf("reading the node's answer: %w", err)
	}
	return v.CID, v.Size, nil
}

// GetContent is GET /v1/content/{cid}: the blob's bytes and its size. The node fetches it from the network
// first when it is not local, unless localOnly. The caller closes the reader; only ctx bounds the transfer.
func (c *Client) GetContent(ctx context.Context, cid string, localOnly bool) (io.ReadCloser, int64, error) {
	q := url.Values{}
	if localOnly {
		q.Set("local", "1")
	}
	resp, err := c.do(ctx, "/v1/content/"+url.PathEscape(cid), q)
	if err != nil {
		return nil, 0, err
	}
	size, err := strconv.ParseInt(resp.Header.Get("Content-Length"), 10, 64)
	if err != nil {
		size = -1
	}
	return resp.Body, size, nil
}

// FetchContent is POST /v1/content/{cid}/fetch: the node makes the blob local and verified, pins it, and
// answers with its size. Only ctx bounds it.
func (c *Client) FetchContent(ctx context.Context, cid string) (int64, error) {
	resp, err := c.request(ctx, http.MethodPost, "/v1/content/"+url.PathEscape(cid)+"/fetch", nil, nil, "")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var v ContentRef
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return 0, fmt.Errorf("reading the node's answer: %w", err)
	}
	return v.Size, nil
}

// ContentProviders is GET /v1/content/{cid}/providers?limit=N (0: the node's default).
func (c *Client) ContentProviders(ctx context.Context, cid string, limit int) ([]ContentProvider, error) {
	q := url.Values{}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var v ContentProvidersResponse
	return v.Providers, c.get(ctx, "/v1/content/"+url.PathEscape(cid)+"/providers", q, &v)
}

// ListContent is GET /v1/content.
func (c *Client) ListContent(ctx context.Context) ([]content.Info, error) {
	var v ContentListResponse
	return v.Blobs, c.get(ctx, "/v1/content", nil, &v)
}

// apiError reads a 4xx or 5xx answer into an *APIError.
func apiError(resp *http.Response) error {
	var e ErrorResponse
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if json.Unmarshal(body, &e) != nil || e.Error == "" {
		e.Error = fmt.Sprintf("%s: %s", resp.Status, strings.TrimSpace(string(body)))
	}
	return &APIError{Status: resp.StatusCode, Message: e.Error}
}
