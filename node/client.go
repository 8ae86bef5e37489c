package node

import (
	"bufio"
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/shouldersnet/shoulders/ledger"
	"github.com/shouldersnet/shoulders/ledger/mempool"
	"github.com/shouldersnet/shoulders/p2p"
)

// Client talks to a node's HTTP API. The CLI verbs are thin wrappers around it.
type Client struct {
	base  *url.URL
	http  *http.Client
	token string
}

// NewClient returns a client for the API at apiURL ("http://127.0.0.1:7400" or "127.0.0.1:7400").
func NewClient(apiURL string) (*Client, error) {
	if !strings.Contains(apiURL, "://") {
		apiURL = "http://" + apiURL
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") {
		return nil, fmt.Errorf("api URL %q: want http://HOST:PORT", apiURL)
	}
	return &Client{base: u, http: &http.Client{}}, nil
}

// requestTimeout bounds one request (a DHT lookup is the slowest, at most 30 s on the node's side).
const requestTimeout = 60 * time.Second

// ErrUnreachable wraps every failure to reach the node at all, as opposed to the node refusing a request.
var ErrUnreachable = errors.New("cannot reach the node")

// APIError is a 4xx or 5xx answer from the node.
type APIError struct {
	Status  int
	Message string
}

func (e *APIError) Error() string { return e.Message }

func (c *Client) do(ctx context.Context, path string, query url.Values) (*http.Response, error) {
	return c.send(ctx, http.MethodGet, path, query, nil)
}

func (c *Client) send(ctx context.Context, method, path string, query url.Values, body []byte) (*http.Response, error) {
	if body == nil {
		return c.request(ctx, method, path, query, nil, "")
	}
	return c.request(ctx, method, path, query, bytes.NewReader(body), "application/json")
}

// request sends one request with an optional body of the given content type; a 4xx or 5xx answer is an
// *APIError carrying the node's message, a failure to reach the node wraps ErrUnreachable.
func (c *Client) request(ctx context.Context, method, path string, query url.Values, body io.Reader, contentType string) (*http.Response, error) {
	u := *c.base
	u.Path = strings.TrimSuffix(u.Path, "/") + path
	u.RawQuery = query.Encode()
	req, err := http.NewRequestWithContext(ctx, method, u.String(), body)
	if err != nil {
		return nil, err
	}
	if body != nil {
		req.Header.Set("Content-Type", contentType)
	}
	if c.token != "" {
		req.Header.Set("Authorization", "Bearer "+c.token)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w API at %s (is `shoulders node` running there?): %s", ErrUnreachable, c.base, shortNetError(err))
	}
	if resp.StatusCode >= 400 {
		defer resp.Body.Close()
		return nil, apiError(resp)
	}
	return resp, nil
}

// shortNetError reduces a transport error to its cause ("connection refused").
func shortNetError(err error) string {
	var op *net.OpError
	if errors.As(err, &op) && op.Err != nil {
		return op.Err.Error()
	}
	return err.Error()
}

// get fetches path and decodes the JSON answer into out.
func (c *Client) get(ctx context.Context, path string, query url.Values, out any) error {
	return c.getWithin(ctx, requestTimeout, path, query, out)
}

// getWithin is get with its own bound, for a request that waits on the node's side.
func (c *Client) getWithin(ctx context.Context, timeout time.Duration, path string, query url.Values, out any) error {
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.do(ctx, path, query)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		return fmt.Errorf("reading %s from the node: %w", path, err)
	}
	return nil
}

// Node is GET /v1/node.
func (c *Client) Node(ctx context.Context) (Info, error) {
	var v Info
	return v, c.get(ctx, "/v1/node", nil, &v)
}

// Peers is GET /v1/peers.
func (c *Client) Peers(ctx context.Context) ([]p2p.ConnectedPeer, error) {
	var v PeersResponse
	return v.Peers, c.get(ctx, "/v1/peers", nil, &v)
}

// Catalog is GET /v1/catalog?kind=KIND (every kind when kind is empty).
func (c *Client) Catalog(ctx context.Context, kind string) ([]CatalogEntry, error) {
	q := url.Values{}
	if kind != "" {
		q.Set("kind", kind)
	}
	var v CatalogResponse
	return v.Entries, c.get(ctx, "/v1/catalog", q, &v)
}

// Conns is GET /debug/p2p/peers.
func (c *Client) Conns(ctx context.Context) ([]p2p.Conn, error) {
	var v ConnsResponse
	return v.Conns, c.get(ctx, "/debug/p2p/peers", nil, &v)
}

// RoutingTable is GET /debug/dht/routing-table.
func (c *Client) RoutingTable(ctx context.Context) (p2p.RoutingTable, error) {
	var v p2p.RoutingTable
	return v, c.get(ctx, "/debug/dht/routing-table", nil, &v)
}

// Lookup is GET /debug/dht/lookup?key=KEY.
func (c *Client) Lookup(ctx context.Context, key string) (p2p.Lookup, error) {
	var v p2p.Lookup
	return v, c.get(ctx, "/debug/dht/lookup", url.Values{"key": {key}}, &v)
}

// Topics is GET /debug/pubsub/topics.
func (c *Client) Topics(ctx context.Context) ([]p2p.Topic, error) {
	var v TopicsResponse
	return v.Topics, c.get(ctx, "/debug/pubsub/topics", nil, &v)
}

