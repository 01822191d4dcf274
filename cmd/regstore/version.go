package main

import (
	"context"
	"flag"
	"io"
	"runtime"
	"runtime/debug"
)

var versionCommand = &command{
	name:     "version",
	synopsis: "version [--json]",
	args:     "no arguments", min: 0, max: 0,
	help: `
Prints the version of regstore, from the build information the Go toolchain
records in the binary: the module version ("(devel)" for a build from a
working tree), the Go version and platform, and, when the binary was built
from a version-controlled checkout, the revision, its time and whether the
working tree was modified. "regstore --version" prints the same.

With --json, prints one object:
  {"version": "<module version>", "go": "<go version>", "platform": "<os>/<arch>",
   "revision": "<vcs revision>", "time": "<RFC 3339 time>", "modified": <bool>}
(revision, time and modified only when the build recorded them).`,
	flags: func(fset *flag.FlagSet) action {
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, inv *invocation) error {
			v := buildVersion()
			if *asJSON {
				return writeJSON(inv.stdout, v)
			}
			return printVersion(inv.stdout, v)
		}
	},
}

// versionInfo is what the binary knows of its own build.
type versionInfo struct {
	Version  string `json:"version"`
	Go       string `json:"go"`
	Platform string `json:"platform"`
	Revision string `json:"revision,omitempty"`
	Time     string `json:"time,omitempty"`
	Modified *bool  `json:"modified,omitempty"`
}

// readBuildInfo is debug.ReadBuildInfo, replaced in tests.
var readBuildInfo = debug.ReadBuildInfo

func buildVersion() versionInfo {
	v := versionInfo{Version: "(unknown)", Go: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	bi, ok := readBuildInfo()
	if !ok {
		return v
	}
	if bi.Main.Version != "" {
		v.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Revision = s.Value
		case "vcs.time":
			v.Time = s.Value
		case "vcs.modified":
			m := s.Value == "true"
			v.Modified = &m
		}
	}
	return v
}

func printVersion(w io.Writer, v versionInfo) error {
	ew := &errWriter{w: w}
	ew.printf("regstore %s (%s, %s)\n", v.Version, v.Go, v.Platform)
	if v.Revision != "" {
		ew.printf("revision %s", v.Revision)
		if v.Time != "" {
			ew.printf(", %s", v.Time)
		}
		if v.Modified != nil && *v.Modified {
			ew.printf(", modified")
		}
		ew.printf("\n")
	}
	return ew.err
}
