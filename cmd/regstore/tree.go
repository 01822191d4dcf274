package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/config"
	"github.com/regstore/regstore/s3"
)

// rootCommands take ROOT as their first argument, or --config instead.
var rootCommands = map[string]bool{"inspect": true, "gc": true, "check": true, "du": true,
	"purge-uploads": true, "rm": true, "import-oci": true, "export-oci": true,
	"import-docker-archive": true, "import-skopeo-dir": true}

// readConfig reads --config, if given, and puts the tree it names in
// front of the positional arguments, in ROOT's place.
func (c *command) readConfig(fset *flag.FlagSet, pos []string) (*config.Config, []string, error) {
	f := fset.Lookup("config")
	if f == nil || f.Value.String() == "" {
		return nil, pos, nil
	}
	cfg, err := config.Load(f.Value.String())
	if err != nil {
		return nil, nil, err
	}
	var root string
	switch cfg.Storage.Driver {
	case "filesystem":
		root = cfg.Storage.Filesystem.RootDirectory
	case "s3":
		root = "s3://" + cfg.Storage.S3.Bucket + "/" + strings.TrimSuffix(cfg.Storage.S3.Prefix(), "/"+regstore.DefaultLayoutRoot)
	}
	return cfg, append([]string{root}, pos...), nil
}

// openStore opens the tree at root (or the one --config names, which is
// then args[0]). Unless writable, the store is opened read-only: every
// write it could make fails, so nothing can change the tree. A directory
// that holds no layout is an error saying what was expected and found.
func (inv *invocation) openStore(root string, writable bool) (*regstore.Store, func(), error) {
	return inv.open(root, writable, false)
}

// createStore opens the tree at root for writing; root may also be missing
// (it is made) or empty: a new tree.
func (inv *invocation) createStore(root string) (*regstore.Store, func(), error) {
	return inv.open(root, true, true)
}

func (inv *invocation) open(root string, writable, create bool) (*regstore.Store, func(), error) {
	var opts []regstore.Option
	if !writable {
		opts = append(opts, regstore.ReadOnly())
	}
	if inv.config != nil && len(inv.args) > 0 && root == inv.args[0] {
		for _, w := range inv.config.Warnings {
			inv.warnf("%s: %s", inv.config.Path, w)
		}
		if inv.config.Storage.Driver == "s3" {
			s, _, err := s3.OpenConfig(context.Background(), inv.config.Storage.S3, opts...)
			if err != nil {
				return nil, nil, err
			}
			if !create {
				if err := requireLayout(s); err != nil {
					return nil, nil, fmt.Errorf("%s: %w", root, err)
				}
			}
			return s, func() {}, nil
		}
	}
	if create {
		if _, err := os.Stat(root); errors.Is(err, fs.ErrNotExist) {
			if err := os.MkdirAll(root, 0o777); err != nil {
				return nil, nil, err
			}
		}
	}
	layoutRoot, err := checkTree(root, create)
	if err != nil {
		return nil, nil, err
	}
	// Symbolic links above the layout (docker/ on another disk) are
	// resolved; those inside it stay refused.
	dir, found, err := regstore.FindLayout(root)
	if err != nil {
		return nil, nil, err
	}
	if layoutRoot != "." {
		layoutRoot = found
	}
	d, err := regstore.OpenDir(dir)
	if err != nil {
		return nil, nil, err
	}
	s, err := regstore.Open(d, append(opts, regstore.WithLayoutRoot(layoutRoot))...)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return s, func() { d.Close() }, nil
}

// requireLayout fails when the store's layout root does not exist (an
// empty bucket or prefix).
func requireLayout(s *regstore.Store) error {
	if _, err := fs.Stat(s.FS(), s.Layout().Root()); err != nil {
		return fmt.Errorf("no registry storage tree: %s is missing (%w)", s.Layout().Root(), regstore.ErrNoLayout)
	}
	return nil
}

// errNotTree is a ROOT that holds no registry tree.
type errNotTree struct {
	root, found, hint string
}

func (e *errNotTree) Error() string {
	msg := fmt.Sprintf("%s is not a registry storage tree: expected %s in it (ROOT is the registry's rootdirectory, the folder holding docker/) or repositories/ and blobs/ (ROOT is the v2 folder itself); found %s",
		e.root, regstore.DefaultLayoutRoot, e.found)
	if e.hint != "" {
		msg += ": " + e.hint
	}
	return msg
}

func (e *errNotTree) Unwrap() error { return regstore.ErrNoLayout }

// checkTree returns the layout root of the tree at root: the default, or
// "." when root is the v2 folder itself. Unless empty is allowed (a new
// tree), root must hold a layout; otherwise the error says what it holds.
func checkTree(root string, empty bool) (string, error) {
	fi, err := os.Stat(root)
	if err != nil {
		return "", err
	}
	if !fi.IsDir() {
		return "", fmt.Errorf("%s is not a directory", root)
	}
	isDir := func(p ...string) bool {
		fi, err := os.Stat(filepath.Join(append([]string{root}, p...)...))
		return err == nil && fi.IsDir()
	}
	switch {
	case isDir(filepath.FromSlash(regstore.DefaultLayoutRoot)):
		return regstore.DefaultLayoutRoot, nil
	case isDir("repositories") || isDir("blobs"):
		return ".", nil
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		return "", err
	}
	if len(entries) == 0 {
		if empty {
			return regstore.DefaultLayoutRoot, nil
		}
		return "", &errNotTree{root: root, found: "an empty directory", hint: "give the registry's rootdirectory (storage.filesystem.rootdirectory in its config.yml, or --config)"}
	}
	e := &errNotTree{root: root}
	var names []string
	for _, en := range entries[:min(len(entries), 5)] {
		n := en.Name()
		if en.IsDir() {
			n += "/"
		}
		names = append(names, n)
	}
	e.found = fmt.Sprintf("%d entries (%s", len(entries), strings.Join(names, ", "))
	if len(entries) > len(names) {
		e.found += ", ..."
	}
	e.found += ")"
	parent := filepath.Dir(filepath.Clean(root))
	switch {
	case isDir("registry", "v2"):
		e.hint = fmt.Sprintf("this looks like the registry's docker/ folder: give its parent, %s", parent)
	case isDir("v2", "repositories") || isDir("v2", "blobs"):
		e.hint = fmt.Sprintf("this looks like the registry's docker/registry folder: give %s, or %s", filepath.Dir(parent), filepath.Join(root, "v2"))
	case isDir("docker"):
		e.hint = "it has a docker/ folder but no registry/v2 in it"
	}
	return "", e
}

// openStore is invocation.openStore for a ROOT given as a path (no
// --config): the commands that do not take --config use it.
func openStore(root string, writable bool) (*regstore.Store, func(), error) {
	return (&invocation{}).open(root, writable, false)
}

// createStore is invocation.createStore for a ROOT given as a path.
func createStore(root string) (*regstore.Store, func(), error) {
	return (&invocation{}).open(root, true, true)
}
