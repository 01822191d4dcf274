// Command regstore operates on a CNCF Distribution registry's storage tree
// (the v2 layout) directly, without a registry process.
//
//	regstore ls [--json] ROOT [REPO]
//	regstore manifest [--json] ROOT REPO:TAG|REPO@DIGEST
//	regstore blob [--json] ROOT DIGEST|REPO@DIGEST
//	regstore inspect [--json] ROOT [REPO...]
//	regstore gc [--dry-run] [--delete-untagged] [--drop-orphan-referrers] [--grace DURATION] [--workers N] [--exit-code] [--json] ROOT
//	regstore check [--links-only] [--workers N] [--ignore KIND,...] [--repair ACTION,...] [--dry-run] [--json] ROOT
//	regstore du [--json] ROOT [REPO...]
//	regstore purge-uploads --older-than DURATION [--dry-run] [--json] ROOT
//	regstore rm [--dry-run] [--json] ROOT REPO[:TAG|@DIGEST]...
//	regstore import-oci [--tag [REF=]TAG]... [--hardlink] [--json] ROOT REPO DIR
//	regstore export-oci [--tag TAG]... [--untagged] [--hardlink] [--json] ROOT REPO DIR
//	regstore import-docker-archive [--tag REF=TAG]... [--uncompressed] [--json] ROOT REPO FILE.tar
//	regstore import-skopeo-dir [--hardlink] [--json] ROOT REPO[:TAG] DIR
//	regstore copy [--repo REPO]... [--tag REPO:TAG]... [--hardlink] [--json] SRC_ROOT DST_ROOT
//	regstore version [--json]
//
// ROOT is the registry's rootdirectory (the folder holding docker/), or the
// docker/registry/v2 folder itself; a folder holding neither is an error.
// Every command but copy also takes --config FILE, the registry's
// config.yml, instead of ROOT: its filesystem or s3 storage, its
// blob-descriptor cache and read-only mode, with the registry's REGISTRY_*
// environment overrides. Flags may come before or after the arguments;
// "regstore COMMAND --help" describes each command, its flags and its JSON
// output.
//
// Beside a running registry (its config given, or its process seen serving
// ROOT), gc, rm of a repository and check --repair remove the entries of a
// redis cache for what they remove, and refuse, unless
// --registry-restart-after, when the registry keeps an inmemory cache.
//
// Long commands (gc, check, the imports, export and copy) show a progress
// line on standard error when it is a terminal, and nothing otherwise;
// --progress and --no-progress override the detection.
//
// Exit status: 0 on success; 1 when check finds problems (that a repair did
// not fix) or when gc --exit-code finds something to remove; 2 on a usage
// error or when the tree cannot be read or changed; 130 when interrupted
// (Ctrl-C stops between atomic writes, so nothing is left half-written).
package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strings"
	"syscall"

	"github.com/regstore/regstore/config"
)

// Exit codes.
const (
	exitOK          = 0
	exitFound       = 1 // check found problems; gc --exit-code found something to remove
	exitError       = 2 // usage, I/O or tree errors
	exitInterrupted = 130
)

// errFound makes a command exit with exitFound, after its output, with no
// message.
var errFound = errors.New("found")

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	go func() {
		// After the first Ctrl-C, a second one kills at once.
		<-ctx.Done()
		stop()
	}()
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

