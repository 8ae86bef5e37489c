package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/shouldersnet/shoulders/node"
)

// defaultHome is $SHOULDERS_HOME, else ~/.shoulders.
func defaultHome() string {
	if h := os.Getenv("SHOULDERS_HOME"); h != "" {
		return h
	}
	if dir, err := os.UserHomeDir(); err == nil {
		return filepath.Join(dir, ".shoulders")
	}
	return ".shoulders"
}

// defaultAPI is $SHOULDERS_API, else the API address in the default home's config, else the default address.
func defaultAPI() string {
	if a := os.Getenv("SHOULDERS_API"); a != "" {
		return a
	}
	if cfg, err := node.LoadConfig(defaultHome()); err == nil {
		return "http://" + cfg.API
	}
	return "http://" + node.DefaultAPI
}

// clientFlags are the flags every verb that talks to a node shares.
type clientFlags struct {
	api  string
	json bool
}

func (f *clientFlags) register(cmd *cobra.Command, reads bool) {
	cmd.Flags().StringVar(&f.api, "api", "", "node API URL (default $SHOULDERS_API, else the API in ~/.shoulders/config.toml, else http://"+node.DefaultAPI+")")
	if reads {
		cmd.Flags().BoolVar(&f.json, "json", false, "print JSON for programs instead of a table")
	}
}

func (f *clientFlags) client() (*node.Client, error) {
	api := f.api
	if api == "" {
		api = defaultAPI()
	}
	return node.NewClient(api)
}

// short abbreviates a peer ID for tables: the first and last six characters.
func short(id string) string {
	if len(id) <= 14 {
		return id
	}
	return id[:6] + "…" + id[len(id)-6:]
}

func ago(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	d := time.Since(t).Round(time.Second)
	if d < time.Second {
		return "now"
	}
	return d.String() + " ago"
}

func bytesIEC(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

func orDash(items []string) string {
	if len(items) == 0 {
		return "-"
	}
	return strings.Join(items, ",")
}
