package interop

// Live soak (issue 10): the real v3 registry serves a tree on loopback and
// takes pushes and tag moves from crane in a loop, while regstore's garbage
// collection (gc.Mark + gc.Sweep, DeleteUntagged) runs again and again on the
// same tree through a Dir backend. Afterwards every tag pulls and validates
// (crane validate --remote downloads every blob and checks digests and
// diff_ids) and resolves to the digest its last successful push reported.
//
// The grace window. A real deployment keeps the default window (an hour)
// and relies on every push finishing well within it. Two collections model
// that here:
//
//   - The first round uses DefaultGrace on a tree whose seed content was
//     made two hours old (Chtimes through the Dir backend) before the pushes
//     started: an established registry with old garbage under the
//     production default. It must remove that garbage (asserted), while
//     pushes run, some of them re-using a layer that is part of it.
//   - Every later round uses a short window (REGSTORE_SOAK_GRACE, default
//     5s) scaled to the pushes: a push here takes well under a second on
//     loopback (the longest is logged), so the window is several times the
//     longest push, as an hour is to pushes of a few minutes. Each push
//     moves a rolling tag (r0..r3) and latest, so the image the tag left
//     becomes untagged and is collected once it is older than the window:
//     deletion is exercised for the whole soak, a few seconds behind the
//     pushes. Shared layers rotate (see soakPusher), so a layer is collected
//     and then pushed again while the registry may have just told a client
//     it exists. Shifting GCOptions.Now instead would be the same model,
//     less plainly.
//
// A push the registry refuses (say, a manifest naming a blob collected
// between the client's HEAD and its PUT) is a failed push, logged, not a
// broken one; a push crane reported as done must pull in full, right after
// it and at the end, for as long as a tag names it.
//
// REGSTORE_SOAK is the push loop's duration (default 60s under CI=true,
// 15s otherwise). A push slower than the window would be outside the model.

import (
	"archive/tar"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"maps"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/gc"
	"github.com/stretchr/testify/require"
)

// soakTags is the number of rolling tags per repository.
const soakTags = 4

// envDuration reads a Go duration from the environment, or def.
func envDuration(t testing.TB, name string, def time.Duration) time.Duration {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	require.NoError(t, err, "%s=%q", name, v)
	require.Positive(t, d, "%s=%q", name, v)
	return d
}

// soakPush is one push (crane append) and its tag moves.
type soakPush struct {
	repo, tag string
	digest    string        // reported by crane; "" when the push failed
	tags      []string      // tags set on it that succeeded (tag, then latest, keep-N)
	failed    []string      // tags whose setting failed or may have half-happened
	took      time.Duration // crane append alone
	shared    string        // digest of the shared layer, as the registry served it after the push
	rotating  bool          // the shared layer is a rotating one
	err       error
}

// soakPusher pushes new images to repo until the deadline, each of two
// layers, alternately Docker and OCI, tagged r<i%soakTags> and then latest.
// Every fifth push is also tagged keep-<i> and has the layer keep (never
// garbage); the others have a layer of rotate shared by both repositories,
// which one changes every period: a rotating layer is used for one period,
// becomes garbage once the images using it have lost their tags and aged
// past the window, is collected, and is pushed again two periods later —
// while the registry may still answer "exists" to a client's HEAD. The
// second layer is unique. It never touches t (it runs on its own
// goroutine).
func soakPusher(crane, host, repo, dir string, rotate []string, keep string, start time.Time, period time.Duration, deadline time.Time) ([]soakPush, error) {
	run := func(args ...string) (string, error) {
		ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
		defer cancel()
		cmd := exec.CommandContext(ctx, crane, args...)
		var out, all lockedBuffer
		cmd.Stdout, cmd.Stderr = multiWriter{&out, &all}, &all
		if err := cmd.Run(); err != nil {
			return out.String(), fmt.Errorf("crane %s: %w\n%s", strings.Join(args, " "), err, all.String())
		}
		return out.String(), nil
	}
	var pushes []soakPush
	for i := 0; time.Now().Before(deadline); i++ {
		name := strings.ReplaceAll(repo, "/", "-")
		unique := filepath.Join(dir, fmt.Sprintf("%s-%d.tar", name, i))
		if err := writeSoakLayer(unique, fmt.Sprintf("%s push %d\n", repo, i)); err != nil {
			return pushes, err
		}
		p := soakPush{repo: repo, tag: fmt.Sprintf("r%d", i%soakTags)}
		shared := rotate[int(time.Since(start)/period)%len(rotate)]
		if i%5 == 0 {
			shared = keep
		}
		args := []string{"append", "--insecure", "-t", host + "/" + repo + ":" + p.tag, "-f", shared, "-f", unique}
		if i%2 == 1 {
			args = append(args, "--oci-empty-base")
		}
		t0 := time.Now()
		out, err := run(args...)
		p.took = time.Since(t0)
		if m := pushedDigestRE.FindStringSubmatch(strings.TrimSpace(out)); err == nil && m != nil {
			p.digest = m[1]
			p.tags = append(p.tags, p.tag)
			p.rotating = i%5 != 0
			if p.shared, err = soakFirstLayer(host, repo, p.digest); err != nil {
				p.err = errors.Join(p.err, err)
			}
			ref := host + "/" + repo + "@" + p.digest
			more := []string{"latest"}
			if i%5 == 0 {
				more = append(more, fmt.Sprintf("keep-%d", i))
			}
			for _, tag := range more {
				if _, err := run("tag", "--insecure", ref, tag); err != nil {
					p.failed = append(p.failed, tag)
					p.err = errors.Join(p.err, err)
				} else {
					p.tags = append(p.tags, tag)
				}
			}
		} else {
			p.failed = append(p.failed, p.tag)
			p.err = errors.Join(err, fmt.Errorf("no digest in %q", out))
		}
		pushes = append(pushes, p)
		_ = os.Remove(unique)
	}
	return pushes, nil
}

