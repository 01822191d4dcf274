package interop

// Process-level crash consistency (issue 10): the regstore CLI, built once,
// runs gc, import-oci and copy and is killed with SIGKILL at a seeded random
// moment. After each kill the tree must hold nothing worse than removable
// leftovers, no link may name data that is missing, the real v3 registry
// (read-only on the tree) must serve every tag it held before, and every tag
// it holds now, in full; re-running the command must give the same tree as
// an uninterrupted run.
//
// REGSTORE_KILL_ROUNDS sets the rounds per command (default 6) and
// REGSTORE_KILL_SEED the seed (default 10). The seed picks each kill's
// moment as a fraction of the command's uninterrupted duration (the faster
// of two runs on this machine), or of the part after its first change to
// the tree, so the same seed kills at about the same points of the work,
// not at the same microsecond.

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/require"
)

// killAllowed are the problems a kill may leave: Check's documented
// removable leftovers.
var killAllowed = map[check.ProblemKind]bool{
	check.TempFileLeft:  true,
	check.BlobOrphan:    true,
	check.GCInterrupted: true,
	// A tag directory whose current link a killed tag write had not
	// written yet, or a killed tag delete had already removed.
	check.TagWithoutCurrent: true,
}

// killDangling are the problems meaning "a pointer names missing data".
var killDangling = map[check.ProblemKind]bool{
	check.BlobMissing:      true,
	check.ReferenceMissing: true,
	check.TagUnresolvable:  true,
}

// envInt reads a positive integer from the environment, or def.
func envInt(t testing.TB, name string, def int) int {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	require.NoError(t, err, "%s=%q", name, v)
	require.Positive(t, n, "%s=%q", name, v)
	return n
}

// buildRegstoreCLI builds the cmd/regstore module (with its workspace,
// which uses this checkout's modules) into a temporary directory and
// returns the binary's path.
func buildRegstoreCLI(t testing.TB) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "regstore")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "go", "build", "-o", bin, ".")
	cmd.Dir = "../cmd/regstore" // its own module; its go.work uses this checkout
	out, err := cmd.CombinedOutput()
	require.NoError(t, err, "go build ./cmd/regstore:\n%s", out)
	return bin
}

// killCase is one command under test.
type killCase struct {
	name string
	tmpl *regstore.MemFS // the tree the command starts from (ROOT or DST_ROOT)
	// args is the command line for a fresh copy of tmpl; round r runs mode
	// r % modes (modes 0 means 1).
	args  func(root string, mode int) []string
	modes int
}

// killStats is what the rounds of one command did.
type killStats struct {
	rounds      int
	midRun      int // the kill found the process running (it died of SIGKILL)
	interrupted int // ... and left the tree neither as before nor as after a full run (temporary files aside)
	leftovers   int // removable problems found after kills
	violations  int
	tagsServed  int // tag pulls through the registry after kills
}

func TestKillCLI(t *testing.T) {
	registryBinary(t, V3)
	requireBinary(t, "crane")
	rounds := envInt(t, "REGSTORE_KILL_ROUNDS", 6)
	seed := uint64(envInt(t, "REGSTORE_KILL_SEED", 10))
	start := time.Now()
	bin := buildRegstoreCLI(t)

	gcTree := killGCTemplate(t)
	dstTree := killDstTemplate(t)
	srcRoot, layout := killBigSource(t, bin)
	t.Logf("fixtures built in %s (seed %d, %d rounds per command)", time.Since(start).Round(time.Millisecond), seed, rounds)

	cases := []killCase{
		// Rounds alternate two collections of a tree older than an hour:
		// with no grace window (--grace=-1s) blobs are removed at once;
		// with the default window (1h) blob data is first moved aside
		// under a journal, which a kill may interrupt.
		{name: "gc", tmpl: gcTree, modes: 2, args: func(root string, mode int) []string {
			return []string{"gc", []string{"--grace=-1s", "--grace=1h"}[mode], "--delete-untagged", "--no-progress", root}
		}},
		{name: "import-oci", tmpl: dstTree, args: func(root string, _ int) []string {
			return []string{"import-oci", "--no-progress", root, "imported/app", layout}
		}},
		{name: "copy", tmpl: dstTree, args: func(root string, _ int) []string {
			return []string{"copy", "--no-progress", srcRoot, root}
		}},
	}
	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			st := runKillCase(t, bin, c, rounds, rand.New(rand.NewPCG(seed, uint64(i))))
			t.Logf("KILL %s: %d rounds, %d kills mid-run (%d left the tree part-way), %d removable leftovers, %d tag pulls served, %d invariant violations",
				c.name, st.rounds, st.midRun, st.interrupted, st.leftovers, st.tagsServed, st.violations)
		})
	}
	t.Logf("TestKillCLI took %s", time.Since(start).Round(time.Millisecond))
}

