package regstore_test

import (
	"bytes"
	"crypto/sha256"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
)

// BenchmarkPutBlob256MiB compares Store.PutBlob on a Dir with the plainest
// correct way to store a blob: one pass that hashes and writes, then Sync.
// Every iteration writes into a fresh directory, so no case short-circuits
// on an existing blob; creating and removing it is not timed.
//
//	go test -run='^$' -bench=PutBlob256MiB -benchtime=5x -count=3
func BenchmarkPutBlob256MiB(b *testing.B) {
	const size = 256 << 20
	data := make([]byte, size)
	rand.NewChaCha8([32]byte{1}).Read(data)
	want := digest.FromBytes(data)

	// run times put once per iteration, each time in a fresh directory.
	run := func(b *testing.B, put func(b *testing.B, dir string)) {
		b.SetBytes(size)
		base := b.TempDir()
		b.ResetTimer()
		for i := 0; i < b.N; i++ {
			b.StopTimer()
			dir := filepath.Join(base, strconv.Itoa(i))
			if err := os.Mkdir(dir, 0o777); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
			put(b, dir)
			b.StopTimer()
			if err := os.RemoveAll(dir); err != nil {
				b.Fatal(err)
			}
			b.StartTimer()
		}
	}
	// putBlob is Store.PutBlob on a Dir opened on dir, with the digest and
	// size known or not.
	putBlob := func(known bool) func(b *testing.B, dir string) {
		return func(b *testing.B, dir string) {
			d, err := regstore.OpenDir(dir)
			if err != nil {
				b.Fatal(err)
			}
			defer d.Close()
			s, err := regstore.Open(d)
			if err != nil {
				b.Fatal(err)
			}
			dg, n := digest.Digest(""), int64(-1)
			if known {
				dg, n = want, size
			}
			blob, err := s.PutBlob(bytes.NewReader(data), dg, n)
			if err != nil {
				b.Fatalf("PutBlob(256 MiB, %q, %d): %v", dg, n, err)
			}
			if blob.Digest() != want {
				b.Fatalf("PutBlob(256 MiB, %q, %d).Digest() = %s, want %s", dg, n, blob.Digest(), want)
			}
		}
	}
	// baseline is os.Create, one io.CopyBuffer with a 1 MiB buffer through
	// sha256 into the file, then (if sync) f.Sync, then Close. The reader
	// hides bytes.Reader's WriteTo so that the copy goes through the
	// buffer in 1 MiB chunks, as PutBlob's does.
	baseline := func(sync bool) func(b *testing.B, dir string) {
		return func(b *testing.B, dir string) {
			f, err := os.Create(filepath.Join(dir, "data"))
			if err != nil {
				b.Fatal(err)
			}
			h := sha256.New()
			r := struct{ io.Reader }{bytes.NewReader(data)}
			if _, err := io.CopyBuffer(io.MultiWriter(h, f), r, make([]byte, 1<<20)); err != nil {
				b.Fatal(err)
			}
			if sync {
				if err := f.Sync(); err != nil {
					b.Fatal(err)
				}
			}
			if err := f.Close(); err != nil {
				b.Fatal(err)
			}
			if got := digest.NewDigest(digest.SHA256, h); got != want {
				b.Fatalf("baseline digest = %s, want %s", got, want)
			}
		}
	}

	b.Run("regstore/unknown-digest", func(b *testing.B) { run(b, putBlob(false)) })
	b.Run("regstore/known-digest", func(b *testing.B) { run(b, putBlob(true)) })
	b.Run("baseline", func(b *testing.B) { run(b, baseline(true)) })
	b.Run("baseline-nosync", func(b *testing.B) { run(b, baseline(false)) })
}
