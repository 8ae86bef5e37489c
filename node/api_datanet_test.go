package node

import (
	"crypto/ed25519"
	"crypto/rand"
	"io"
	"net/http"
	"strings"
	"testing"
)

func TestDatanetAPIRefusesBadParameters(t *testing.T) {
	_, alice, _ := ed25519.GenerateKey(rand.Reader)
	n := ledgerNode(t, alice)
	for _, tc := range []struct {
		method, path, body string
		status             int
		want               string
	}{
		{"GET", "/v1/datanets", "", 200, `"datanets": []`},
		{"GET", "/v1/datanets?limit=many", "", 400, `limit: \"many\" is not a whole number`},
		{"GET", "/v1/datanets/Bad_Name", "", 400, "datanet: name \\\"Bad_Name\\\""},
		{"GET", "/v1/datanets/nowhere", "", 404, `datanet \"nowhere\"`},
		{"GET", "/v1/datanets/nowhere/records?status=lost", "", 400, `status: \"lost\", want pending, approved or rejected`},
		{"GET", "/v1/datanets/nowhere/records?version=x", "", 400, `version: \"x\" is not a whole number`},
		{"GET", "/v1/datanets/nowhere/records", "", 404, `datanet \"nowhere\"`},
		{"GET", "/v1/datanets/nowhere/records/notacid", "", 400, "cid: "},
		{"POST", "/v1/datanets/nowhere/check", `{"cids": []}`, 404, `datanet \"nowhere\"`},
	} {
		req, _ := http.NewRequest(tc.method, n.APIURL()+tc.path, strings.NewReader(tc.body))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status || !strings.Contains(string(b), tc.want) {
			t.Errorf("%s %s: %d %s, want %d with %q", tc.method, tc.path, resp.StatusCode, b, tc.status, tc.want)
		}
	}
}