func runKillCase(t *testing.T, bin string, c killCase, rounds int, rng *rand.Rand) killStats {
	var st killStats
	violation := func(format string, args ...any) {
		t.Helper()
		st.violations++
		t.Errorf(format, args...)
	}

	// An uninterrupted run per mode: its duration bounds the kill moments,
	// its tree is what every re-run must give.
	modes := max(c.modes, 1)
	before := killInspect(t, killFreshTree(t, c.tmpl))
	require.Empty(t, before.bad, "fixture has problems")
	beforeSnap := killSnapshot(t, killFreshTree(t, c.tmpl))
	durs := make([]time.Duration, modes)
	firsts := make([]time.Duration, modes) // when the first file appeared or went
	wants := make([]map[string]string, modes)
	dones := make([]*killState, modes)
	for mode := range modes {
		// Twice: the faster run bounds the kills (a first run may be
		// slowed by a cold cache), and both must leave the same tree.
		for run := range 2 {
			ref := killFreshTree(t, c.tmpl)
			stop := make(chan struct{})
			first := make(chan time.Time, 1)
			go killWatch(ref, stop, first)
			t0 := time.Now()
			res := killRun(bin, c.args(ref, mode), time.Hour, "")
			took := res.took
			close(stop)
			require.False(t, res.signaled)
			require.NoError(t, res.err, "uninterrupted %v:\n%s", c.args(ref, mode), res.out)
			snap := killSnapshot(t, ref)
			if run == 0 {
				wants[mode] = snap
				dones[mode] = killInspect(t, ref)
				require.Empty(t, dones[mode].bad, "problems after an uninterrupted %v", c.args(ref, mode))
				require.NotEqual(t, beforeSnap, snap, "%v changes nothing: nothing to interrupt", c.args(ref, mode))
			} else {
				require.True(t, killEqual(wants[mode], snap), "two uninterrupted runs of %v differ:\n%s", c.args(ref, mode), killDiff(snap, wants[mode]))
			}
			at := <-first
			if run == 0 || took < durs[mode] {
				durs[mode], firsts[mode] = took, 0
				if !at.IsZero() {
					firsts[mode] = min(at.Sub(t0), took)
				}
			}
		}
		t.Logf("uninterrupted %s: %s (first file published or removed at %s), %d files before, %d after",
			strings.Join(c.args("ROOT", mode), " "), durs[mode].Round(time.Millisecond),
			firsts[mode].Round(time.Millisecond), len(beforeSnap), len(wants[mode]))
	}

	// tails[mode] is the part of the run after the first change.
	tails := make([]time.Duration, modes)
	for mode := range modes {
		tails[mode] = durs[mode] - firsts[mode]
	}
	for round := range rounds {
		st.rounds++
		mode := round % modes
		dur, tail, want, done := durs[mode], tails[mode], wants[mode], dones[mode]
		root := killFreshTree(t, c.tmpl)
		// Every other round (or pair of rounds, with two modes) the kill
		// lands anywhere in the run (a fraction of the uninterrupted run's
		// duration from the start); the others land while the command
		// publishes or removes (a fraction of the rest of the run after
		// the first file appeared or went, as watched). Writers that stage
		// everything and then publish spend most of their time before
		// that point. A run the kill missed (fsync latency varies) ended
		// sooner than expected: its duration (or tail) bounds the next
		// kills of the mode.
		frac := rng.Float64()
		var delay time.Duration
		watch, when := "", "from the start"
		if (round/modes)%2 == 0 {
			delay = time.Duration(frac * float64(dur))
		} else {
			delay = time.Duration(frac * float64(tail))
			watch, when = root, "after the first change"
		}
		res := killRun(bin, c.args(root, mode), delay, watch)
		signaled := res.signaled
		if !signaled {
			require.NoError(t, res.err, "round %d: %s exited on its own with an error:\n%s", round, c.name, res.out)
			durs[mode] = min(durs[mode], res.took)
			if res.tail > 0 {
				tails[mode] = min(tails[mode], res.tail)
			}
		}
		after := killInspect(t, root)
		snap := killSnapshot(t, root)
		if signaled {
			st.midRun++
			if !killEqual(snap, beforeSnap) && !killEqual(snap, want) {
				st.interrupted++
			}
		}
		what := fmt.Sprintf("round %d (%s, kill %s %s (run %s, after the first change %s), mid-run %v)", round,
			strings.Join(c.args("ROOT", mode), " "), delay.Round(time.Millisecond), when,
			dur.Round(time.Millisecond), tail.Round(time.Millisecond), signaled)

		kinds := map[check.ProblemKind]int{}
		for _, p := range after.removable {
			kinds[p.Kind]++
		}
		t.Logf("%s: %d files (before %d, complete %d), leftovers %v", what, len(snap), len(beforeSnap), len(want), kinds)

		// Nothing worse than removable leftovers; no new dangling pointer.
		for _, p := range after.bad {
			violation("%s: Check after the kill: %s: %s", what, p.Kind, p.Message)
		}
		st.leftovers += after.leftovers
		for k := range after.dangling {
			if !before.dangling[k] {
				violation("%s: a link names data that is missing: %s", what, k)
			}
		}
		// No tag lost or moved.
		for ref, d := range before.tags {
			if after.tags[ref] != d {
				violation("%s: tag %s was %s before the kill, now %q", what, ref, d, after.tags[ref])
			}
		}

		// The real registry serves every tag the tree holds, in full.
		reg := startRegistry(t, V3, root, RegistryOptions{ReadOnly: true})
		refs := slices.Sorted(func(yield func(string) bool) {
			for r := range after.tags {
				if !yield(r) {
					return
				}
			}
		})
		verified := map[string]bool{}
		for _, ref := range refs {
			repo, tag, _ := strings.Cut(ref, ":")
			for _, msg := range killServe(t, reg.Host, repo, tag, after.tags[ref], verified) {
				violation("%s: %s", what, msg)
			}
			st.tagsServed++
		}
		if len(refs) > 0 {
			ref := refs[rng.IntN(len(refs))]
			if _, all, err := runTool(t, requireBinary(t, "crane"), "validate", "--insecure", "--remote", reg.Ref(ref)); err != nil {
				violation("%s: crane validate --remote %s: %v\n%s", what, ref, err, all)
			}
		}
		reg.Stop()

		// Running the command again completes it: the tree is as after an
		// uninterrupted run (temporary files aside).
		res = killRun(bin, c.args(root, mode), time.Hour, "")
		require.False(t, res.signaled)
		if res.err != nil {
			violation("%s: re-running %s: %v\n%s", what, c.name, res.err, res.out)
			continue
		}
		if got := killSnapshot(t, root); !killEqual(got, want) {
			violation("%s: after the re-run the tree differs from an uninterrupted run:\n%s", what, killDiff(got, want))
		}
		final := killInspect(t, root)
		for _, p := range final.bad {
			violation("%s: Check after the re-run: %s: %s", what, p.Kind, p.Message)
		}
		for _, p := range final.removable {
			if p.Kind != check.TempFileLeft && !done.hasRemovable(p) {
				violation("%s: Check after the re-run finds %s, which an uninterrupted run does not leave: %s", what, p.Kind, p.Message)
			}
		}
	}
	if rounds >= 3 && st.midRun == 0 {
		t.Errorf("no kill of %d landed while %s ran: the test exercised nothing", rounds, c.name)
	}
	return st
}

