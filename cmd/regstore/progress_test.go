package main

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/gc"
	"github.com/regstore/regstore/migrate"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// progressCommands run long enough to report progress; each line starts
// with the command's name.
func progressCommands(tr *tree, scratch string) [][]string {
	return [][]string{
		{"gc", "--dry-run", "--grace=-1s", tr.dir},
		{"check", tr.dir},
		{"export-oci", tr.dir, "team/app", filepath.Join(scratch, "oci")},
		{"copy", tr.dir, filepath.Join(scratch, "copy")},
	}
}

// In a pipe (and in a file, and on /dev/null) no progress is shown, unless
// --progress asks for it.
func TestProgressNotInPipe(t *testing.T) {
	tr := buildTree(t)
	for _, args := range progressCommands(tr, t.TempDir()) {
		_, errOut, code := runCLI(t, args...)
		require.Equal(t, 0, code, "%q: %s", args, errOut)
		assert.Empty(t, errOut, "stderr of %q in a pipe", args)
	}
	for _, args := range progressCommands(tr, t.TempDir()) {
		_, errOut, code := runCLI(t, append(args, "--progress")...)
		require.Equal(t, 0, code, "%q: %s", args, errOut)
		assert.True(t, strings.HasPrefix(errOut, "\r"+args[0]+": "), "stderr of %q --progress = %q", args, errOut)
		assert.Contains(t, errOut, "\x1b[K")
		assert.True(t, strings.HasSuffix(errOut, "]\x1b[K\n"), "the last status stays on its own line: %q", errOut)
	}
	_, errOut, _ := runCLI(t, "gc", "--dry-run", "--no-progress", "--progress", tr.dir)
	assert.Contains(t, errOut, "--progress and --no-progress are exclusive")

	f, err := os.Create(filepath.Join(t.TempDir(), "file"))
	require.NoError(t, err)
	defer f.Close()
	assert.False(t, isTerminal(f), "a regular file")
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	require.NoError(t, err)
	defer null.Close()
	assert.False(t, isTerminal(null), "the null device, though a character device")
	r, w, err := os.Pipe()
	require.NoError(t, err)
	defer r.Close()
	defer w.Close()
	assert.False(t, isTerminal(w), "a pipe")
	assert.False(t, isTerminal(&bytes.Buffer{}))
}

// On a terminal (a tmux pane), the progress line appears on stderr while
// stdout, sent to a file, gets none of it.
func TestProgressOnTerminal(t *testing.T) {
	tmux, err := exec.LookPath("tmux")
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal("tmux is not installed, and CI=true: install the tmux package (apt-get install tmux)")
		}
		t.Skip("tmux is not installed (apt-get install tmux): cannot run the binary on a terminal")
	}
	tr := buildTree(t)
	scratch := t.TempDir()
	// A short socket path: unix socket names are limited to ~100 bytes.
	sockDir, err := os.MkdirTemp("", "rs-tmux-")
	require.NoError(t, err)
	t.Cleanup(func() { os.RemoveAll(sockDir) })
	sock := filepath.Join(sockDir, "s")
	t.Cleanup(func() { exec.Command(tmux, "-S", sock, "kill-server").Run() })

	var script strings.Builder
	cmds := progressCommands(tr, scratch)
	for i, args := range cmds {
		script.WriteString(shellQuote(binary))
		for _, a := range args {
			script.WriteString(" " + shellQuote(a))
		}
		script.WriteString(" >" + shellQuote(filepath.Join(scratch, "stdout"+string(rune('0'+i)))) + "; ")
	}
	done := filepath.Join(scratch, "done")
	script.WriteString("echo $? >" + shellQuote(done) + "; sleep 600")
	out, err := exec.Command(tmux, "-S", sock, "new-session", "-d", "-x", "250", "-y", "50",
		"sh", "-c", script.String()).CombinedOutput()
	require.NoError(t, err, "tmux new-session: %s", out)

	// Wait for the commands to finish (this bounds the wait; it asserts
	// nothing about speed).
	deadline := time.Now().Add(2 * time.Minute)
	for {
		if _, err := os.Stat(done); err == nil {
			break
		}
		require.True(t, time.Now().Before(deadline), "the commands did not finish in the tmux pane")
		time.Sleep(50 * time.Millisecond)
	}
	pane, err := exec.Command(tmux, "-S", sock, "capture-pane", "-p", "-J").Output()
	require.NoError(t, err)
	screen := string(pane)
	t.Logf("tmux pane:\n%s", screen)
	for i, args := range cmds {
		assert.Contains(t, screen, args[0]+": ", "progress of %q on the terminal", args)
		b, err := os.ReadFile(filepath.Join(scratch, "stdout"+string(rune('0'+i))))
		require.NoError(t, err)
		assert.NotEmpty(t, b, "stdout of %q", args)
		assert.NotContains(t, string(b), "\r", "stdout of %q has no progress", args)
		assert.NotContains(t, string(b), args[0]+": ", "stdout of %q has no progress", args)
	}
	assert.Contains(t, screen, "gc: marking: repositories 2/2")
	assert.Regexp(t, `check: checking: re-hashing blobs (\d+)/(\d+), [0-9.]+ K?i?B/[0-9.]+ K?i?B(, [^;]+)?; 0 problems \[`, screen)
	assert.Contains(t, screen, "copy: blobs 14/14, ")
}

