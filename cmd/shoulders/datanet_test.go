package main

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/shouldersnet/shoulders/compute"
	"github.com/shouldersnet/shoulders/devnet"
	"github.com/shouldersnet/shoulders/ledger/state"
	"github.com/shouldersnet/shoulders/node"
	pb "github.com/shouldersnet/shoulders/proto"
)

// startNet runs a devnet of one validator and two more nodes in-process until the test ends, and waits
// until every node has the first block.
func startNet(t *testing.T) ([]devnet.Member, []*node.Node) {
	t.Helper()
	members, err := devnet.Prepare(devnet.Config{Dir: t.TempDir(), Validators: 1, Nodes: 2})
	if err != nil {
		t.Fatal(err)
	}
	caps := &compute.Capabilities{CPUCores: 2, MemoryBytes: 4 << 30, Executors: []string{"builtin"}}
	var nodes []*node.Node
	for _, m := range members {
		n, err := node.Open(context.Background(), m.Home, node.Options{Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Capabilities: caps})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan error, 1)
		go func() { done <- n.Run(ctx) }()
		t.Cleanup(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
		nodes = append(nodes, n)
	}
	for _, n := range nodes {
		c, _ := node.NewClient(n.APIURL())
		if _, err := c.Block(context.Background(), 1, time.Minute, true); err != nil {
			t.Fatalf("node %s never saw block 1: %v", n.ID(), err)
		}
	}
	return members, nodes
}