// killWatch lists the files of root (temporary ones aside) every few
// milliseconds until stop is closed, and sends when the list first
// differed from the first one (the zero time if it never did).
func killWatch(root string, stop <-chan struct{}, first chan<- time.Time) {
	names := func() map[string]bool {
		m := map[string]bool{}
		_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
			if err == nil && !d.IsDir() && !strings.HasSuffix(p, ".tmp") {
				m[p] = true
			}
			return nil
		})
		return m
	}
	start := names()
	for {
		select {
		case <-stop:
			first <- time.Time{}
			return
		case <-time.After(2 * time.Millisecond):
		}
		now := names()
		if len(now) != len(start) {
			first <- time.Now()
			return
		}
		for p := range now {
			if !start[p] {
				first <- time.Now()
				return
			}
		}
	}
}

// killResult is how one run of the CLI ended.
type killResult struct {
	signaled bool   // the kill found it running: it died of SIGKILL
	out      string // stdout and stderr
	err      error  // how it exited, when not signaled
	took     time.Duration
	// tail is, for a watched run that ended on its own, the time from the
	// first change of the tree to its exit.
	tail time.Duration
}

// killRun runs the CLI and kills it with SIGKILL delay after it started
// or, when watch is set, delay after the first file of watch (temporary
// ones aside) appeared or went.
func killRun(bin string, args []string, delay time.Duration, watch string) killResult {
	cmd := exec.Command(bin, args...)
	var buf lockedBuffer
	cmd.Stdout, cmd.Stderr = &buf, &buf
	var changed chan time.Time
	stop := make(chan struct{})
	defer close(stop)
	if watch != "" {
		changed = make(chan time.Time, 1)
		go killWatch(watch, stop, changed)
	}
	t0 := time.Now()
	if err := cmd.Start(); err != nil {
		return killResult{err: err}
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	var kill <-chan time.Time
	if changed == nil {
		kill = time.After(delay)
	}
	var changedAt time.Time
	hang := time.NewTimer(cmdTimeout)
	defer hang.Stop()
	for {
		select {
		case err := <-exited:
			r := killResult{out: buf.String(), err: err, took: time.Since(t0)}
			if !changedAt.IsZero() {
				r.tail = time.Since(changedAt)
			}
			return r
		case at := <-changed:
			changedAt = at
			kill = time.After(delay - time.Since(at))
			continue
		case <-kill:
		case <-hang.C:
			_ = cmd.Process.Kill()
			<-exited
			return killResult{out: buf.String(), err: fmt.Errorf("%s %v did not finish within %s", bin, args, cmdTimeout)}
		}
		break
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	err := <-exited
	r := killResult{out: buf.String(), err: err, took: time.Since(t0)}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() && ws.Signal() == syscall.SIGKILL {
		r.signaled, r.err = true, nil
	}
	return r
}

// killState is what the library sees in a tree.
type killState struct {
	tags      map[string]digest.Digest // "repo:tag" -> current link
	bad       []check.Problem          // problems that are not removable leftovers
	removable []check.Problem
	leftovers int
	dangling  map[string]bool // "kind path -> target" of dangling pointers
}

func (s *killState) hasRemovable(p check.Problem) bool {
	return slices.ContainsFunc(s.removable, func(q check.Problem) bool { return q.Kind == p.Kind && q.Path == p.Path })
}

// killInspect reads root's tags and runs the full integrity check.
func killInspect(t testing.TB, root string) *killState {
	t.Helper()
	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	defer d.Close()
	s, err := regstore.Open(d)
	require.NoError(t, err)
	st := &killState{tags: map[string]digest.Digest{}, dangling: map[string]bool{}}
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		for tag, err := range r.Tags() {
			require.NoError(t, err)
			if dg, err := tag.Digest(); err == nil {
				st.tags[r.Name()+":"+tag.Name()] = dg
			}
		}
	}
	for p, err := range check.Problems(context.Background(), s, check.Options{Workers: 2}) {
		require.NoError(t, err)
		if killDangling[p.Kind] {
			st.dangling[fmt.Sprintf("%s %s -> %s", p.Kind, p.Path, p.Target)] = true
		}
		if killAllowed[p.Kind] {
			st.removable = append(st.removable, p)
			st.leftovers++
			continue
		}
		st.bad = append(st.bad, p)
	}
	return st
}

// killServe pulls repo:tag through the registry at host as a client does:
// the manifest by tag (its digest must be want), then every blob and child
// manifest it references, each checked against its digest. verified
// remembers what was checked already ("repo@digest").
func killServe(t testing.TB, host, repo, tag string, want digest.Digest, verified map[string]bool) []string {
	t.Helper()
	var msgs []string
	m := getManifest(t, host, repo, tag)
	if m.Status != http.StatusOK {
		return []string{fmt.Sprintf("GET %s:%s = %d, want 200: %s", repo, tag, m.Status, m.Body)}
	}
	if got := digestOf(m.Body); got != want.String() || m.Digest != want.String() {
		return []string{fmt.Sprintf("GET %s:%s = %s (header %s), want %s", repo, tag, got, m.Digest, want)}
	}
	var pull func(body []byte, depth int)
	pull = func(body []byte, depth int) {
		_, blobs, children := manifestRefs(t, body)
		for _, b := range blobs {
			if verified[repo+"@"+b] {
				continue
			}
			verified[repo+"@"+b] = true
			if status, got, err := killFetchBlob(host, repo, b); err != nil || status != http.StatusOK || got != b {
				msgs = append(msgs, fmt.Sprintf("%s:%s: GET blob %s = %d, %s, %v", repo, tag, b, status, got, err))
			}
		}
		for _, c := range children {
			if verified[repo+"@"+c] || depth > 4 {
				continue
			}
			verified[repo+"@"+c] = true
			cm := getManifest(t, host, repo, c)
			if cm.Status != http.StatusOK || digestOf(cm.Body) != c {
				msgs = append(msgs, fmt.Sprintf("%s:%s: GET child manifest %s = %d", repo, tag, c, cm.Status))
				continue
			}
			pull(cm.Body, depth+1)
		}
	}
	pull(m.Body, 0)
	return msgs
}

// killFetchBlob downloads a blob, hashing it as it streams.
func killFetchBlob(host, repo, d string) (status int, got string, err error) {
	resp, err := httpClient.Get("http://" + host + "/v2/" + repo + "/blobs/" + d)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(h, resp.Body, make([]byte, 64<<10)); err != nil {
		return resp.StatusCode, "", err
	}
	return resp.StatusCode, fmt.Sprintf("sha256:%x", h.Sum(nil)), nil
}

// killSnapshot lists root's files but temporary ones: link and other small
// files with their content, blob data with its size (Check re-hashes it).
func killSnapshot(t testing.TB, root string) map[string]string {
	t.Helper()
	snap := map[string]string{}
	require.NoError(t, filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".tmp") {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		rel = filepath.ToSlash(rel)
		if base := d.Name(); base == "data" || base == "data.gc" {
			fi, err := d.Info()
			if err != nil {
				return err
			}
			snap[rel] = "size " + strconv.FormatInt(fi.Size(), 10)
			return nil
		}
		b, err := os.ReadFile(p)
		snap[rel] = string(b)
		return err
	}))
	return snap
}