const usageText = `regstore operates on a Distribution registry's storage tree directly.

Usage:
  regstore ls [--json] ROOT [REPO]
  regstore manifest [--json] ROOT REPO:TAG|REPO@DIGEST
  regstore blob [--json] ROOT DIGEST|REPO@DIGEST
  regstore inspect [--json] ROOT [REPO...]
  regstore gc [--dry-run] [--delete-untagged] [--grace DURATION] [--exit-code] [--json] ROOT
  regstore check [--links-only] [--repair ACTION,...] [--dry-run] [--json] ROOT
  regstore du [--json] ROOT [REPO...]
  regstore purge-uploads --older-than DURATION [--dry-run] [--json] ROOT
  regstore rm [--dry-run] [--json] ROOT REPO[:TAG|@DIGEST]...
  regstore import-oci [--tag [REF=]TAG]... [--hardlink] [--json] ROOT REPO DIR
  regstore export-oci [--tag TAG]... [--untagged] [--json] ROOT REPO DIR
  regstore import-docker-archive [--tag REF=TAG]... [--uncompressed] [--json] ROOT REPO FILE.tar
  regstore import-skopeo-dir [--hardlink] [--json] ROOT REPO[:TAG] DIR
  regstore copy [--repo REPO]... [--tag REPO:TAG]... [--hardlink] [--json] SRC_ROOT DST_ROOT
  regstore import-v1 [--dry-run] [--oci] [--uncompressed] [--json] ROOT V1_PATH
  regstore serve [--addr 127.0.0.1:5000] [--read-only] [--delete] ROOT
  regstore prune [--policy FILE] [--keep-last N] [--keep-within DURATION] [--keep-tags REGEX]... [--repos GLOB]... [--dry-run] [--json] ROOT
  regstore version [--json]
  regstore help [COMMAND]

Commands:
  ls                     list the repositories, or a repository's tags
  manifest               print a manifest as stored
  blob                   write a blob's data to standard output
  inspect                what a registry would serve from the tree
  gc                     garbage-collect, as "registry garbage-collect" does
  check                  find (and with --repair, fix) damage in the tree
  du                     space used per repository and tag
  purge-uploads          remove abandoned upload sessions
  rm                     delete a tag, a manifest or a whole repository
  import-oci             import an OCI image layout into a repository
  export-oci             export a repository's tags as an OCI image layout
  import-docker-archive  import a "docker save" archive into a repository
  import-skopeo-dir      import a "skopeo copy ... dir:DIR" directory
  copy                   copy repositories from one tree to another
  import-v1              convert a legacy docker-registry (v1) storage tree
  serve                  serve the tree over the OCI distribution API
  prune                  remove tags by a retention policy (then run gc)
  version                print the version (also: regstore --version)

ROOT is the registry's rootdirectory (the folder holding docker/), or the
docker/registry/v2 folder itself. --config FILE (the registry's config.yml)
may replace ROOT, for every command but copy. Flags may follow the
arguments. Run "regstore COMMAND --help" for details, including each
command's JSON output.

Beside a running registry with a blob-descriptor cache: gc, rm REPO and
check --repair remove a redis cache's entries for what they remove; with an
inmemory cache they refuse unless --registry-restart-after (then restart it).

Long commands show a progress line on standard error when it is a terminal
(--progress and --no-progress override this).

Exit status: 0 on success; 1 when check finds problems a repair did not fix,
or gc --exit-code finds something to remove; 2 on a usage error or when the
tree cannot be read or changed; 130 when interrupted.
`

// A command is one subcommand. flags defines its flags on the flag set and
// returns the action that runs it.
type command struct {
	name, synopsis, help string
	// args names the positional arguments for error messages; min and max
	// bound their number (max < 0: no bound).
	args     string
	min, max int
	// progress: the command takes --progress and --no-progress.
	progress bool
	flags    func(*flag.FlagSet) action
}

// An action runs a command whose flags are parsed.
type action func(ctx context.Context, inv *invocation) error

// invocation is what an action works with.
type invocation struct {
	args     []string       // positional arguments, their number checked
	config   *config.Config // --config: args[0] is the tree it names
	restart  bool           // --registry-restart-after
	stdout   io.Writer      // buffered; flushed after the action
	stderr   io.Writer      // unbuffered: warnings
	progress *progress      // on standard error, when it is shown
}

// warnf prints a warning on standard error.
func (inv *invocation) warnf(format string, args ...any) {
	inv.progress.pause()
	fmt.Fprintf(inv.stderr, "warning: "+format+"\n", args...)
}

var commands []*command

func init() {
	commands = []*command{inspectCommand, gcCommand, checkCommand, duCommand, purgeCommand, rmCommand,
		importOCICommand, exportOCICommand, importDockerCommand, importSkopeoCommand, copyCommand,
		importV1Command, serveCommand, versionCommand,
		lsCommand, manifestCommand, blobCommand, pruneCommand,
	}
}

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usageText)
		return exitError
	}
	name, args := args[0], args[1:]
	switch name {
	case "-version", "--version":
		return versionCommand.run(ctx, args, stdout, stderr)
	case "help", "-h", "-help", "--help":
		if len(args) > 0 {
			if c := lookup(args[0]); c != nil {
				fset := newFlagSet(c)
				c.flags(fset)
				printCommandUsage(stdout, c, fset)
				return exitOK
			}
			fmt.Fprintf(stderr, "regstore: unknown command %q\n\n%s", args[0], usageText)
			return exitError
		}
		fmt.Fprint(stdout, usageText)
		return exitOK
	}
	c := lookup(name)
	if c == nil {
		fmt.Fprintf(stderr, "regstore: unknown command %q\n\n%s", name, usageText)
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
	addRestartFlag(fset, c.name)
	if rootCommands[c.name] {
		fset.String("config", "", "the registry's config.yml `FILE`, instead of ROOT: its storage (filesystem\nor s3), cache and read-only mode, with its REGISTRY_* environment overrides")
	}
	if c.progress {
		fset.Bool("progress", false, "show the progress line on standard error even when it is not a terminal")
		fset.Bool("no-progress", false, "never show the progress line")
	}
	return fset
}

