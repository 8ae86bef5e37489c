package tokenize

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
	"unicode"
)

func learn(t testing.TB, maxVocab int, texts ...string) *Tokenizer {
	t.Helper()
	c := NewCounter()
	for _, s := range texts {
		c.Add([]byte(s))
	}
	tok, err := c.Learn(maxVocab)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func pieces(s string) []string {
	var out []string
	b := []byte(s)
	for len(b) > 0 {
		n, _ := nextPiece(b)
		out = append(out, string(b[:n]))
		b = b[n:]
	}
	return out
}

func TestPieces(t *testing.T) {
	cases := []struct {
		in   string
		want []string
	}{
		{"the cat sat", []string{"the", " cat", " sat"}},
		{"Hello, world!", []string{"Hello", ",", " world", "!"}},
		{"  two  spaces", []string{" ", " two", " ", " spaces"}},
		{"line\n\nnext", []string{"line", "\n\n", "next"}},
		{"tab\t x", []string{"tab", "\t", " x"}},
		{"in 1913 A.D.", []string{"in", " 1913", " A", ".", "D", "."}},
		{"naïve café", []string{"naïve", " café"}},
		{"日本語のテキスト", []string{"日本語のテキスト"}},
		{"x²+y", []string{"x", "²", "+", "y"}},
		{"bad\xffbyte", []string{"bad", "\xff", "byte"}},
		{" \xff", []string{" ", "\xff"}},
		{"end ", []string{"end", " "}},
		{strings.Repeat("a", 40), []string{strings.Repeat("a", 32), strings.Repeat("a", 8)}},
	}
	for _, c := range cases {
		if got := pieces(c.in); !slices.Equal(got, c.want) {
			t.Errorf("pieces(%q) = %q, want %q", c.in, got, c.want)
		}
	}
}

func TestEncodeUsesVocabularyAndFallsBackToBytes(t *testing.T) {
	tok := learn(t, 1000, "the cat sat", "the mat", "the cat")
	ids := tok.Encode(nil, []byte("the cat ate"))
	// "the" and " cat" are in the vocabulary; " ate" was never seen and falls back to its 4 bytes.
	if len(ids) != 2+4 {
		t.Fatalf("Encode gave %d IDs %v, want 2 vocabulary IDs and 4 byte IDs", len(ids), ids)
	}
	for i, id := range ids[:2] {
		if id < FirstPiece {
			t.Errorf("ID %d = %d, want a vocabulary piece", i, id)
		}
	}
	for i, b := range []byte(" ate") {
		if ids[2+i] != FirstByte+uint32(b) {
			t.Errorf("ID %d = %d, want byte %q", 2+i, ids[2+i], b)
		}
	}
	// The most frequent piece gets the first ID.
	if ids[0] != FirstPiece {
		t.Errorf(`"the" (seen 3 times) has ID %d, want %d`, ids[0], FirstPiece)
	}
}

func TestLearnRespectsBoundAndIsDeterministic(t *testing.T) {
	text := "alpha beta gamma delta alpha beta alpha"
	tok := learn(t, int(FirstPiece)+2, text)
	if tok.Size() != int(FirstPiece)+2 {
		t.Fatalf("Size = %d, want %d", tok.Size(), FirstPiece+2)
	}
	got, _ := tok.Decode(nil, []uint32{FirstPiece, FirstPiece + 1})
	if string(got) != " alpha beta" {
		t.Fatalf("two most frequent pieces decode to %q, want %q", got, " alpha beta")
	}
	for range 5 {
		if again := learn(t, int(FirstPiece)+2, text); again.Hash() != tok.Hash() {
			t.Fatal("learning the same corpus twice gave different tables")
		}
	}
	if _, err := NewCounter().Learn(10); err == nil {
		t.Fatal("a vocabulary bound below the reserved IDs was accepted")
	}
}

// TestTablesGolden pins the serialized tables of a small corpus. If it fails, the rules or the format
// changed: bump Version (and expect every index to be rebuilt), then update the hash.
func TestTablesGolden(t *testing.T) {
	tok := learn(t, 300, "The quick brown fox jumps over the lazy dog.\nThe dog sleeps.")
	want := map[string]string{
		"15.0.0": "77bfeb5d58a6f7705b2bdad5d5d6bdd79fdba41086f2559f7d92ec5074587f74",
	}[unicode.Version]
	if want == "" {
		t.Skipf("no golden hash recorded for Unicode %s; tables hash is %s", unicode.Version, tok.Hash())
	}
	if tok.Hash() != want {
		t.Fatalf("tables hash %s, want %s", tok.Hash(), want)
	}
}

func TestParseRoundTripAndRejections(t *testing.T) {
	tok := learn(t, 1000, "some text, with some words; and words")
	back, err := Parse(tok.Marshal())
	if err != nil {
		t.Fatal(err)
	}
	if back.Hash() != tok.Hash() || back.Size() != tok.Size() {
		t.Fatal("Parse(Marshal()) is a different tokenizer")
	}
	good := tok.Marshal()
	bad := map[string][]byte{
		"empty":     nil,
		"truncated": good[:len(good)-1],
		"trailing":  append(slices.Clone(good), 0),
		"version":   func() []byte { b := slices.Clone(good); b[8] = 9; return b }(),
		"unicode":   func() []byte { b := slices.Clone(good); b[13] ^= 1; return b }(),
	}
	for name, b := range bad {
		if _, err := Parse(b); !errors.Is(err, ErrFormat) {
			t.Errorf("%s: Parse gave %v, want ErrFormat", name, err)
		}
	}
	if _, err := FromPieces([][]byte{[]byte("ab"), []byte("ab")}); err == nil {
		t.Error("duplicate pieces accepted")
	}
	if _, err := FromPieces([][]byte{[]byte("a b")}); err == nil {
		t.Error(`"a b" (two pieces) accepted as one piece`)
	}
}

func TestDecodeRejectsNonText(t *testing.T) {
	tok := learn(t, 1000, "abc abc")
	if _, err := tok.Decode(nil, []uint32{Separator}); !errors.Is(err, ErrToken) {
		t.Errorf("separator: got %v, want ErrToken", err)
	}
	if _, err := tok.Decode(nil, []uint32{uint32(tok.Size())}); !errors.Is(err, ErrToken) {
		t.Errorf("ID past the vocabulary: got %v, want ErrToken", err)
	}
}

func TestRoundTripRandom(t *testing.T) {
	rnd := rand.New(rand.NewPCG(3, 4))
	alphabet := []string{"a", "b", "é", "日", " ", "  ", "\n", ".", "1", "\xff", "\xe2\x82", "x\u0301", "\t"}
	var corpus []string
	for range 200 {
		var sb strings.Builder
		for range rnd.IntN(60) {
			sb.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
		corpus = append(corpus, sb.String())
	}
	tok := learn(t, 400, corpus...)
	for _, s := range corpus {
		ids := tok.Encode(nil, []byte(s))
		back, err := tok.Decode(nil, ids)
		if err != nil || string(back) != s {
			t.Fatalf("round trip of %q gave %q, %v", s, back, err)
		}
	}
}

func FuzzRoundTrip(f *testing.F) {
	tok := learn(f, 2000, "The Collaborative International Dictionary of English", "naïve café 日本語 x²", "a\tb\n\nc  d")
	f.Add([]byte("The dictionary of English"))
	f.Add([]byte("bad\xffbytes\xe2\x82 and  spaces\n"))
	f.Add([]byte(strings.Repeat("long", 20)))
	f.Fuzz(func(t *testing.T, text []byte) {
		ids := tok.Encode(nil, text)
		for _, id := range ids {
			if id == Separator || int(id) >= tok.Size() {
				t.Fatalf("Encode produced ID %d (vocabulary %d)", id, tok.Size())
			}
		}
		back, err := tok.Decode(nil, ids)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(back, text) {
			t.Fatalf("round trip of %q gave %q", text, back)
		}
		// Pieces never exceed the bound, and each piece re-cuts to itself.
		for rest := text; len(rest) > 0; {
			n, valid := nextPiece(rest)
			if n < 1 || n > MaxPieceBytes || n > len(rest) {
				t.Fatalf("piece of length %d at %q", n, rest)
			}
			if valid && n > 1 {
				if err := checkPiece(rest[:n]); err != nil {
					t.Fatalf("piece %q does not re-cut to itself: %v", rest[:n], err)
				}
			}
			rest = rest[n:]
		}
	})
}

func FuzzParse(f *testing.F) {
	f.Add(learn(f, 500, "some words and some more words").Marshal())
	f.Add([]byte(magic))
	f.Fuzz(func(t *testing.T, b []byte) {
		tok, err := Parse(b)
		if err != nil {
			return
		}
		if !bytes.Equal(tok.Marshal(), b) {
			t.Fatal("accepted tables do not re-serialize to the same bytes")
		}
	})
}

func TestHandlesTranslateToEncode(t *testing.T) {
	rnd := rand.New(rand.NewPCG(5, 6))
	alphabet := []string{"ab", "cd", "é", " ", "\n", ".", "12", "\xff", "日本", "x\u0301", "  "}
	var texts [][]byte
	for range 300 {
		var sb strings.Builder
		for range rnd.IntN(40) {
			sb.WriteString(alphabet[rnd.IntN(len(alphabet))])
		}
		texts = append(texts, []byte(sb.String()))
	}
	for _, maxVocab := range []int{int(FirstPiece), int(FirstPiece) + 5, 5000} {
		c := NewCounter()
		var handles [][]uint32
		for _, text := range texts {
			handles = append(handles, c.AddHandles(nil, text))
		}
		tok, err := c.Learn(maxVocab)
		if err != nil {
			t.Fatal(err)
		}
		// Counting with Add learns the same tables.
		c2 := NewCounter()
		for _, text := range texts {
			c2.Add(text)
		}
		if tok2, _ := c2.Learn(maxVocab); tok2.Hash() != tok.Hash() {
			t.Fatalf("vocabulary %d: AddHandles and Add learn different tables", maxVocab)
		}
		tr := c.Translator(tok)
		for i, text := range texts {
			if got, want := tr.Append(nil, handles[i]), tok.Encode(nil, text); !slices.Equal(got, want) {
				t.Fatalf("vocabulary %d: text %q translates to %v, Encode gives %v", maxVocab, text, got, want)
			}
		}
	}
}