func killEqual(a, b map[string]string) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// killDiff describes how got differs from want (at most 20 lines).
func killDiff(got, want map[string]string) string {
	var lines []string
	for k, v := range got {
		if w, ok := want[k]; !ok {
			lines = append(lines, "+ "+k)
		} else if w != v {
			lines = append(lines, fmt.Sprintf("~ %s: %q, want %q", k, v, w))
		}
	}
	for k := range want {
		if _, ok := got[k]; !ok {
			lines = append(lines, "- "+k)
		}
	}
	slices.Sort(lines)
	if len(lines) > 20 {
		lines = append(lines[:20], fmt.Sprintf("... %d more", len(lines)-20))
	}
	return strings.Join(lines, "\n")
}

// killFreshTree copies tmpl into a new directory and returns it.
func killFreshTree(t testing.TB, tmpl *regstore.MemFS) string {
	t.Helper()
	root := filepath.Join(t.TempDir(), "root")
	require.NoError(t, regstoretest.WriteTree(tmpl, root))
	return root
}

// killAge makes every file of m three hours old: older than the default
// grace window.
func killAge(t testing.TB, m *regstore.MemFS) {
	t.Helper()
	old := time.Now().Add(-3 * time.Hour)
	require.NoError(t, fs.WalkDir(m, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		return m.Chtimes(p, old)
	}))
}