// soakFirstLayer returns the digest of the first layer of the manifest
// repo@d, fetched from the registry.
func soakFirstLayer(host, repo, d string) (string, error) {
	req, err := http.NewRequest(http.MethodGet, "http://"+host+"/v2/"+repo+"/manifests/"+d, nil)
	if err != nil {
		return "", err
	}
	req.Header.Set("Accept", manifestAccept)
	resp, err := httpClient.Do(req)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	var m struct {
		Layers []struct {
			Digest string `json:"digest"`
		} `json:"layers"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != http.StatusOK || len(m.Layers) == 0 {
		return "", fmt.Errorf("GET %s@%s: %d, %v", repo, d, resp.StatusCode, err)
	}
	return m.Layers[0].Digest, nil
}

// writeSoakLayer writes an uncompressed tar holding one file.
func writeSoakLayer(path, content string) error {
	return soakWriteTar(path, map[string]string{"soak/file": content})
}

// soakWriteTar writes an uncompressed tar of files (name -> content),
// deterministically, as makeLayerTar does, without a testing.TB.
func soakWriteTar(path string, files map[string]string) (err error) {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer func() { err = errors.Join(err, f.Close()) }()
	tw := tar.NewWriter(f)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: n, Mode: 0o644,
			Size: int64(len(files[n])), ModTime: fixedMTime, Format: tar.FormatUSTAR}); err != nil {
			return err
		}
		if _, err := tw.Write([]byte(files[n])); err != nil {
			return err
		}
	}
	return tw.Close()
}

// soakGC is one collection round.
type soakGC struct {
	grace   time.Duration
	planned int   // blobs the plan listed
	deleted int   // of those, blobs whose data is gone afterwards
	bytes   int64 // their size
	revs    int   // revisions the plan listed (gc.Sweep may keep some, re-validated)
	gone    []digest.Digest
	err     error
}

// soakCollect plans and applies one collection and counts what went.
func soakCollect(ctx context.Context, s *regstore.Store, grace time.Duration) soakGC {
	g := soakGC{grace: grace}
	opts := gc.Options{DeleteUntagged: true, Grace: grace}
	plan, err := gc.Mark(ctx, s, opts)
	if err != nil {
		g.err = fmt.Errorf("gc.Mark: %w", err)
		return g
	}
	g.planned = len(plan.Blobs)
	for _, ds := range plan.Manifests {
		g.revs += len(ds)
	}
	sizes := map[digest.Digest]int64{}
	for _, d := range plan.Blobs {
		if fi, err := fs.Stat(s.FS(), s.Layout().BlobData(d)); err == nil {
			sizes[d] = fi.Size()
		}
	}
	if _, err := gc.Sweep(ctx, s, plan, opts); err != nil {
		g.err = fmt.Errorf("gc.Sweep: %w", err)
	}
	for _, d := range plan.Blobs {
		if _, err := fs.Stat(s.FS(), s.Layout().BlobData(d)); errors.Is(err, fs.ErrNotExist) {
			g.deleted++
			g.bytes += sizes[d]
			g.gone = append(g.gone, d)
		}
	}
	return g
}

func TestSoakLiveGC(t *testing.T) {
	crane := requireBinary(t, "crane")
	registryBinary(t, V3)
	def := 15 * time.Second
	if os.Getenv("CI") == "true" {
		def = 60 * time.Second
	}
	soak := envDuration(t, "REGSTORE_SOAK", def)
	grace := envDuration(t, "REGSTORE_SOAK_GRACE", 5*time.Second)
	start := time.Now()

	root := t.TempDir()
	reg := startRegistry(t, V3, root, RegistryOptions{})
	dir := t.TempDir()
	var pool []string // rotating layers 0..2, then the seed's and the keep layer
	for i := range 5 {
		p := filepath.Join(dir, fmt.Sprintf("pool-%d.tar", i))
		require.NoError(t, soakWriteTar(p, map[string]string{"pool/file": fmt.Sprintf("shared layer %d\n", i)}))
		pool = append(pool, p)
	}
	repos := []string{"soak/a", "soak/b"}

	// Seed: per repository, an image pushed to :old and then left
	// untagged by a second push to :old (its config and unique layer are
	// garbage, and its shared layer pool-0 too, which the first soak
	// pushes re-use), and :stable.
	type seedGarbage struct{ repo, manifest string }
	var garbage []seedGarbage
	var garbageBlobs []string
	expect := map[string]map[string]string{} // repo -> tag -> digest
	for _, repo := range repos {
		expect[repo] = map[string]string{}
		name := strings.ReplaceAll(repo, "/", "-")
		layer := func(s string) string {
			p := filepath.Join(dir, name+"-"+s+".tar")
			require.NoError(t, soakWriteTar(p, map[string]string{"seed/file": repo + " " + s + "\n"}))
			return p
		}
		old := craneAppend(t, reg.Ref(repo+":old"), false, pool[0], layer("old"))
		m := getManifest(t, reg.Host, repo, old)
		require.Equal(t, 200, m.Status)
		_, blobs, _ := manifestRefs(t, m.Body)
		garbage = append(garbage, seedGarbage{repo, old})
		garbageBlobs = append(garbageBlobs, blobs[0], blobs[2]) // config and the unique layer
		expect[repo]["old"] = craneAppend(t, reg.Ref(repo+":old"), true, pool[3], layer("new"))
		expect[repo]["stable"] = craneAppend(t, reg.Ref(repo+":stable"), false, pool[3], layer("stable"))
	}
	d, err := regstore.OpenDir(root)
	require.NoError(t, err)
	t.Cleanup(func() { d.Close() })
	s, err := regstore.Open(d)
	require.NoError(t, err)
	aged := 0
	old := time.Now().Add(-2 * gc.DefaultGrace)
	require.NoError(t, fs.WalkDir(d, ".", func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		aged++
		return d.Chtimes(p, old)
	}))
	t.Logf("seed: %d files made %s old", aged, 2*gc.DefaultGrace)

	// Pushes, one goroutine per repository, while the collections run here.
	pushStart := time.Now()
	deadline := pushStart.Add(soak)
	type result struct {
		pushes []soakPush
		err    error
	}
	results := make([]result, len(repos))
	var wg sync.WaitGroup
	for i, repo := range repos {
		wg.Go(func() {
			ps, err := soakPusher(crane, reg.Host, repo, dir, pool[:3], pool[4], pushStart, grace, deadline)
			results[i] = result{ps, err}
		})
	}
	pushersDone := make(chan struct{})
	go func() { wg.Wait(); close(pushersDone) }()

	ctx := context.Background()
	var rounds []soakGC
	collect := func(grace time.Duration) soakGC {
		g := soakCollect(ctx, s, grace)
		rounds = append(rounds, g)
		if g.err != nil {
			t.Errorf("GC round %d (grace %s) while pushes run: %v", len(rounds), grace, g.err)
		}
		return g
	}
	first := collect(gc.DefaultGrace)
	for _, g := range garbage {
		if st := headManifest(t, reg.Host, g.repo, g.manifest).Status; st != 404 {
			t.Errorf("the first collection (grace %s) left the old untagged manifest %s@%s (HEAD %d)", gc.DefaultGrace, g.repo, g.manifest, st)
		}
	}
	for _, b := range garbageBlobs {
		if _, err := fs.Stat(d, s.Layout().BlobData(digest.Digest(b))); !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("the first collection (grace %s) left old garbage blob %s (%v)", gc.DefaultGrace, b, err)
		}
	}
loop:
	for {
		select {
		case <-pushersDone:
			break loop
		case <-time.After(100 * time.Millisecond):
		}
		collect(grace)
	}
	duringRounds := len(rounds)
	// The last images a rolling tag left become collectable once older
	// than the window: collect once more when nothing writes.
	time.Sleep(grace + time.Second)
	last := collect(grace)

	// Every tag pulls, validates, and names its last successful push.
	var pushes []soakPush
	for i, r := range results {
		require.NoError(t, r.err, "pusher %s", repos[i])
		pushes = append(pushes, r.pushes...)
	}
	ok, failed, broken := 0, 0, 0
	var longest time.Duration
	ambiguous := map[string]bool{} // repo:tag whose last setting failed
	for _, p := range pushes {
		longest = max(longest, p.took)
		switch {
		case p.digest == "":
			failed++
			t.Logf("push %s:%s failed: %v", p.repo, p.tag, p.err)
		case p.shared == "":
			// Pulled by digest right after the push, while tagged.
			broken++
			t.Errorf("push %s:%s = %s did not pull right after it: %v", p.repo, p.tag, p.digest, p.err)
		default:
			ok++
		}
		for _, tag := range p.tags {
			expect[p.repo][tag] = p.digest
			delete(ambiguous, p.repo+":"+tag)
		}
		for _, tag := range p.failed {
			ambiguous[p.repo+":"+tag] = true
		}
	}
	verified := 0
	survived := map[string]bool{}
	for _, repo := range repos {
		for _, tag := range slices.Sorted(func(yield func(string) bool) {
			for k := range expect[repo] {
				if !yield(k) {
					return
				}
			}
		}) {
			want, ref := expect[repo][tag], reg.Ref(repo+":"+tag)
			_, all, err := runTool(t, crane, "validate", "--insecure", "--remote", ref)
			if err != nil {
				broken++
				t.Errorf("crane validate --remote %s (pushed as %s): %v\n%s", ref, want, err, all)
				continue
			}
			m := headManifest(t, reg.Host, repo, tag)
			got := m.Digest
			switch {
			case m.Status != 200:
				broken++
				t.Errorf("HEAD %s = %d after crane validated it", ref, m.Status)
			case got != want && !ambiguous[repo+":"+tag]:
				broken++
				t.Errorf("%s = %s, want %s (its last successful push)", ref, got, want)
			default:
				verified++
				survived[got] = true
			}
		}
	}
	if len(ambiguous) > 0 {
		t.Logf("tags whose last setting failed (any valid digest accepted): %v", slices.Sorted(func(yield func(string) bool) {
			for k := range ambiguous {
				if !yield(k) {
					return
				}
			}
		}))
	}

	// The tree holds nothing worse than removable leftovers.
	reg.Stop()
	st := killInspect(t, root)
	for _, p := range st.bad {
		t.Errorf("Check after the soak: %s: %s", p.Kind, p.Message)
	}

	var deleted, revs int
	var bytes int64
	goneAt := map[digest.Digest]int{} // blob -> times deleted
	for _, g := range rounds {
		deleted += g.deleted
		bytes += g.bytes
		revs += g.revs
		for _, b := range g.gone {
			goneAt[b]++
		}
	}
	// Blobs deleted and then pushed again: deleted twice, or present now.
	revived := 0
	for b, n := range goneAt {
		if _, err := fs.Stat(d, s.Layout().BlobData(b)); n > 1 || err == nil {
			revived++
		}
	}
	// The rotating layers: how often each was collected while in use
	// again later (the client may have been told it exists).
	rotating := map[string]bool{}
	for _, p := range pushes {
		if p.rotating && p.shared != "" {
			rotating[p.shared] = true
		}
	}
	rotations := 0
	for b := range rotating {
		rotations += goneAt[digest.Digest(b)]
	}
	if first.deleted == 0 {
		t.Errorf("the first collection (grace %s) deleted nothing: the seed garbage was not collected", gc.DefaultGrace)
	}
	if deleted-first.deleted == 0 {
		t.Errorf("no collection with the %s window deleted anything: the soak did not exercise deletion", grace)
	}
	if ok < 2*soakTags {
		t.Errorf("only %d pushes succeeded (%d failed): the soak exercised too little", ok, failed)
	}
	t.Logf("SOAK %s: %d pushes (%d failed), longest push %s (grace %s); %d GC rounds (%d while pushing; the first, grace %s, deleted %d blobs), "+
		"%d revisions planned and %d blobs (%d bytes) deleted in all (%d of them pushed again after; the %d rotating layers collected %d times), the last round %d; %d tags verified, %d distinct pushes survived; %d broken pulls; %d removable leftovers; took %s",
		soak, len(pushes), failed, longest.Round(time.Millisecond), grace, len(rounds), duringRounds, gc.DefaultGrace, first.deleted,
		revs, deleted, bytes, revived, len(rotating), rotations, last.deleted, verified, len(survived), broken, st.leftovers, time.Since(start).Round(time.Millisecond))
}
