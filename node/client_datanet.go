package node

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"strconv"

	"github.com/shouldersnet/shoulders/ledger/state"
)

// Datanets is GET /v1/datanets: up to limit datanets in name order after the name after.
func (c *Client) Datanets(ctx context.Context, after string, limit int) ([]*state.Datanet, error) {
	q := url.Values{}
	if after != "" {
		q.Set("after", after)
	}
	if limit > 0 {
		q.Set("limit", strconv.Itoa(limit))
	}
	var v DatanetsResponse
	return v.Datanets, c.get(ctx, "/v1/datanets", q, &v)
}

// Datanet is GET /v1/datanets/{name}.
func (c *Client) Datanet(ctx context.Context, name string) (DatanetResponse, error) {
	var v DatanetResponse
	return v, c.get(ctx, "/v1/datanets/"+url.PathEscape(name), nil, &v)
}

// Records is GET /v1/datanets/{name}/records with q's selection.
func (c *Client) Records(ctx context.Context, name string, q state.RecordQuery) ([]state.Record, error) {
	v := url.Values{}
	if q.Version > 0 {
		v.Set("version", strconv.FormatUint(uint64(q.Version), 10))
	}
	if q.Status != 0 {
		v.Set("status", q.Status.String())
	}
	if q.After > 0 {
		v.Set("after", strconv.FormatUint(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var r RecordsResponse
	return r.Records, c.get(ctx, "/v1/datanets/"+url.PathEscape(name)+"/records", v, &r)
}

// AllRecords pages through Records until every selected record is read.
func (c *Client) AllRecords(ctx context.Context, name string, q state.RecordQuery) ([]state.Record, error) {
	var out []state.Record
	for {
		page, err := c.Records(ctx, name, q)
		if err != nil {
			return nil, err
		}
		out = append(out, page...)
		if len(page) < state.MaxQueryLimit {
			return out, nil
		}
		last := page[len(page)-1]
		if q.Version > 0 {
			q.After = uint64(last.Position) + 1
		} else {
			q.After = last.Seq + 1
		}
	}
}

// Record is GET /v1/datanets/{name}/records/{cid}. A record the datanet does not have is an *APIError with
// Status 404.
func (c *Client) Record(ctx context.Context, name, cid string) (state.Record, error) {
	var v state.Record
	return v, c.get(ctx, "/v1/datanets/"+url.PathEscape(name)+"/records/"+url.PathEscape(cid), nil, &v)
}

// CheckRecords is POST /v1/datanets/{name}/check: the node makes each record local and verifies it.
func (c *Client) CheckRecords(ctx context.Context, name string, cids []string) ([]CheckResult, error) {
	body, err := json.Marshal(CheckRequest{CIDs: cids})
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithTimeout(ctx, requestTimeout+checkTimeout*2)
	defer cancel()
	resp, err := c.send(ctx, http.MethodPost, "/v1/datanets/"+url.PathEscape(name)+"/check", nil, body)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	var v CheckResponse
	if err := json.NewDecoder(resp.Body).Decode(&v); err != nil {
		return nil, fmt.Errorf("reading the node's answer: %w", err)
	}
	if len(v.Results) != len(cids) {
		return nil, fmt.Errorf("the node answered %d results for %d records", len(v.Results), len(cids))
	}
	return v.Results, nil
}