// killGCTemplate is a tree with plenty to collect: 8 repositories of 12
// images each, 9 of them untagged (only in their tag's history), small
// blobs, a quarter of the layers shared. It is three hours old.
func killGCTemplate(t testing.TB) *regstore.MemFS {
	t.Helper()
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	stats, err := regstoretest.Generate(s, regstoretest.GenerateOptions{
		Repositories: 8, TagsPerRepo: 3, ManifestsPerRepo: 12, LayersPerManifest: 3,
		SharedFraction: 0.25, UntaggedFraction: 0.75, BlobSize: 512, Seed: 1,
	})
	require.NoError(t, err)
	t.Logf("gc tree: %d repositories, %d manifests (%d untagged), %d blobs", stats.Repositories, stats.Manifests, stats.UntaggedManifests, stats.Blobs)
	killAge(t, m)
	return m
}

// killDstTemplate is the small tree import-oci and copy write into: two
// repositories (org000/app000, org000/app001) whose tags must survive.
func killDstTemplate(t testing.TB) *regstore.MemFS {
	t.Helper()
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	_, err = regstoretest.Generate(s, regstoretest.GenerateOptions{
		Repositories: 2, TagsPerRepo: 2, ManifestsPerRepo: 2, LayersPerManifest: 1, BlobSize: 256, Seed: 2,
	})
	require.NoError(t, err)
	return m
}

