//go:build !linux

package hugepage

// Advise is a no-op where transparent huge pages are not known.
func Advise[T any](s []T) {}
