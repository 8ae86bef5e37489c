// Package proto holds the protobuf schema of every message that crosses a process boundary, and the Go code
// generated from it. The generated files are committed; `go generate ./proto` rewrites them (it needs protoc,
// from Debian's protobuf-compiler package, and protoc-gen-go installed with
// `go install google.golang.org/protobuf/cmd/protoc-gen-go@v1.36.11`).
//
// This package holds types only: no behaviour, no validation. Decoding and checking live with their users
// (p2p/announce for announcements).
package proto

//go:generate protoc --go_out=. --go_opt=paths=source_relative announce.proto content.proto
