package node

import (
	"context"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/shouldersnet/shoulders/p2p"
	pb "github.com/shouldersnet/shoulders/proto"
	"github.com/shouldersnet/shoulders/version"
)

func TestAPI(t *testing.T) {
	n := start(t, initHome(t, t.TempDir(), nil, ""), Options{})
	c, err := NewClient(n.APIURL())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	waitUntil(t, 30*time.Second, []*running{n}, nil, "the node's own offer reaches its catalog", func() bool {
		return len(n.Catalog().List(pb.Kind_KIND_WORKER_OFFER)) == 1
	})

	t.Run("node", func(t *testing.T) {
		info, err := c.Node(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.PeerID != n.ID().String() || info.Network != "test" || info.Version != version.Version ||
			strings.Join(info.Roles, ",") != "client,worker" || len(info.Addrs) == 0 {
			t.Fatalf("%+v", info)
		}
		for _, a := range info.Addrs {
			if !strings.HasSuffix(a, "/p2p/"+info.PeerID) {
				t.Fatalf("address %s does not end in /p2p/<peer id>", a)
			}
		}
	})

	t.Run("catalog", func(t *testing.T) {
		entries, err := c.Catalog(ctx, "worker")
		if err != nil {
			t.Fatal(err)
		}
		if len(entries) != 1 || entries[0].Announcer != n.ID().String() || entries[0].Kind != "worker" {
			t.Fatalf("%+v", entries)
		}
		body := entries[0].Body.(map[string]any)
		if body["cpu_cores"].(float64) != float64(testCaps.CPUCores) {
			t.Fatalf("offer body %+v", body)
		}
	})

	t.Run("bad parameters are 400s naming the parameter", func(t *testing.T) {
		cases := []struct {
			call func() error
			want string
		}{
			{func() error { _, err := c.Catalog(ctx, "gpus"); return err }, `kind: "gpus" is not a kind`},
			{func() error { _, err := c.Lookup(ctx, ""); return err }, "key: missing"},
			{func() error { _, err := c.Message(ctx, "abc"); return err }, `id: "abc" is not a message ID`},
			{func() error {
				return c.Trace(ctx, TraceQuery{Filter: p2p.Filter{Types: []string{"teleport"}}}, nil, nil)
			}, `type: "teleport" is not an event type`},
			{func() error { return c.Trace(ctx, TraceQuery{Backlog: 5000}, nil, nil) }, `backlog: "5000"`},
			{func() error {
				return c.Trace(ctx, TraceQuery{Filter: p2p.Filter{Topics: []string{"gossip-about-cats"}}}, nil, nil)
			}, `topic: "gossip-about-cats" is not a topic of this node; known topics: datanets, workers`},
		}
		for _, tc := range cases {
			err := tc.call()
			var apiErr *APIError
			if !errors.As(err, &apiErr) || apiErr.Status != http.StatusBadRequest || !strings.Contains(apiErr.Message, tc.want) {
				t.Errorf("got %v, want a 400 saying %q", err, tc.want)
			}
		}
		resp, err := http.Get(n.APIURL() + "/debug/pubsub/trace?follow=sometimes")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 400 || !strings.Contains(string(b), `follow: \"sometimes\"`) {
			t.Errorf("follow=sometimes: %d %s", resp.StatusCode, b)
		}
	})

	t.Run("unknown message is a 404", func(t *testing.T) {
		_, err := c.Message(ctx, strings.Repeat("0", 64))
		var apiErr *APIError
		if !errors.As(err, &apiErr) || apiErr.Status != http.StatusNotFound {
			t.Fatalf("got %v", err)
		}
	})

	t.Run("trace backlog, then live, then the message record", func(t *testing.T) {
		// The start-up publish is in the trace (as backlog, or live if the tracer had not recorded it yet).
		errFound := errors.New("found")
		bctx, bcancel := context.WithTimeout(ctx, 30*time.Second)
		defer bcancel()
		err := c.Trace(bctx, TraceQuery{Follow: true, Backlog: 100, Filter: p2p.Filter{Types: []string{p2p.EventPublish}}},
			func(e p2p.Event) error {
				if e.Author == n.ID().String() {
					return errFound
				}
				return nil
			}, nil)
		if !errors.Is(err, errFound) {
			t.Fatalf("the start-up publish is not in the trace: %v", err)
		}
		var backlog []p2p.Event
		err = c.Trace(ctx, TraceQuery{Backlog: 100, Filter: p2p.Filter{Types: []string{p2p.EventPublish}}},
			func(e p2p.Event) error { backlog = append(backlog, e); return nil }, nil)
		if err != nil || len(backlog) == 0 || backlog[0].Author != n.ID().String() {
			t.Fatalf("without follow, the backlog of publishes: %+v, %v", backlog, err)
		}

		// Publish, then follow with a backlog: the trace hands over backlog and live events with no gap, so
		// the publish shows up whether or not the tracer had recorded it when the stream opened.
		v, err := n.publishOffer(ctx)
		if err != nil {
			t.Fatal(err)
		}
		want := hex.EncodeToString([]byte(p2p.MessageID(v.Raw)))
		fctx, cancel := context.WithTimeout(ctx, 30*time.Second)
		defer cancel()
		var got p2p.Event
		err = c.Trace(fctx, TraceQuery{Follow: true, Backlog: 100, Filter: p2p.Filter{Topics: []string{"workers"}, Types: []string{p2p.EventPublish}}},
			func(e p2p.Event) error {
				if e.MsgID == want {
					got = e
					return errFound
				}
				return nil
			}, nil)
		if !errors.Is(err, errFound) {
			t.Fatalf("following the trace for %s: %v", want, err)
		}
		rec, err := c.Message(ctx, got.MsgID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.Topic != p2p.TopicName("test", pb.Kind_KIND_WORKER_OFFER) || rec.Author != n.ID().String() || rec.Status != "published" {
			t.Fatalf("message record %+v", rec)
		}
		body := rec.Body.(map[string]any)
		if body["kind"] != "worker" || body["announcer"] != n.ID().String() {
			t.Fatalf("decoded body %+v", body)
		}
	})

	t.Run("metrics", func(t *testing.T) {
		resp, err := http.Get(n.APIURL() + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		for _, want := range []string{`shoulders_catalog_entries{kind="worker"} 1`, `shoulders_gossip_events_total{topic="workers",type="publish"}`} {
			if !strings.Contains(string(b), want) {
				t.Errorf("metrics lack %s", want)
			}
		}
	})
}

func TestClientSaysPlainlyWhenTheNodeIsUnreachable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	c, _ := NewClient(addr)
	_, err = c.Node(context.Background())
	if !errors.Is(err, ErrUnreachable) || !strings.Contains(err.Error(), "http://"+addr) ||
		!strings.Contains(err.Error(), "connection refused") || strings.Contains(err.Error(), "\n") {
		t.Fatalf("got %q", err)
	}
	if _, err := NewClient("ftp://x"); err == nil {
		t.Fatal("an ftp URL was accepted")
	}
}
