package index

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"
)

// FuzzOpen replaces one file of a valid index with fuzzed bytes and opens it. Without resealing, the hash
// check must refuse it; with resealing (the manifest rewritten to match the damaged file, as an attacker
// could), the structural checks run and, if the index opens, no query may panic or read out of bounds.
func FuzzOpen(f *testing.F) {
	base := build(f, randomCorpus(11, 12, 30), BuildOptions{})
	for part := range numParts {
		data := base.parts[part]
		f.Add(uint8(part), false, int8(0), data)
		f.Add(uint8(part), true, int8(0), data)
		f.Add(uint8(part), true, int8(0), data[:len(data)/2])
		f.Add(uint8(part), true, int8(-1), data)
		flipped := append([]byte(nil), data...)
		flipped[len(flipped)/3] ^= 0xff
		f.Add(uint8(part), true, int8(0), flipped)
	}
	f.Fuzz(func(t *testing.T, part uint8, reseal bool, tokensDelta int8, data []byte) {
		part %= numParts
		dir := t.TempDir()
		man := base.man
		man.Parts = append([]Part(nil), man.Parts...)
		for i, p := range base.parts {
			b := p
			if i == int(part) {
				b = data
			}
			if err := os.WriteFile(filepath.Join(dir, partNames[i]), b, 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if reseal {
			sum := sha256.Sum256(data)
			man.Parts[part].Size = int64(len(data))
			man.Parts[part].SHA256 = hex.EncodeToString(sum[:])
			man.Tokens += int(tokensDelta)
			man.IndexHash = man.hash()
		}
		mb, _ := json.Marshal(man)
		if err := os.WriteFile(filepath.Join(dir, manifestName), mb, 0o644); err != nil {
			t.Fatal(err)
		}
		ix, err := Open(dir)
		same := string(data) == string(base.parts[part]) && (tokensDelta == 0 || !reseal)
		if err != nil {
			if same {
				t.Fatalf("an undamaged index was refused: %v", err)
			}
			return
		}
		defer ix.Close()
		if !same && !reseal {
			t.Fatal("a damaged file passed the hash check")
		}
		exercise(ix)
	})
}

// exercise runs every query over an index that passed Open, with patterns cut from its own stream.
func exercise(ix *Index) {
	rnd := rand.New(rand.NewPCG(1, 2))
	for i := range ix.Records() {
		r := ix.Record(i)
		ix.Contributor(r.Contributor)
	}
	for range 50 {
		start := rnd.IntN(ix.Len())
		pat := ix.Stream(nil, start, start+1+rnd.IntN(5))
		r := ix.Find(pat)
		ix.Sample(r, 3, nil)
		ix.Sample(r, 1000, nil)
		for _, c := range ix.Next(r, 2, nil) {
			ix.Extend(r, c.Token)
		}
		ix.Next(r, 1000, nil)
		if !r.Empty() {
			ix.NextAt(r, r.Count()-1)
			ix.Occurrence(r, 0)
		}
		ls := ix.LongestSuffix(pat)
		ix.Next(ls, 4, nil)
		ix.Unigram(pat[0])
		ix.Tokenizer().Decode(nil, pat)
	}
}