// Sizes of the big source: enough that import-oci and copy take a while
// (each blob is written to a temporary file, fsynced and renamed).
const (
	killLayers    = 24
	killLayerSize = 2560 << 10
)

// killWriteLayer streams a valid gzipped tar layer holding size
// pseudo-random bytes (AES-CTR keyed by seed) to a file in dir and returns
// the file, its digest and size, and the digest of the uncompressed tar.
// The gzip stores rather than compresses (random bytes do not compress);
// nothing is held in memory, which the race detector makes costly.
func killWriteLayer(t testing.TB, dir string, seed uint64, size int) (p string, d digest.Digest, n int64, diffID digest.Digest) {
	t.Helper()
	p = filepath.Join(dir, fmt.Sprintf("layer-%d.tar.gz", seed))
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	zh, th := sha256.New(), sha256.New()
	cw := &countWriter{}
	zw, err := gzip.NewWriterLevel(io.MultiWriter(f, zh, cw), gzip.NoCompression)
	require.NoError(t, err)
	tw := tar.NewWriter(io.MultiWriter(zw, th))
	require.NoError(t, tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("data-%d", seed), Mode: 0o644,
		Size: int64(size), Typeflag: tar.TypeReg, ModTime: fixedMTime, Format: tar.FormatPAX}))
	var key [16]byte
	binary.BigEndian.PutUint64(key[:], seed)
	block, err := aes.NewCipher(key[:])
	require.NoError(t, err)
	ctr := cipher.NewCTR(block, make([]byte, aes.BlockSize))
	zero, buf := make([]byte, 64<<10), make([]byte, 64<<10)
	for left := size; left > 0; left -= len(buf) {
		buf = buf[:min(len(buf), left)]
		ctr.XORKeyStream(buf, zero[:len(buf)])
		_, err := tw.Write(buf)
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
	return p, digest.NewDigest(digest.SHA256, zh), cw.n, digest.NewDigest(digest.SHA256, th)
}