// caughtUp waits until every node has committed the height nodes[0] is at.
func caughtUp(t *testing.T, nodes []*node.Node) {
	t.Helper()
	c0, _ := node.NewClient(nodes[0].APIURL())
	st, err := c0.LedgerStatus(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, n := range nodes[1:] {
		c, _ := node.NewClient(n.APIURL())
		if _, err := c.Block(context.Background(), st.Height, time.Minute, true); err != nil {
			t.Fatalf("node %s never reached height %d: %v", n.ID(), st.Height, err)
		}
	}
}

func writeFile(t *testing.T, dir, name, data string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func mustRun(t *testing.T, want string, args ...string) string {
	t.Helper()
	out, err := run(t, args...)
	if err != nil || !strings.Contains(out, want) {
		t.Fatalf("shoulders %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return out
}

// TestDatanetFlowThroughTheCLI is the end-to-end flow: the owner creates a datanet, two other
// accounts contribute (one file per record, and lines of a JSON-lines file), duplicates are refused and
// stay credited to their first contributor, the owner's node fetches every record from the contributors'
// nodes and verifies it before approving, a second approval makes version 2 whose root the CLI checks, the
// owner's node announces the version to the network, and bad input is refused with a reason.
func TestDatanetFlowThroughTheCLI(t *testing.T) {
	members, nodes := startNet(t)
	owner, bob, carol := members[0], members[1], members[2]
	dir := t.TempDir()

	mustRun(t, "created datanet poems (text records", "datanet", "create", "poems", "--home", owner.Home, "--license", "CC-BY-4.0", "--tag", "en")
	if _, err := run(t, "datanet", "create", "poems", "--home", bob.Home); err == nil || !strings.Contains(err.Error(), `datanet "poems" already exists`) {
		t.Fatalf("a second create: %v", err)
	}

	roses := writeFile(t, dir, "roses.txt", "Roses are red")
	violets := writeFile(t, dir, "violets.txt", "Violets are blue")
	lines := writeFile(t, dir, "lines.jsonl", "{\"line\": \"sugar is sweet\"}\n\n{\"line\": \"and so are you\"}\n")
	mustRun(t, "added 2 records to datanet poems, pending approval by its owner ("+owner.PeerID+")",
		"datanet", "contribute", "poems", roses, violets, "--home", bob.Home)
	mustRun(t, "added 2 records", "datanet", "contribute", "poems", lines, "--split-lines", "--home", bob.Home)

	// Carol sends one new poem and Bob's violets: the violets stay Bob's.
	out := mustRun(t, "added 1 record to datanet poems", "datanet", "contribute", "poems", writeFile(t, dir, "daisies.txt", "Daisies are white"), violets, "--home", carol.Home)
	if !strings.Contains(out, "1 duplicate was already there") || !strings.Contains(out, "by "+bob.PeerID+" (pending)") {
		t.Fatalf("carol's duplicate:\n%s", out)
	}

	// Bad input: each refused with a reason, nothing stored on the ledger.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"datanet", "contribute", "nowhere", roses, "--home", bob.Home}, `there is no datanet "nowhere"`},
		{[]string{"datanet", "contribute", "poems", writeFile(t, dir, "empty.txt", ""), "--home", bob.Home}, "empty.txt: empty; a record needs at least one byte"},
		{[]string{"datanet", "contribute", "poems", writeFile(t, dir, "latin1.txt", "caf\xe9"), "--home", bob.Home}, "latin1.txt: not valid UTF-8, and this is a text datanet"},
		{[]string{"datanet", "contribute", "poems", writeFile(t, dir, "bad.jsonl", "{}\nnot json\n"), "--split-lines", "--home", bob.Home}, "bad.jsonl:2: not a JSON value"},
		{[]string{"datanet", "approve", "poems", "--all", "--home", bob.Home}, "only its owner can approve records"},
		{[]string{"datanet", "approve", "poems", "bafkreinotacid", "--home", owner.Home}, `RECORD "bafkreinotacid"`},
	} {
		if _, err := run(t, tc.args...); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("shoulders %s: %v, want an error containing %q", strings.Join(tc.args, " "), err, tc.want)
		}
	}

	caughtUp(t, nodes)
	out = mustRun(t, "5 records", "datanet", "pending", "poems", "--api", owner.API)
	if !strings.Contains(out, carol.PeerID) || !strings.Contains(out, bob.PeerID) {
		t.Fatalf("pending:\n%s", out)
	}

	// The owner's node holds none of the records: approving fetches each from Bob's or Carol's node.
	mustRun(t, "version 1: 5 records (5 new)", "datanet", "approve", "poems", "--all", "--home", owner.Home)
	mustRun(t, "nothing to approve", "datanet", "approve", "poems", "--all", "--home", owner.Home)

	mustRun(t, "added 1 record", "datanet", "contribute", "poems", writeFile(t, dir, "tulips.txt", "Tulips are yellow"), "--home", carol.Home)
	mustRun(t, "version 2: 6 records (1 new)", "datanet", "approve", "poems", "--all", "--home", owner.Home)
	caughtUp(t, nodes)
	out = mustRun(t, "(verified: it is the CID of the record list below)", "datanet", "show", "poems", "--version", "2", "--api", bob.API)
	if !strings.Contains(out, "6 records (1 new)") {
		t.Fatalf("show --version 2:\n%s", out)
	}
	mustRun(t, "licence      CC-BY-4.0", "datanet", "show", "poems", "--api", carol.API)
	mustRun(t, "poems  text", "datanet", "list", "--api", carol.API)

	// The same content again is a duplicate, credited to Bob.
	out, err := run(t, "datanet", "contribute", "poems", roses, "--home", carol.Home)
	if err != nil || !strings.Contains(out, "no records added") || !strings.Contains(out, "by "+bob.PeerID+" (approved)") {
		t.Fatalf("roses again: %v\n%s", err, out)
	}

	out = mustRun(t, "", "datanet", "records", "poems", "--json", "--api", carol.API)
	var recs struct{ Records []state.Record }
	if err := json.Unmarshal([]byte(out), &recs); err != nil || len(recs.Records) != 6 {
		t.Fatalf("records --json: %v\n%s", err, out)
	}
	by := map[string]int{}
	for _, r := range recs.Records {
		if r.Status != state.RecordApproved || r.Size == 0 || r.CID == "" {
			t.Errorf("record %+v", r)
		}
		by[r.Contributor.String()]++
	}
	if by[bob.PeerID] != 4 || by[carol.PeerID] != 2 {
		t.Errorf("contributors %v, want 4 by bob and 2 by carol", by)
	}

	// Every record can be fetched and verified by CID from any node.
	for _, r := range recs.Records {
		p := filepath.Join(dir, "got-"+r.CID)
		mustRun(t, "", "content", "get", r.CID, "-o", p, "--api", carol.API)
		if b, err := os.ReadFile(p); err != nil || uint64(len(b)) != r.Size {
			t.Errorf("content get %s: %d bytes, %v", r.CID, len(b), err)
		}
	}

	// The owner's node announced version 2; Bob's catalog has it.
	changed := nodes[1].Catalog().Changed()
	deadline := time.After(time.Minute)
	for {
		entries := nodes[1].Catalog().List(pb.Kind_KIND_DATANET_VERSION)
		if len(entries) == 1 && strings.Contains(mustRun(t, "", "catalog", "--kind", "datanet", "--api", bob.API), "version 2, 6 records") {
			break
		}
		select {
		case <-changed:
			changed = nodes[1].Catalog().Changed()
		case <-deadline:
			t.Fatalf("bob's catalog never showed version 2: %s", mustRun(t, "", "catalog", "--api", bob.API))
		}
	}
}