// Scores is GET /debug/pubsub/scores.
func (c *Client) Scores(ctx context.Context) (p2p.Scores, error) {
	var v p2p.Scores
	return v, c.get(ctx, "/debug/pubsub/scores", nil, &v)
}

// Message is GET /debug/pubsub/messages/{id}.
func (c *Client) Message(ctx context.Context, id string) (p2p.MessageRecord, error) {
	var v p2p.MessageRecord
	return v, c.get(ctx, "/debug/pubsub/messages/"+url.PathEscape(id), nil, &v)
}

// Trace reads GET /debug/pubsub/trace and calls fn for every event, in order, until the stream ends (at once
// after the backlog without follow), ctx ends or fn returns an error. onDropped, when not nil, hears how many
// events the node had to skip because this reader fell behind.
func (c *Client) Trace(ctx context.Context, q TraceQuery, fn func(p2p.Event) error, onDropped func(uint64)) error {
	v := url.Values{}
	v.Set("follow", strconv.FormatBool(q.Follow))
	v.Set("backlog", strconv.Itoa(q.Backlog))
	if len(q.Filter.Topics) > 0 {
		v.Set("topic", strings.Join(q.Filter.Topics, ","))
	}
	if len(q.Filter.Types) > 0 {
		v.Set("type", strings.Join(q.Filter.Types, ","))
	}
	resp, err := c.do(ctx, "/debug/pubsub/trace", v)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	event := ""
	for sc.Scan() {
		line := sc.Text()
		switch {
		case strings.HasPrefix(line, "event: "):
			event = strings.TrimPrefix(line, "event: ")
		case strings.HasPrefix(line, "data: "):
			data := []byte(strings.TrimPrefix(line, "data: "))
			switch event {
			case "trace":
				var e p2p.Event
				if err := json.Unmarshal(data, &e); err != nil {
					return fmt.Errorf("trace stream: %w", err)
				}
				if err := fn(e); err != nil {
					return err
				}
			case "dropped":
				var d struct{ Dropped uint64 }
				if json.Unmarshal(data, &d) == nil && onDropped != nil {
					onDropped(d.Dropped)
				}
			}
		case line == "":
			event = ""
		}
	}
	if err := sc.Err(); err != nil && ctx.Err() == nil {
		return fmt.Errorf("trace stream: %w", err)
	}
	return nil
}

// WithToken returns a copy of c that sends the node's API token with mutating requests.
func (c *Client) WithToken(token string) *Client {
	cc := *c
	cc.token = token
	return &cc
}

// LedgerStatus is GET /v1/ledger/status.
func (c *Client) LedgerStatus(ctx context.Context) (LedgerStatus, error) {
	var v LedgerStatus
	return v, c.get(ctx, "/v1/ledger/status", nil, &v)
}

// Block is GET /v1/ledger/blocks/{height}; a wait above zero lets the node wait that long (at most a minute)
// for the height to be committed; hashesOnly asks for the transactions' hashes instead of the transactions.
func (c *Client) Block(ctx context.Context, height uint64, wait time.Duration, hashesOnly bool) (BlockView, error) {
	var v BlockView
	q := url.Values{}
	if wait > 0 {
		q.Set("wait", wait.String())
	}
	if hashesOnly {
		q.Set("txs", "hashes")
	}
	return v, c.getWithin(ctx, requestTimeout+wait, "/v1/ledger/blocks/"+strconv.FormatUint(height, 10), q, &v)
}

// Account is GET /v1/ledger/accounts/{address}.
func (c *Client) Account(ctx context.Context, address string) (AccountView, error) {
	var v AccountView
	return v, c.get(ctx, "/v1/ledger/accounts/"+url.PathEscape(address), nil, &v)
}

// Tx is GET /v1/ledger/txs/{hash}.
func (c *Client) Tx(ctx context.Context, hash string) (TxStatus, error) {
	var v TxStatus
	return v, c.get(ctx, "/v1/ledger/txs/"+url.PathEscape(hash), nil, &v)
}

// Submit is POST /v1/ledger/txs: it submits signed transactions and, with wait, answers once they are
// committed. A single refused transaction comes back as an *APIError with the reason.
func (c *Client) Submit(ctx context.Context, txs [][]byte, wait bool) ([]TxStatus, error) {
	req := SubmitRequest{Txs: make([]string, len(txs))}
	for i, tx := range txs {
		req.Txs[i] = base64.StdEncoding.EncodeToString(tx)
	}
	body, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	q := url.Values{}
	if wait {
		q.Set("wait", "true")
	}
	timeout := requestTimeout
	if wait {
		timeout += maxWait
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	resp, err := c.send(ctx, http.MethodPost, "/v1/ledger/txs", q, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v SubmitResponse
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("reading the node's answer: %w", err)
	}
	return v.Results, nil
}

// Consensus is GET /debug/consensus.
func (c *Client) Consensus(ctx context.Context) (ledger.DebugView, error) {
	var v ledger.DebugView
	return v, c.get(ctx, "/debug/consensus", nil, &v)
}

// Mempool is GET /debug/mempool.
func (c *Client) Mempool(ctx context.Context) (mempool.Snapshot, error) {
	var v mempool.Snapshot
	return v, c.get(ctx, "/debug/mempool", nil, &v)
}
