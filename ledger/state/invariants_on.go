//go:build invariants

package state

// invariants turns on expensive self-checks (go test -tags invariants): after every block, that the
// balances the block changed sum to what they summed to before (the total supply is conserved).
const invariants = true
