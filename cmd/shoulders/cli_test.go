package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shouldersnet/shoulders/compute"
	"github.com/shouldersnet/shoulders/node"
	"github.com/shouldersnet/shoulders/p2p"
	pb "github.com/shouldersnet/shoulders/proto"
)

// run executes the shoulders command line in-process and returns its output and error.
func run(t *testing.T, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	root := newRootCmd()
	root.SetArgs(args)
	root.SetOut(&out)
	root.SetErr(&out)
	err := root.ExecuteContext(context.Background())
	return out.String(), err
}

// startNode runs a node in-process until the test ends and waits for its own offer to reach its catalog.
func startNode(t *testing.T) *node.Node {
	t.Helper()
	home := filepath.Join(t.TempDir(), "home")
	if _, err := run(t, "init", "--home", home, "--network", "clitest", "--listen", "/ip4/127.0.0.1/tcp/0", "--api", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	caps := &compute.Capabilities{CPUCores: 3, MemoryBytes: 8 << 30, GPUs: []compute.GPU{{Index: 0, Name: "NVIDIA H100 80GB HBM3", MemoryMiB: 81559}}, Executors: []string{"builtin"}}
	n, err := node.Open(context.Background(), home, node.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Capabilities: caps})
	if err != nil {
		t.Fatal(err)
	}
	changed := n.Catalog().Changed()
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- n.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Error(err)
		}
	})
	if len(n.Catalog().List(pb.Kind_KIND_WORKER_OFFER)) == 0 {
		select {
		case <-changed:
		case <-time.After(30 * time.Second):
			t.Fatal("the node's own offer never reached its catalog")
		}
	}
	// The trace records events on its own goroutine: wait for the publication to be in it too.
	published, backlog, err := n.Network().Tracer().Subscribe(p2p.Filter{Types: []string{p2p.EventPublish}}, 1)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Network().Tracer().Unsubscribe(published)
	if len(backlog) == 0 {
		select {
		case <-published.C:
		case <-time.After(30 * time.Second):
			t.Fatal("the node's own offer never reached its trace")
		}
	}
	return n
}

func TestReadVerbsAgainstARunningNode(t *testing.T) {
	n := startNode(t)
	api := n.APIURL()
	id := n.ID().String()

	out, err := run(t, "id", "--api", api)
	if err != nil || !strings.Contains(out, "peer id:  "+id) || !strings.Contains(out, "network:  clitest") {
		t.Fatalf("id: %v\n%s", err, out)
	}
	out, err = run(t, "workers", "--api", api)
	if err != nil || !strings.Contains(out, id) || !strings.Contains(out, "NVIDIA H100 80GB HBM3 79GiB") || !strings.Contains(out, "1 workers") {
		t.Fatalf("workers: %v\n%s", err, out)
	}
	out, err = run(t, "workers", "--api", api, "--json")
	var workers struct{ Entries []node.CatalogEntry }
	if err != nil || json.Unmarshal([]byte(out), &workers) != nil || len(workers.Entries) != 1 || workers.Entries[0].Announcer != id {
		t.Fatalf("workers --json: %v\n%s", err, out)
	}
	out, err = run(t, "peers", "--api", api)
	if err != nil || !strings.Contains(out, "0 peers") {
		t.Fatalf("peers: %v\n%s", err, out)
	}
	out, err = run(t, "debug", "topics", "--api", api)
	if err != nil || !strings.Contains(out, "/shoulders/clitest/workers/1") {
		t.Fatalf("debug topics: %v\n%s", err, out)
	}
	out, err = run(t, "debug", "trace", "--api", api, "--type", "publish")
	if err != nil || !strings.Contains(out, "publish") || !strings.Contains(out, "workers msg=") {
		t.Fatalf("debug trace: %v\n%s", err, out)
	}
	out, err = run(t, "debug", "trace", "--api", api, "--type", "publish", "--json")
	var ev p2p.Event
	if err != nil || json.Unmarshal([]byte(strings.SplitN(out, "\n", 2)[0]), &ev) != nil || ev.Type != "publish" {
		t.Fatalf("debug trace --json: %v\n%s", err, out)
	}
	out, err = run(t, "debug", "message", ev.MsgID, "--api", api)
	if err != nil || !strings.Contains(out, "status: published") || !strings.Contains(out, `"kind": "worker"`) {
		t.Fatalf("debug message: %v\n%s", err, out)
	}
	if _, err := run(t, "debug", "trace", "--api", api, "--type", "telepathy"); err == nil || !strings.Contains(err.Error(), `"telepathy" is not an event type`) {
		t.Fatalf("a bad --type: %v", err)
	}
}

func TestUnreachableNodeIsOneClearLine(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	for _, verb := range [][]string{{"id"}, {"peers"}, {"workers"}, {"debug", "dht"}, {"debug", "trace", "--follow"}} {
		_, err := run(t, append(verb, "--api", addr)...)
		if err == nil || !strings.Contains(err.Error(), "cannot reach the node API at http://"+addr) || strings.Contains(err.Error(), "\n") {
			t.Errorf("%v: %v", verb, err)
		}
	}
}