func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'" }

// Interrupting stops every long command with status 130 and leaves the
// trees consistent (run in-process, with a context already cancelled, as
// Ctrl-C cancels it).
func TestInterruptedLongCommands(t *testing.T) {
	tr := buildTree(t)
	scratch := t.TempDir()
	layout := filepath.Join(scratch, "oci")
	runOK(t, "export-oci", tr.dir, "team/app", layout)
	require.NoError(t, regstoretest.HalfWrittenUpload(tr.root, "team/app", "4e5f6071-8293-4a4b-8d5e-6f7a8b9cadbe", time.Now().Add(-time.Hour)))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	before := snapshot(t, tr.dir)
	for _, args := range [][]string{
		{"check", tr.dir},
		{"du", tr.dir},
		{"purge-uploads", "--older-than=1s", tr.dir},
		{"copy", tr.dir, filepath.Join(scratch, "copy")},
		{"import-oci", filepath.Join(scratch, "imported"), "x/y", layout},
		{"export-oci", tr.dir, "team/app", filepath.Join(scratch, "oci2")},
	} {
		var stdout, stderr bytes.Buffer
		assert.Equal(t, 130, run(ctx, args, &stdout, &stderr), "%q: %s", args, stderr.String())
		assert.Contains(t, stderr.String(), "interrupted", "%q", args)
	}
	assert.Equal(t, before, snapshot(t, tr.dir))
	// Whatever the interrupted writes left is consistent: no pointer to
	// something missing.
	for _, dst := range []string{filepath.Join(scratch, "copy"), filepath.Join(scratch, "imported")} {
		if _, err := os.Stat(filepath.Join(dst, "docker")); err == nil {
			runJSON(t, 0, "check", "--json", "--ignore", "blob-orphan", dst)
		}
	}
}

func TestProgressStatusLines(t *testing.T) {
	assert.Equal(t, "checking: 1 file walked; 0 problems", checkStatus("checking", check.Progress{Phase: "walk", Files: 1}, time.Time{}))
	p := check.Progress{Phase: "rehash", Files: 9, Problems: 1, Blobs: 5, TotalBlobs: 10, Bytes: 50 << 20, TotalBytes: 100 << 20}
	assert.Equal(t, "checking: re-hashing blobs 5/10, 50.0 MiB/100.0 MiB, 10.0 MiB/s, 5s left; 1 problem",
		checkStatus("checking", p, time.Now().Add(-5*time.Second)))
	assert.Equal(t, "1.0 MiB", shortBytes(1<<20-1), "not 1024.0 KiB")
	assert.Equal(t, "", rate(0, 10, time.Now().Add(-time.Minute), true), "no pace yet")
	assert.Equal(t, "2/s", rate(120, 120, time.Now().Add(-time.Minute), false), "done: no time left")

	c := &copyProgress{}
	c.update(migrate.CopyStats{TotalBlobs: 4, TotalBytes: 4 << 20})
	assert.Equal(t, "blobs 0/4, 0 B/4.0 MiB; 0 manifests, 0 tags", c.status())
	c.update(migrate.CopyStats{TotalBlobs: 4, TotalBytes: 4 << 20, Blobs: 1, Bytes: 1 << 20, BlobsSkipped: 1, BytesSkipped: 1 << 20, Manifests: 1, Tags: 1})
	c.start = time.Now().Add(-2 * time.Second)
	assert.Equal(t, "blobs 2/4, 2.0 MiB/4.0 MiB, 1.0 MiB/s, 2s left; 1 manifest, 1 tag", c.status())
}

func TestGCStatusLine(t *testing.T) {
	assert.Equal(t, "marking: repositories 3/10", gcStatus(gc.Progress{Phase: "mark", Repositories: 3, TotalRepositories: 10}, time.Now()))
	assert.Equal(t, "marking: repositories 4/10, 2/s, 3s left",
		gcStatus(gc.Progress{Phase: "mark", Repositories: 4, TotalRepositories: 10}, time.Now().Add(-2*time.Second)))
	assert.Equal(t, "sweeping: removed 5 of at most 7 (revisions, layer links, blobs)",
		gcStatus(gc.Progress{Phase: "sweep", Removed: 5, ToRemove: 7}, time.Now()))
}
