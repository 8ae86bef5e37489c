package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestContentVerbs(t *testing.T) {
	n := startNode(t)
	api := n.APIURL()
	dir := t.TempDir()
	small := filepath.Join(dir, "small.txt")
	big := filepath.Join(dir, "big.bin")
	os.WriteFile(small, []byte("a small record\n"), 0o644)
	bigData := bytes.Repeat([]byte("0123456789abcdef"), 1<<17) // 2 MiB: a manifest and two chunks
	os.WriteFile(big, bigData, 0o644)

	out, err := run(t, "content", "put", small, big, "--api", api)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	if err != nil || len(lines) != 2 || !strings.HasSuffix(lines[0], "\t15\t"+small) || !strings.HasSuffix(lines[1], "\t2097152\t"+big) {
		t.Fatalf("content put: %v\n%s", err, out)
	}
	bigCID := strings.Fields(lines[1])[0]

	out, err = run(t, "content", "list", "--api", api)
	if err != nil || !strings.Contains(out, bigCID) || !strings.Contains(out, "2.0 MiB") || !strings.Contains(out, "2 blobs") {
		t.Fatalf("content list: %v\n%s", err, out)
	}
	out, err = run(t, "content", "list", "--api", api, "--json")
	var list struct{ Blobs []struct{ CID string } }
	if err != nil || json.Unmarshal([]byte(out), &list) != nil || len(list.Blobs) != 2 {
		t.Fatalf("content list --json: %v\n%s", err, out)
	}

	got := filepath.Join(dir, "got.bin")
	if out, err := run(t, "content", "get", bigCID, "-o", got, "--api", api); err != nil {
		t.Fatalf("content get: %v\n%s", err, out)
	}
	if b, _ := os.ReadFile(got); !bytes.Equal(b, bigData) {
		t.Fatal("content get wrote other bytes")
	}
	if out, err := run(t, "content", "providers", bigCID, "--api", api); err != nil || !strings.Contains(out, "providers") {
		t.Fatalf("content providers: %v\n%s", err, out)
	}
	if _, err := run(t, "content", "get", "bafkqaaa", "--api", api); err == nil || !strings.Contains(err.Error(), "multihash identity") && !strings.Contains(err.Error(), "bad CID") {
		t.Fatalf("content get of a bad CID: %v", err)
	}
	missing := "bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku"
	if _, err := run(t, "content", "get", missing, "--local", "--api", api); err == nil || !strings.Contains(err.Error(), "is not on this node") {
		t.Fatalf("content get --local of a missing blob: %v", err)
	}
}
