// Command regstore operates on a CNCF Distribution registry's storage tree
// (the v2 layout) directly, without a registry process.
//
//	regstore inspect [--json] ROOT
//	regstore gc [--dry-run] [--delete-untagged] [--grace DURATION] [--workers N] [--json] ROOT
//
// ROOT is the registry's rootdirectory (the folder holding docker/), or the
// docker/registry/v2 folder itself.
//
// Exit status: 0 on success (also when gc --dry-run finds something to
// delete), 2 on a usage error or when the tree cannot be read or changed,
// 130 when interrupted.
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// Exit codes.
const (
	exitOK          = 0
	exitError       = 2 // usage, I/O or tree errors
	exitInterrupted = 130
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usage = `regstore operates on a Distribution registry's storage tree directly.

Usage:
  regstore inspect [--json] ROOT
  regstore gc [--dry-run] [--delete-untagged] [--grace DURATION] [--workers N] [--json] ROOT
  regstore help [COMMAND]

ROOT is the registry's rootdirectory (the folder holding docker/), or the
docker/registry/v2 folder itself. Run "regstore COMMAND --help" for details.

Exit status: 0 on success, 2 on a usage error or when the tree cannot be
read or changed, 130 when interrupted.
`

type command struct {
	name, synopsis, help string
	flags                func(*flag.FlagSet) func(ctx context.Context, root string, stdout io.Writer) error
}

var commands = []*command{inspectCommand, gcCommand}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return exitError
	}
	name, args := args[0], args[1:]
	switch name {
	case "help", "-h", "-help", "--help":
		if len(args) > 0 {
			if c := lookup(args[0]); c != nil {
				printCommandUsage(stdout, c, newFlagSet(c))
				return exitOK
			}
			fmt.Fprintf(stderr, "regstore: unknown command %q\n\n%s", args[0], usage)
			return exitError
		}
		fmt.Fprint(stdout, usage)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "regstore: unknown command %q\n\n%s", name, usage)
		return exitError
	}
	return c.run(ctx, args, stdout, stderr)
}

func lookup(name string) *command {
	for _, c := range commands {
		if c.name == name {
			return c
		}
	}
	return nil
}

// hiddenFlags are for profiling and are left out of the usage.
var hiddenFlags = map[string]bool{"cpuprofile": true, "memprofile": true}

func newFlagSet(c *command) *flag.FlagSet {
	fset := flag.NewFlagSet("regstore "+c.name, flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	fset.String("cpuprofile", "", "write a CPU profile to `file`")
	fset.String("memprofile", "", "write a heap profile to `file` at the end")
	return fset
}

func (c *command) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := newFlagSet(c)
	action := c.flags(fset)
	pos, err := parseInterleaved(fset, args)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, c, fset)
		return exitOK
	}
	if err == nil && len(pos) != 1 {
		err = fmt.Errorf("want exactly one ROOT, got %d arguments", len(pos))
	}
	if err != nil {
		fmt.Fprintf(stderr, "regstore %s: %v\nUsage: regstore %s\nRun \"regstore %s --help\" for details.\n", c.name, err, c.synopsis, c.name)
		return exitError
	}
	if p := fset.Lookup("cpuprofile").Value.String(); p != "" {
		f, err := os.Create(p)
		if err != nil {
			fmt.Fprintf(stderr, "regstore %s: %v\n", c.name, err)
			return exitError
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(stderr, "regstore %s: %v\n", c.name, err)
			return exitError
		}
		defer pprof.StopCPUProfile()
	}
	if p := fset.Lookup("memprofile").Value.String(); p != "" {
		defer func() {
			f, err := os.Create(p)
			if err == nil {
				runtime.GC()
				err = errors.Join(pprof.WriteHeapProfile(f), f.Close())
			}
			if err != nil {
				fmt.Fprintf(stderr, "regstore %s: memprofile: %v\n", c.name, err)
			}
		}()
	}
	bw := bufio.NewWriterSize(stdout, 64<<10)
	err = action(ctx, pos[0], bw)
	if ferr := bw.Flush(); err == nil {
		err = ferr
	}
	switch {
	case err == nil:
		return exitOK
	case ctx.Err() != nil && errors.Is(err, ctx.Err()):
		fmt.Fprintf(stderr, "regstore %s: interrupted\n", c.name)
		return exitInterrupted
	default:
		fmt.Fprintf(stderr, "regstore %s: %v\n", c.name, err)
		return exitError
	}
}

// parseInterleaved parses flags that may come before or after the
// positional arguments; everything after "--" is positional.
func parseInterleaved(fset *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fset.Parse(args); err != nil {
			return nil, err
		}
		rest := fset.Args()
		if used := len(args) - len(rest); used > 0 && args[used-1] == "--" {
			return append(pos, rest...), nil
		}
		if len(rest) == 0 {
			return pos, nil
		}
		pos, args = append(pos, rest[0]), rest[1:]
	}
}