type countWriter struct{ n int64 }

func (c *countWriter) Write(p []byte) (int, error) { c.n += int64(len(p)); return len(p), nil }

// killPushFiles stores an image made of the layer files in r (blobs,
// config, manifest) and tags it; docker picks Docker schema2 media types.
func killPushFiles(t testing.TB, r *regstore.Repository, docker bool, layers []killLayerFile, tags ...string) digest.Digest {
	t.Helper()
	mt, configMT, layerMT := regstore.MediaTypeOCIManifest, v1.MediaTypeImageConfig, v1.MediaTypeImageLayerGzip
	if docker {
		mt, configMT, layerMT = regstore.MediaTypeDockerManifest, regstoretest.MediaTypeDockerConfig, regstoretest.MediaTypeDockerLayer
	}
	cfg := v1.Image{Platform: v1.Platform{OS: "linux", Architecture: "amd64"}, RootFS: v1.RootFS{Type: "layers"}}
	man := v1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: mt}
	for _, l := range layers {
		f, err := os.Open(l.path)
		require.NoError(t, err)
		_, err = r.PutBlob(f, l.digest, l.size)
		f.Close()
		require.NoError(t, err)
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.diffID)
		man.Layers = append(man.Layers, v1.Descriptor{MediaType: layerMT, Digest: l.digest, Size: l.size})
	}
	raw, err := json.Marshal(cfg)
	require.NoError(t, err)
	cb, err := r.PutBlob(bytes.NewReader(raw), "", -1)
	require.NoError(t, err)
	man.Config = v1.Descriptor{MediaType: configMT, Digest: cb.Digest(), Size: cb.Size()}
	raw, err = json.Marshal(man)
	require.NoError(t, err)
	m, err := r.PutManifest(mt, raw, tags...)
	require.NoError(t, err)
	return m.Digest()
}

type killLayerFile struct {
	path           string
	digest, diffID digest.Digest
	size           int64
}

// killBigSource writes the source of copy and import-oci below a new
// directory: a tree with big/app (tags v1..v6 of three layers each, one
// layer shared by all, half of them Docker schema2, plus an untagged image)
// and big/tools (tag 1.0, sharing that layer), killLayers layers of
// killLayerSize in all; and big/app exported by the CLI as an OCI image
// layout (tags as ref names, the untagged image as an unnamed entry).
func killBigSource(t testing.TB, bin string) (root, layout string) {
	t.Helper()
	dir := t.TempDir()
	var layers []killLayerFile
	for i := range killLayers {
		p, d, n, diffID := killWriteLayer(t, dir, uint64(i+1), killLayerSize)
		layers = append(layers, killLayerFile{p, d, diffID, n})
	}
	root = filepath.Join(dir, "src")
	s := openStore(t, root)
	app, tools := storeRepo(t, s, "big/app"), storeRepo(t, s, "big/tools")
	shared, rest := layers[0], layers[1:]
	next := func(k int) []killLayerFile {
		out := append([]killLayerFile{shared}, rest[:k]...)
		rest = rest[k:]
		return out
	}
	killPushFiles(t, app, false, next(2)) // untagged
	for i := 1; len(rest) > 3; i++ {
		killPushFiles(t, app, i%2 == 0, next(2), "v"+strconv.Itoa(i))
	}
	killPushFiles(t, tools, false, next(len(rest)), "1.0")

	layout = filepath.Join(dir, "layout")
	res := killRun(bin, []string{"export-oci", "--untagged", "--no-progress", root, "big/app", layout}, time.Hour, "")
	require.False(t, res.signaled)
	require.NoError(t, res.err, "export-oci:\n%s", res.out)
	return root, layout
}
