//go:build !invariants

package index

// invariants turns on expensive self-checks (the suffix array is verified after every build). Build with
// -tags invariants to enable them.
const invariants = false