func printCommandUsage(w io.Writer, c *command, fset *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: regstore %s\n\n%s\n", c.synopsis, strings.TrimSpace(c.help))
	var b strings.Builder
	fset.VisitAll(func(f *flag.Flag) {
		if hiddenFlags[f.Name] {
			return
		}
		name, help := flag.UnquoteUsage(f)
		fmt.Fprintf(&b, "  --%s", f.Name)
		if name != "" {
			fmt.Fprintf(&b, " %s", name)
		}
		fmt.Fprintf(&b, "\n    \t%s", strings.ReplaceAll(help, "\n", "\n    \t"))
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", b.String())
	}
}

// openStore opens the tree at root. Unless writable, the store's backend
// has no write methods at all, so nothing can change the tree.
func openStore(root string, writable bool) (*regstore.Store, func(), error) {
	fi, err := os.Stat(root)
	if err != nil {
		return nil, nil, err
	}
	if !fi.IsDir() {
		return nil, nil, fmt.Errorf("%s is not a directory", root)
	}
	var opts []regstore.Option
	if !exists(filepath.Join(root, filepath.FromSlash(regstore.DefaultLayoutRoot))) &&
		(exists(filepath.Join(root, "repositories")) || exists(filepath.Join(root, "blobs"))) {
		opts = append(opts, regstore.WithLayoutRoot("."))
	}
	d, err := regstore.OpenDir(root)
	if err != nil {
		return nil, nil, err
	}
	var fsys fs.FS = readOnlyFS{d}
	if w, ok := any(d).(regstore.WalkFS); ok {
		fsys = readOnlyWalkFS{readOnlyFS{d}, w}
	}
	if writable {
		fsys = d
	}
	s, err := regstore.Open(fsys, opts...)
	if err != nil {
		d.Close()
		return nil, nil, err
	}
	return s, func() { d.Close() }, nil
}

func exists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// readOnlyFS exposes only the read side of a directory backend.
type readOnlyFS struct{ d *regstore.Dir }

func (r readOnlyFS) Open(name string) (fs.File, error)          { return r.d.Open(name) }
func (r readOnlyFS) Stat(name string) (fs.FileInfo, error)      { return r.d.Stat(name) }
func (r readOnlyFS) ReadDir(name string) ([]fs.DirEntry, error) { return r.d.ReadDir(name) }
func (r readOnlyFS) ReadFile(name string) ([]byte, error)       { return r.d.ReadFile(name) }

// readOnlyWalkFS also passes on the backend's flat listing.
type readOnlyWalkFS struct {
	readOnlyFS
	w regstore.WalkFS
}

func (r readOnlyWalkFS) WalkFiles(dir string, fn func(string, fs.FileInfo) error) error {
	return r.w.WalkFiles(dir, fn)
}

// ---- inspect ----

var inspectCommand = &command{
	name:     "inspect",
	synopsis: "inspect [--json] ROOT",
	help: `
Lists what a registry would serve from the tree: each repository (in catalog
order) with its tags, its manifests (as enumerated by the registry: revision
links whose data exists) with their media type, size and references, and the
blobs linked in it; then every blob data file with its size. Nothing is
written.

With --json, prints one object:
  {"repositories": {"<name>": {
      "tags": {"<tag>": "<digest>"},
      "manifests": {"<digest>": {"mediaType": "<type>", "size": <bytes>,
                                 "references": ["<digest>", ...],
                                 "subject": "<digest>"}},
      "layers": ["<digest>", ...]}},
   "blobs": {"<digest>": <bytes>}}
references are the config, the layers and the child manifests; subject
appears only when the manifest has one. A tag without a current link maps to
"". A manifest that cannot be read has an "error" member instead of its
contents (and a warning goes to stderr).`,
	flags: func(fset *flag.FlagSet) func(context.Context, string, io.Writer) error {
		asJSON := fset.Bool("json", false, "print JSON")
		return func(ctx context.Context, root string, stdout io.Writer) error {
			s, closeStore, err := openStore(root, false)
			if err != nil {
				return err
			}
			defer closeStore()
			out, err := inspect(ctx, s)
			if err != nil {
				return err
			}
			if *asJSON {
				return writeJSON(stdout, out)
			}
			return out.print(stdout)
		}
	},
}

type inspectOutput struct {
	Repositories map[string]*repoOutput  `json:"repositories"`
	Blobs        map[digest.Digest]int64 `json:"blobs"`

	order    []string // repositories in catalog order
	warnings []string
}

type repoOutput struct {
	Tags      map[string]digest.Digest          `json:"tags"`
	Manifests map[digest.Digest]*manifestOutput `json:"manifests"`
	Layers    []digest.Digest                   `json:"layers"`

	tagOrder      []string
	manifestOrder []digest.Digest
}

type manifestOutput struct {
	MediaType  string          `json:"mediaType,omitempty"`
	Size       int64           `json:"size"`
	References []digest.Digest `json:"references"`
	Subject    digest.Digest   `json:"subject,omitempty"`
	Error      string          `json:"error,omitempty"`

	kinds []string // "config", "layer" or "child", per reference
}

func inspect(ctx context.Context, s *regstore.Store) (*inspectOutput, error) {
	out := &inspectOutput{Repositories: map[string]*repoOutput{}, Blobs: map[digest.Digest]int64{}}
	for r, err := range s.Repositories() {
		if err != nil {
			return nil, err
		}
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		ro, err := inspectRepository(r, out)
		if err != nil {
			return nil, err
		}
		out.order = append(out.order, r.Name())
		out.Repositories[r.Name()] = ro
	}
	for d, err := range s.Blobs() {
		if err != nil {
			return nil, err
		}
		b, err := s.Blob(d)
		if errors.Is(err, fs.ErrNotExist) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out.Blobs[d] = b.Size()
	}
	return out, nil
}

func inspectRepository(r *regstore.Repository, out *inspectOutput) (*repoOutput, error) {
	ro := &repoOutput{Tags: map[string]digest.Digest{}, Manifests: map[digest.Digest]*manifestOutput{}, Layers: []digest.Digest{}}
	for t, err := range r.Tags() {
		if err != nil {
			return nil, err
		}
		d, err := t.Digest()
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		ro.Tags[t.Name()] = d
		ro.tagOrder = append(ro.tagOrder, t.Name())
	}
	for d, err := range r.Manifests() {
		if err != nil {
			return nil, err
		}
		mo := &manifestOutput{References: []digest.Digest{}}
		ro.Manifests[d] = mo
		ro.manifestOrder = append(ro.manifestOrder, d)
		m, err := r.Manifest(d)
		if err != nil {
			mo.Error = err.Error()
			if b, err := r.Blob(d); err == nil {
				mo.Size = b.Size()
			}
			out.warnings = append(out.warnings, err.Error())
			continue
		}
		mo.MediaType, mo.Size = m.MediaType(), m.Size()
		if c, ok := m.Config(); ok {
			mo.References, mo.kinds = append(mo.References, c.Digest), append(mo.kinds, "config")
		}
		for _, l := range m.Layers() {
			mo.References, mo.kinds = append(mo.References, l.Digest), append(mo.kinds, "layer")
		}
		for _, c := range m.Children() {
			mo.References, mo.kinds = append(mo.References, c.Digest), append(mo.kinds, "child")
		}
		if subj, ok := m.Subject(); ok {
			mo.Subject = subj.Digest
		}
	}
	for d, err := range r.Layers() {
		if err != nil {
			return nil, err
		}
		ro.Layers = append(ro.Layers, d)
	}
	return ro, nil
}

func (out *inspectOutput) print(w io.Writer) error {
	ew := &errWriter{w: w}
	var manifests, tags int
	for _, name := range out.order {
		ro := out.Repositories[name]
		manifests += len(ro.Manifests)
		tags += len(ro.Tags)
		ew.printf("%s\n", name)
		tagsOf := map[digest.Digest][]string{}
		ew.printf("  tags (%d)\n", len(ro.Tags))
		for _, t := range ro.tagOrder {
			d := ro.Tags[t]
			switch {
			case d == "":
				ew.printf("    %s  (no current link)\n", t)
			case ro.Manifests[d] == nil:
				ew.printf("    %s -> %s  (manifest not in the repository)\n", t, d)
			default:
				ew.printf("    %s -> %s\n", t, d)
			}
			tagsOf[d] = append(tagsOf[d], t)
		}
		ew.printf("  manifests (%d)\n", len(ro.Manifests))
		for _, d := range ro.manifestOrder {
			mo := ro.Manifests[d]
			label := "untagged"
			if ts := tagsOf[d]; len(ts) > 0 {
				label = strings.Join(ts, ", ")
			}
			if mo.Error != "" {
				ew.printf("    %s  %d B  [%s]  ERROR: %s\n", d, mo.Size, label, mo.Error)
				continue
			}
			ew.printf("    %s  %s  %d B  [%s]\n", d, mo.MediaType, mo.Size, label)
			for i, ref := range mo.References {
				ew.printf("      %-7s %s\n", mo.kinds[i], ref)
			}
			if mo.Subject != "" {
				ew.printf("      %-7s %s\n", "subject", mo.Subject)
			}
		}
		ew.printf("  layers (%d)\n", len(ro.Layers))
		for _, d := range ro.Layers {
			ew.printf("    %s\n", d)
		}
	}
	var bytes int64
	for _, n := range out.Blobs {
		bytes += n
	}
	ew.printf("\n%d repositories, %d tags, %d manifests; %d blobs, %s\n",
		len(out.Repositories), tags, manifests, len(out.Blobs), humanBytes(bytes))
	for _, warn := range out.warnings {
		ew.printf("warning: %s\n", warn)
	}
	return ew.err
}

// ---- gc ----

var gcCommand = &command{
	name:     "gc",
	synopsis: "gc [--dry-run] [--delete-untagged] [--grace DURATION] [--workers N] [--json] ROOT",
	help: `
Garbage-collects the tree as "registry garbage-collect" does: marks every
manifest (with --delete-untagged, every tagged one, and the index children
and referrers of what is kept) and what it references, then removes the
blob data nothing marked references, the _layers links to it, and with
--delete-untagged the untagged revisions and their tag index entries.

Nothing modified less than the grace window before the collection started is
removed, so the registry may keep serving reads; it must not be pushed to
unless the grace window covers the longest push. With --dry-run the tree is
opened read-only and only the plan is printed. Ctrl-C stops between
deletions, leaving a consistent tree.

With --json, prints the plan: {"blobs": [...], "layerLinks": {"<repo>":
[...]}, "manifests": {"<repo>": [...]}, "bytes": N, "marked": N, "started",
"cutoff", "dryRun"}.`,
	flags: func(fset *flag.FlagSet) func(context.Context, string, io.Writer) error {
		dryRun := fset.Bool("dry-run", false, "only print what would be removed")
		untagged := fset.Bool("delete-untagged", false, "also remove manifests no tag points at")
		grace := fset.Duration("grace", regstore.DefaultGrace, "keep everything modified within this `duration` before the start;\na negative value turns the window off (only when nothing writes to the tree)")
		workers := fset.Int("workers", 4, "repositories marked and files removed at once")
		asJSON := fset.Bool("json", false, "print the plan as JSON")
		return func(ctx context.Context, root string, stdout io.Writer) error {
			if *grace == 0 {
				return errors.New("--grace 0 is ambiguous: use a positive window, or a negative one to turn it off")
			}
			if *workers < 1 {
				return errors.New("--workers must be at least 1")
			}
			s, closeStore, err := openStore(root, !*dryRun)
			if err != nil {
				return err
			}
			defer closeStore()
			opts := regstore.GCOptions{DeleteUntagged: *untagged, Grace: *grace, Workers: *workers}
			plan, err := s.PlanGC(ctx, opts)
			if err != nil {
				return err
			}
			if !*dryRun {
				if err := s.ApplyGC(ctx, plan, opts); err != nil {
					return err
				}
			}
			if plan.Blobs == nil {
				plan.Blobs = []digest.Digest{} // [] rather than null in JSON
			}
			if *asJSON {
				return writeJSON(stdout, struct {
					*regstore.GCPlan
					DryRun bool `json:"dryRun"`
				}{plan, *dryRun})
			}
			return printPlan(stdout, plan, *dryRun)
		}
	},
}

func printPlan(w io.Writer, plan *regstore.GCPlan, dryRun bool) error {
	ew := &errWriter{w: w}
	verb := "removed"
	if dryRun {
		verb = "would remove"
	}
	cutoff := "off"
	if plan.Cutoff.Before(plan.Started) {
		cutoff = "modified before " + plan.Cutoff.Format(time.RFC3339)
	}
	ew.printf("garbage collection%s, started %s, grace window: %s\n",
		map[bool]string{true: " (dry run)"}[dryRun], plan.Started.Format(time.RFC3339), cutoff)
	ew.printf("%d manifests and blobs marked\n", plan.Marked)
	listRepos := func(what string, m map[string][]digest.Digest) {
		n := 0
		for _, ds := range m {
			n += len(ds)
		}
		ew.printf("%s %d %s in %d repositories\n", verb, n, what, len(m))
		for _, repo := range slices.Sorted(maps.Keys(m)) {
			for _, d := range m[repo] {
				ew.printf("  %s@%s\n", repo, d)
			}
		}
	}
	listRepos("untagged manifests", plan.Manifests)
	listRepos("layer links", plan.LayerLinks)
	ew.printf("%s %d blobs, %s\n", verb, len(plan.Blobs), humanBytes(plan.Bytes))
	for _, d := range plan.Blobs {
		ew.printf("  %s\n", d)
	}
	return ew.err
}

// ---- helpers ----

func writeJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err == nil {
		_, e.err = fmt.Fprintf(e.w, format, args...)
	}
}

func humanBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB (%d bytes)", float64(n)/float64(div), "KMGTPE"[exp], n)
}
