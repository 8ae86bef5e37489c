// Package version holds the software version every node reports in its worker offer, its libp2p agent string
// and `GET /v1/node`. It imports nothing of the project.
package version

// Version is the software version. Release builds may override it with
// -ldflags "-X github.com/shouldersnet/shoulders/version.Version=v1.2.3".
var Version = "0.1.0-dev"

// Agent is the libp2p agent string: "shoulders/<version>".
func Agent() string { return "shoulders/" + Version }
