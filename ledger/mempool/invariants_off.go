//go:build !invariants

package mempool

func (m *Mempool) checkLocked() {}
