package interop

import (
	"archive/tar"
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// runTool runs a peer binary with a 60 s timeout and returns stdout, the
// combined output (stdout and stderr interleaved) and the error.
func runTool(t testing.TB, bin string, args ...string) (stdout, combined string, err error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), cmdTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Dir = t.TempDir()
	var out, all lockedBuffer
	cmd.Stdout = multiWriter{&out, &all}
	cmd.Stderr = &all
	err = cmd.Run()
	if ctx.Err() != nil {
		err = errors.Join(err, ctx.Err())
	}
	return out.String(), all.String(), err
}

type multiWriter []interface{ Write([]byte) (int, error) }

func (m multiWriter) Write(p []byte) (int, error) {
	for _, w := range m {
		if _, err := w.Write(p); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

// mustTool is runTool that fails the test (showing the combined output)
// unless the command succeeds; it returns stdout.
func mustTool(t testing.TB, peerName string, args ...string) string {
	t.Helper()
	bin := requireBinary(t, peerName)
	out, all, err := runTool(t, bin, args...)
	require.NoError(t, err, "%s %s\n%s", peerName, strings.Join(args, " "), all)
	return out
}

// fixedMTime is the mtime of every file in test layers, so that layer
// digests are stable across runs.
var fixedMTime = time.Date(2020, 1, 1, 0, 0, 0, 0, time.UTC)

// makeLayerTar writes dir/name, an uncompressed tar of files (path ->
// content), deterministically: sorted entries, fixed mtime, uid/gid 0,
// mode 0644. Parent directories are not added as entries.
func makeLayerTar(t testing.TB, dir, name string, files map[string]string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	f, err := os.Create(p)
	require.NoError(t, err)
	defer f.Close()
	tw := tar.NewWriter(f)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		require.NoError(t, tw.WriteHeader(&tar.Header{
			Typeflag: tar.TypeReg, Name: n, Mode: 0o644, Size: int64(len(files[n])),
			ModTime: fixedMTime, Format: tar.FormatUSTAR,
		}))
		_, err := tw.Write([]byte(files[n]))
		require.NoError(t, err)
	}
	require.NoError(t, tw.Close())
	require.NoError(t, f.Close())
	return p
}

var pushedDigestRE = regexp.MustCompile(`@(sha256:[0-9a-f]{64})\s*$`)

// digestFromCraneOutput takes the "HOST/repo@sha256:..." line crane prints
// after a push.
func digestFromCraneOutput(t testing.TB, out string) string {
	t.Helper()
	m := pushedDigestRE.FindStringSubmatch(strings.TrimSpace(out))
	require.NotNil(t, m, "no pushed digest in crane output %q", out)
	return m[1]
}

// craneAppend builds an image from layer tarballs on an empty base and
// pushes it to ref ("HOST/repo:tag"). oci=false gives Docker schema2 media
// types (crane's default), oci=true uses --oci-empty-base. Returns the
// manifest digest.
func craneAppend(t testing.TB, ref string, oci bool, layers ...string) string {
	t.Helper()
	args := []string{"append", "--insecure", "-t", ref}
	for _, l := range layers {
		args = append(args, "-f", l)
	}
	if oci {
		args = append(args, "--oci-empty-base")
	}
	return digestFromCraneOutput(t, mustTool(t, "crane", args...))
}

// craneSetPlatform rewrites the image at ref with config os/arch set to
// platform ("linux/arm64") and pushes it as newRef. Returns its digest.
func craneSetPlatform(t testing.TB, ref, platform, newRef string) string {
	t.Helper()
	return digestFromCraneOutput(t, mustTool(t, "crane", "mutate", "--insecure",
		"--set-platform", platform, "-t", newRef, ref))
}

// craneIndexAppend makes an index from manifests (full refs) and pushes it
// to ref; crane copies the children into ref's repository first. docker=true
// makes a Docker manifest list instead of an OCI index. Returns its digest.
func craneIndexAppend(t testing.TB, ref string, docker bool, manifests ...string) string {
	t.Helper()
	args := []string{"index", "append", "--insecure", "-t", ref}
	for _, m := range manifests {
		args = append(args, "-m", m)
	}
	if docker {
		args = append(args, "--docker-empty-base")
	}
	return digestFromCraneOutput(t, mustTool(t, "crane", args...))
}

// craneTag adds tag to the manifest at ref (in the same repository).
func craneTag(t testing.TB, ref, tag string) {
	t.Helper()
	mustTool(t, "crane", "tag", "--insecure", ref, tag)
}

// craneDigest returns the digest ref resolves to.
func craneDigest(t testing.TB, ref string) string {
	t.Helper()
	return strings.TrimSpace(mustTool(t, "crane", "digest", "--insecure", ref))
}

// cranePullOCI pulls ref into an OCI image layout at dir.
func cranePullOCI(t testing.TB, ref, dir string) {
	t.Helper()
	mustTool(t, "crane", "pull", "--insecure", "--format", "oci", ref, dir)
}

// craneValidate runs `crane validate --remote ref`: it downloads every
// blob and checks digests, sizes and diff_ids.
func craneValidate(t testing.TB, ref string) {
	t.Helper()
	mustTool(t, "crane", "validate", "--insecure", "--remote", ref)
}

// skopeoCopy runs `skopeo --insecure-policy copy --src-tls-verify=false
// src dst extra...`; src is a transport reference such as docker://HOST/r:t.
func skopeoCopy(t testing.TB, src, dst string, extra ...string) {
	t.Helper()
	args := append([]string{"--insecure-policy", "copy", "--src-tls-verify=false"}, extra...)
	args = append(args, src, dst)
	mustTool(t, "skopeo", args...)
}

// skopeoCopyOCI copies docker://ref into the OCI layout dir under tag.
func skopeoCopyOCI(t testing.TB, ref, dir, tag string) {
	t.Helper()
	skopeoCopy(t, "docker://"+ref, "oci:"+dir+":"+tag)
}

// skopeoCopyDir copies docker://ref into a skopeo dir: directory.
func skopeoCopyDir(t testing.TB, ref, dir string) {
	t.Helper()
	skopeoCopy(t, "docker://"+ref, "dir:"+dir)
}

// umociList returns the tags of the OCI layout at dir (`umoci ls`).
func umociList(t testing.TB, dir string) []string {
	t.Helper()
	return strings.Fields(mustTool(t, "umoci", "ls", "--layout", dir))
}