func (c *command) run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fset := newFlagSet(c)
	act := c.flags(fset)
	pos, err := parseInterleaved(fset, args)
	err = flagError(err)
	if errors.Is(err, flag.ErrHelp) {
		printCommandUsage(stdout, c, fset)
		return exitOK
	}
	var cfg *config.Config
	if err == nil {
		cfg, pos, err = c.readConfig(fset, pos)
	}
	if err == nil {
		err = c.checkArgs(len(pos))
	}
	showProgress := isTerminal(stderr)
	if err == nil && c.progress {
		on, off := fset.Lookup("progress").Value.String() == "true", fset.Lookup("no-progress").Value.String() == "true"
		switch {
		case on && off:
			err = errors.New("--progress and --no-progress are exclusive")
		case on:
			showProgress = true
		case off:
			showProgress = false
		}
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
	inv := &invocation{args: pos, config: cfg, restart: flagSet(fset, restartFlag), stdout: bw, stderr: stderr,
		progress: newProgress(stderr, c.progress && showProgress, c.name)}
	err = act(ctx, inv)
	inv.progress.finish()
	if ferr := bw.Flush(); err == nil || errors.Is(err, errFound) {
		err = cmpErr(err, ferr)
	}
	var usageErr usageError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, errFound):
		return exitFound
	case ctx.Err() != nil:
		// Whatever the error says, it comes from the interruption.
		fmt.Fprintf(stderr, "regstore %s: interrupted\n", c.name)
		return exitInterrupted
	case errors.As(err, &usageErr):
		fmt.Fprintf(stderr, "regstore %s: %v\nUsage: regstore %s\nRun \"regstore %s --help\" for details.\n", c.name, err, c.synopsis, c.name)
		return exitError
	default:
		fmt.Fprintf(stderr, "regstore %s: %v\n", c.name, err)
		return exitError
	}
}

// cmpErr is err, unless the output could not be written.
func cmpErr(err, flushErr error) error {
	if flushErr != nil {
		return flushErr
	}
	return err
}

// usageError is a usage mistake found by an action (a bad flag value); it
// is reported with the synopsis.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error { return usageError{fmt.Sprintf(format, args...)} }

func (c *command) checkArgs(n int) error {
	if n >= c.min && (c.max < 0 || n <= c.max) {
		return nil
	}
	if c.min == 1 && c.max == 1 {
		return fmt.Errorf("want exactly one %s, got %d arguments", c.args, n)
	}
	return fmt.Errorf("want %s, got %d arguments", c.args, n)
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
		if f.DefValue != "" && f.DefValue != "false" && f.DefValue != "0" && f.DefValue != "0s" && f.DefValue != "[]" {
			fmt.Fprintf(&b, " (default %s)", f.DefValue)
		}
		b.WriteString("\n")
	})
	if b.Len() > 0 {
		fmt.Fprintf(w, "\nFlags:\n%s", b.String())
	}
	fmt.Fprintf(w, "\nExit status: %s\n", exitHelp[c.name])
}

// exitHelp is the exit status paragraph of each command's help.
var exitHelp = map[string]string{
	"check": "0 when the tree is clean (or every problem was repaired), 1 when\nproblems remain, 2 on a usage or I/O error, 130 when interrupted.",
	"gc":    "0 on success, 1 with --exit-code when the plan removes something,\n2 on a usage or I/O error, 130 when interrupted.",
}

func init() {
	for _, c := range []string{"inspect", "du", "purge-uploads", "rm", "import-oci", "export-oci",
		"import-docker-archive", "import-skopeo-dir", "copy", "version", "ls", "manifest", "blob"} {
		exitHelp[c] = "0 on success, 2 on a usage or I/O error, 130 when interrupted."
	}
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
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	return fmt.Sprintf("%s (%d bytes)", shortBytes(n), n)
}

// shortBytes is n in binary units, rounded: "512 B", "1.2 MiB".
func shortBytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	v := float64(n) / float64(div)
	if v >= 1023.95 && exp < 5 { // would print as "1024.0"
		v, exp = v/unit, exp+1
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[exp])
}

// stringList is a flag that may be repeated; each value may also be a
// comma-separated list.
type stringList []string

func (l *stringList) String() string { return strings.Join(*l, ",") }

func (l *stringList) Set(v string) error {
	for s := range strings.SplitSeq(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// repeatable is a flag that may be repeated, each value taken whole.
type repeatable []string

func (l *repeatable) String() string { return strings.Join(*l, " ") }

func (l *repeatable) Set(v string) error {
	*l = append(*l, v)
	return nil
}

// plurals are the nouns whose plural is not the singular plus "s".
var plurals = map[string]string{"repository": "repositories", "entry": "entries"}

// count says "1 blob", "2 blobs", "0 repositories". A noun of several
// words takes the plural on its last word ("untagged manifest").
func count[N int | int64](n N, noun string) string {
	if n != 1 {
		head, last := "", noun
		if i := strings.LastIndexByte(noun, ' '); i >= 0 {
			head, last = noun[:i+1], noun[i+1:]
		}
		if p, ok := plurals[last]; ok {
			last = p
		} else {
			last += "s"
		}
		noun = head + last
	}
	return fmt.Sprintf("%d %s", n, noun)
}
