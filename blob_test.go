package regstore_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"testing/iotest"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest/backendtest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// pbBackends runs fn on a fresh, empty Dir and a fresh, empty MemFS.
func pbBackends(t *testing.T, fn func(t *testing.T, w regstore.WriteFS)) {
	t.Helper()
	t.Run("Dir", func(t *testing.T) {
		d, err := regstore.OpenDir(t.TempDir())
		require.NoError(t, err, "OpenDir(t.TempDir())")
		t.Cleanup(func() { d.Close() })
		fn(t, d)
	})
	t.Run("MemFS", func(t *testing.T) { fn(t, regstore.NewMemFS()) })
}

func pbStore(t *testing.T, fsys fs.FS) *regstore.Store {
	t.Helper()
	s, err := regstore.Open(fsys)
	require.NoError(t, err, "Open(%T)", fsys)
	return s
}

// pbTree is the whole listing of fsys, with long file contents replaced by
// their length and digest so that a failure prints readably.
func pbTree(t testing.TB, fsys fs.FS) []string {
	t.Helper()
	out := backendtest.Listing(t, fsys, ".")
	for i, l := range out {
		if name, content, ok := strings.Cut(l, "="); ok && len(content) > 64 {
			out[i] = fmt.Sprintf("%s=<%d bytes %s>", name, len(content), digest.FromString(content))
		}
	}
	return out
}

// pbBlobTree is the listing of a default-root store that holds exactly one
// blob with the given content and nothing else.
func pbBlobTree(content []byte) []string {
	hex := digest.FromBytes(content).Encoded()
	dirs := []string{
		"docker/", "docker/registry/", "docker/registry/v2/", "docker/registry/v2/blobs/",
		"docker/registry/v2/blobs/sha256/",
		"docker/registry/v2/blobs/sha256/" + hex[:2] + "/",
		"docker/registry/v2/blobs/sha256/" + hex[:2] + "/" + hex + "/",
	}
	data := "docker/registry/v2/blobs/sha256/" + hex[:2] + "/" + hex + "/data"
	if len(content) > 64 {
		return append(dirs, fmt.Sprintf("%s=<%d bytes %s>", data, len(content), digest.FromBytes(content)))
	}
	return append(dirs, data+"="+string(content))
}

// pbPattern is n bytes of printable, non-repeating-looking content.
func pbPattern(n int) []byte {
	var b bytes.Buffer
	for i := 0; b.Len() < n; i++ {
		fmt.Fprintf(&b, "%d,", i*i)
	}
	return b.Bytes()[:n]
}

// pbUnreadable is a reader that must not be read.
type pbUnreadable struct{ read atomic.Bool }

func (r *pbUnreadable) Read([]byte) (int, error) {
	r.read.Store(true)
	return 0, errors.New("unreadable: the reader must not be read")
}

func TestPutBlob(t *testing.T) {
	big := pbPattern(2<<20 + 12345) // spans several copy buffers
	for _, c := range []struct {
		name    string
		content []byte
		want    func(b []byte) digest.Digest
		size    func(b []byte) int64
	}{
		{"unknown digest", []byte("hello"), pbNoDigest, pbNoSize},
		{"unknown digest with size", []byte("hello"), pbNoDigest, pbLenSize},
		{"sha256", []byte("hello"), digest.SHA256.FromBytes, pbNoSize},
		{"sha256 with size", []byte("hello"), digest.SHA256.FromBytes, pbLenSize},
		{"sha384", []byte("hello"), digest.SHA384.FromBytes, pbNoSize},
		{"sha512", []byte("hello"), digest.SHA512.FromBytes, pbNoSize},
		{"sha512 with size", []byte("hello"), digest.SHA512.FromBytes, pbLenSize},
		{"empty unknown digest", []byte{}, pbNoDigest, pbNoSize},
		{"empty sha256 with size", []byte{}, digest.SHA256.FromBytes, pbLenSize},
		{"large unknown digest", big, pbNoDigest, pbLenSize},
		{"large sha256", big, digest.SHA256.FromBytes, pbNoSize},
		{"large sha512", big, digest.SHA512.FromBytes, pbLenSize},
	} {
		t.Run(c.name, func(t *testing.T) {
			pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
				s := pbStore(t, w)
				want, size := c.want(c.content), c.size(c.content)
				canonical := digest.FromBytes(c.content)
				b, err := s.PutBlob(bytes.NewReader(c.content), want, size)
				require.NoError(t, err, "PutBlob(%d bytes, %q, %d)", len(c.content), want, size)
				assert.Equal(t, canonical, b.Digest(), "PutBlob(%q).Digest()", want)
				assert.Equal(t, int64(len(c.content)), b.Size(), "PutBlob(%q).Size()", want)
				assert.Equal(t, "application/octet-stream", b.Descriptor().MediaType, "PutBlob(%q).Descriptor().MediaType", want)
				assert.Equal(t, canonical, b.Descriptor().Digest, "PutBlob(%q).Descriptor().Digest", want)
				assert.Equal(t, int64(len(c.content)), b.Descriptor().Size, "PutBlob(%q).Descriptor().Size", want)
				assert.Equal(t, s.Layout().BlobData(canonical), b.Path(), "PutBlob(%q).Path()", want)

				// Data is stored under sha256 whatever the algorithm of want,
				// and nothing else is left in the tree.
				assert.Equal(t, pbBlobTree(c.content), pbTree(t, w), "tree after PutBlob(%q)", want)
				backendtest.Clean(t, w, ".")

				got, err := s.Blob(canonical)
				require.NoError(t, err, "Blob(%s)", canonical)
				assert.Equal(t, b.Descriptor(), got.Descriptor(), "Blob(%s).Descriptor()", canonical)
				assert.NoError(t, got.Verify(), "Blob(%s).Verify()", canonical)
				if want != "" && want != canonical {
					_, err := s.Blob(want)
					assert.ErrorIs(t, err, fs.ErrNotExist, "Blob(%s): data is only under sha256", want)
				}
			})
		})
	}
}

func pbNoDigest([]byte) digest.Digest { return "" }
func pbNoSize([]byte) int64           { return -1 }
func pbLenSize(b []byte) int64        { return int64(len(b)) }

// TestPutBlobExisting: putting a blob that is already stored succeeds and
// changes nothing. With its sha256 digest the reader is not even read.
func TestPutBlobExisting(t *testing.T) {
	content := []byte("hello")
	for _, c := range []struct {
		name     string
		want     digest.Digest
		size     int64
		readable bool  // false: a pbUnreadable reader, which must stay unread
		wantErr  error // nil: success
	}{
		{"sha256 is not read", golden256, -1, false, nil},
		{"sha256 and size are not read", golden256, 5, false, nil},
		{"sha256 with wrong size", golden256, 6, false, regstore.ErrSizeMismatch},
		{"unknown digest", "", -1, true, nil},
		{"unknown digest with size", "", 5, true, nil},
		{"sha512", golden512, -1, true, nil},
		{"sha512 with size", golden512, 5, true, nil},
	} {
		t.Run(c.name, func(t *testing.T) {
			pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
				s := pbStore(t, w)
				first, err := s.PutBlob(bytes.NewReader(content), "", -1)
				require.NoError(t, err, "PutBlob(hello)")
				before := pbTree(t, w)
				require.Equal(t, pbBlobTree(content), before)

				var r io.Reader = bytes.NewReader(content)
				u := &pbUnreadable{}
				if !c.readable {
					r = u
				}
				b, err := s.PutBlob(r, c.want, c.size)
				if c.wantErr != nil {
					assert.ErrorIs(t, err, c.wantErr, "PutBlob(%q, %d) again", c.want, c.size)
				} else if assert.NoError(t, err, "PutBlob(%q, %d) again", c.want, c.size) {
					assert.Equal(t, first.Descriptor(), b.Descriptor(), "PutBlob(%q, %d) again", c.want, c.size)
				}
				assert.False(t, u.read.Load(), "PutBlob(%q, %d) read the reader of an existing blob", c.want, c.size)
				assert.Equal(t, before, pbTree(t, w), "tree after PutBlob(%q, %d) again", c.want, c.size)
				backendtest.Clean(t, w, ".")
			})
		})
	}
}

func TestBlobOpenVerify(t *testing.T) {
	pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
		s := pbStore(t, w)
		put, err := s.PutBlob(strings.NewReader("hello"), golden256, 5)
		require.NoError(t, err, "PutBlob(hello)")

		b, err := s.Blob(golden256)
		require.NoError(t, err, "Blob(%s)", golden256)
		assert.Equal(t, put.Descriptor(), b.Descriptor(), "Blob(%s).Descriptor()", golden256)
		assert.Equal(t, "docker/registry/v2/blobs/sha256/2c/"+goldenHex256+"/data", b.Path(), "Blob(%s).Path()", golden256)

		f, err := b.Open()
		require.NoError(t, err, "Blob(%s).Open()", golden256)
		got, err := io.ReadAll(f)
		require.NoError(t, err)
		assert.Equal(t, "hello", string(got), "content of Blob(%s)", golden256)
		off, err := f.Seek(1, io.SeekStart)
		require.NoError(t, err, "Seek(1, io.SeekStart)")
		assert.Equal(t, int64(1), off)
		got, err = io.ReadAll(f)
		require.NoError(t, err)
		assert.Equal(t, "ello", string(got), "content after Seek(1, io.SeekStart)")
		assert.NoError(t, f.Close())
		assert.NoError(t, b.Verify(), "Blob(%s).Verify()", golden256)

		for _, d := range []digest.Digest{digest.FromString("missing"), golden512, golden384} {
			_, err := s.Blob(d)
			assert.ErrorIs(t, err, fs.ErrNotExist, "Blob(%s)", d)
			var e *regstore.Error
			if assert.ErrorAs(t, err, &e, "Blob(%s)", d) {
				assert.Equal(t, "stat blob", e.Op, "Blob(%s) error Op", d)
				assert.Equal(t, s.Layout().BlobData(d), e.Path, "Blob(%s) error Path", d)
			}
		}

		// A directory where the data file should be is no blob.
		dirDigest := digest.FromString("dir")
		backendtest.Put(t, w, s.Layout().BlobData(dirDigest)+"/x", "x")
		_, err = s.Blob(dirDigest)
		assert.ErrorIs(t, err, fs.ErrNotExist, "Blob(%s) with a directory as data", dirDigest)

		// A blob whose data went away since it was obtained.
		require.NoError(t, w.Remove(b.Path()))
		_, err = b.Open()
		assert.ErrorIs(t, err, fs.ErrNotExist, "Open() after the data was removed")
		assert.ErrorIs(t, b.Verify(), fs.ErrNotExist, "Verify() after the data was removed")
	})
}

// TestVerifyCorrupt overwrites a blob's data through the backend and checks
// that Verify reports the mismatch.
func TestVerifyCorrupt(t *testing.T) {
	for _, c := range []struct{ name, content string }{
		{"same length", "hellO"},
		{"shorter", "hell"},
		{"longer", "hello, world"},
		{"empty", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
				s := pbStore(t, w)
				_, err := s.PutBlob(strings.NewReader("hello"), "", -1)
				require.NoError(t, err, "PutBlob(hello)")
				b, err := s.Blob(golden256)
				require.NoError(t, err, "Blob(%s)", golden256)
				require.NoError(t, b.Verify(), "Verify() before corruption")

				backendtest.Put(t, w, b.Path(), c.content)

				err = b.Verify()
				assert.ErrorIs(t, err, regstore.ErrDigestMismatch, "Verify() of a blob obtained before corruption")
				var e *regstore.Error
				if assert.ErrorAs(t, err, &e) {
					assert.Equal(t, "verify blob", e.Op)
					assert.Equal(t, b.Path(), e.Path)
					assert.Equal(t, golden256.String(), e.Reference)
				}
				fresh, err := s.Blob(golden256)
				require.NoError(t, err, "Blob(%s) after corruption", golden256)
				assert.ErrorIs(t, fresh.Verify(), regstore.ErrDigestMismatch, "Verify() of a blob obtained after corruption")
			})
		})
	}
}

// pbSeed puts one unrelated blob, so that the blobs directory exists.
func pbSeed(t *testing.T, s *regstore.Store) {
	t.Helper()
	_, err := s.PutBlob(strings.NewReader("seed"), "", -1)
	require.NoError(t, err, "PutBlob(seed)")
}

// TestPutBlobMismatch: content that does not match the digest or size it
// claims, or that cannot be read to the end, is refused with the matching
// sentinel and leaves the tree exactly as it was.
func TestPutBlobMismatch(t *testing.T) {
	content := pbPattern(300 << 10)
	other := []byte("other content")
	half := func() io.Reader {
		return io.MultiReader(bytes.NewReader(content[:len(content)/2]), iotest.ErrReader(io.ErrUnexpectedEOF))
	}
	whole := func() io.Reader { return bytes.NewReader(content) }
	n := int64(len(content))
	for _, c := range []struct {
		name    string
		r       func() io.Reader
		want    digest.Digest
		size    int64
		wantErr error
	}{
		{"digest mismatch sha256", whole, digest.SHA256.FromBytes(other), -1, regstore.ErrDigestMismatch},
		{"digest mismatch sha256 with size", whole, digest.SHA256.FromBytes(other), n, regstore.ErrDigestMismatch},
		{"digest mismatch sha384", whole, digest.SHA384.FromBytes(other), -1, regstore.ErrDigestMismatch},
		{"digest mismatch sha512", whole, digest.SHA512.FromBytes(other), -1, regstore.ErrDigestMismatch},
		{"digest mismatch sha512 with size", whole, digest.SHA512.FromBytes(other), n, regstore.ErrDigestMismatch},
		{"short read unknown digest", whole, "", n + 1, regstore.ErrSizeMismatch},
		{"short read sha256", whole, digest.FromBytes(content), n + 1000, regstore.ErrSizeMismatch},
		{"short read sha512", whole, digest.SHA512.FromBytes(content), n + 1, regstore.ErrSizeMismatch},
		{"overlong unknown digest", whole, "", n - 1, regstore.ErrSizeMismatch},
		{"overlong sha256", whole, digest.FromBytes(content), n - 1, regstore.ErrSizeMismatch},
		{"overlong sha512", whole, digest.SHA512.FromBytes(content), 1, regstore.ErrSizeMismatch},
		{"overlong size zero", whole, "", 0, regstore.ErrSizeMismatch},
		{"reader error unknown digest", half, "", -1, io.ErrUnexpectedEOF},
		{"reader error sha256", half, digest.FromBytes(content), -1, io.ErrUnexpectedEOF},
		{"reader error sha512 with size", half, digest.SHA512.FromBytes(content), n, io.ErrUnexpectedEOF},
		{"reader error at once", func() io.Reader { return iotest.ErrReader(io.ErrUnexpectedEOF) }, "", -1, io.ErrUnexpectedEOF},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, seeded := range []bool{false, true} {
				t.Run(map[bool]string{false: "empty", true: "seeded"}[seeded], func(t *testing.T) {
					pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
						s := pbStore(t, w)
						if seeded {
							pbSeed(t, s)
						}
						before := pbTree(t, w)
						b, err := s.PutBlob(c.r(), c.want, c.size)
						assert.Nil(t, b, "PutBlob(%q, %d)", c.want, c.size)
						assert.ErrorIs(t, err, c.wantErr, "PutBlob(%q, %d)", c.want, c.size)
						var e *regstore.Error
						if assert.ErrorAs(t, err, &e, "PutBlob(%q, %d)", c.want, c.size) {
							assert.Equal(t, "put blob", e.Op, "PutBlob(%q, %d) error Op", c.want, c.size)
						}
						assert.Equal(t, before, pbTree(t, w), "tree after PutBlob(%q, %d)", c.want, c.size)
						backendtest.Clean(t, w, ".")
						_, err = s.Blob(digest.FromBytes(content))
						assert.ErrorIs(t, err, fs.ErrNotExist, "Blob(content) after a failed PutBlob")
					})
				})
			}
		})
	}
}

var pbErrInjected = errors.New("injected backend failure")

// pbFaultyFS wraps a backend so that its writers fail on demand. It exposes
// only the WriteFS methods, so a store falls back to copy-then-remove for
// renames; pbFaultyRenameFS adds Rename.
type pbFaultyFS struct {
	regstore.WriteFS
	writeLimit int64 // writers fail once given more bytes than this; <0: never
	limitFrom  int32 // writeLimit applies from the n-th Create on (1-based); 0: to all
	failCommit int32 // the n-th Commit (1-based, counted over all writers) fails; 0: never
	creates    atomic.Int32
	commits    atomic.Int32
	misuse     atomic.Int32 // Commit or Cancel on a writer already committed or cancelled
}

func pbNewFaultyFS(w regstore.WriteFS) *pbFaultyFS { return &pbFaultyFS{WriteFS: w, writeLimit: -1} }

func (f *pbFaultyFS) Create(name string) (regstore.FileWriter, error) {
	w, err := f.WriteFS.Create(name)
	if err != nil {
		return nil, err
	}
	limit := f.writeLimit
	if f.creates.Add(1) < f.limitFrom {
		limit = -1
	}
	return &pbFaultyWriter{f: f, w: w, name: name, limit: limit}, nil
}

type pbFaultyWriter struct {
	f     *pbFaultyFS
	w     regstore.FileWriter
	name  string
	limit int64
	n     int64
	done  bool
}

func (w *pbFaultyWriter) Write(p []byte) (int, error) {
	if lim := w.limit; lim >= 0 && w.n+int64(len(p)) > lim {
		k, err := w.w.Write(p[:lim-w.n])
		w.n += int64(k)
		if err == nil {
			err = &fs.PathError{Op: "write", Path: w.name, Err: pbErrInjected}
		}
		return k, err
	}
	k, err := w.w.Write(p)
	w.n += int64(k)
	return k, err
}

func (w *pbFaultyWriter) Commit() error {
	if w.done {
		w.f.misuse.Add(1)
		return &fs.PathError{Op: "commit", Path: w.name, Err: fs.ErrClosed}
	}
	w.done = true
	if w.f.commits.Add(1) == w.f.failCommit {
		// As the contract says of a failed Commit: nothing is published
		// and the directories Create made are removed again.
		return errors.Join(&fs.PathError{Op: "commit", Path: w.name, Err: pbErrInjected}, w.w.Cancel())
	}
	return w.w.Commit()
}

func (w *pbFaultyWriter) Cancel() error {
	if w.done {
		w.f.misuse.Add(1)
		return &fs.PathError{Op: "cancel", Path: w.name, Err: fs.ErrClosed}
	}
	w.done = true
	return w.w.Cancel()
}

type pbFaultyRenameFS struct {
	*pbFaultyFS
	failRename bool
}

func (f pbFaultyRenameFS) Rename(oldname, newname string) error {
	if f.failRename {
		return &fs.PathError{Op: "rename", Path: newname, Err: pbErrInjected}
	}
	return f.WriteFS.(regstore.RenameFS).Rename(oldname, newname)
}

// TestPutBlobBackendFailure injects write, commit and rename failures into
// the backend: PutBlob returns the backend's error and leaves the tree as it
// was.
func TestPutBlobBackendFailure(t *testing.T) {
	content := pbPattern(100 << 10)
	const (
		noRename   = iota // backend without Rename: copy-then-remove
		withRename        // backend with a working Rename
		failRename        // backend whose Rename fails
	)
	for _, c := range []struct {
		name       string
		want       digest.Digest
		writeLimit int64
		limitFrom  int32
		failCommit int32
		rename     int
		// seededOnly: the failure comes after the staging file was
		// committed. In a store that has no blobs directory yet, PutBlob
		// then leaves the empty directories docker/registry/v2/blobs that
		// staging made (a known gap: PutBlob removes the staging file but
		// not the directories its Create made), so only a store whose
		// blobs directory exists is checked to be left exactly as it was.
		seededOnly bool
	}{
		{"write fails at once unknown digest", "", 0, 0, 0, withRename, false},
		{"write fails midway unknown digest", "", 40000, 0, 0, withRename, false},
		{"write fails midway sha256", digest.FromBytes(content), 40000, 0, 0, withRename, false},
		{"write fails midway sha512", digest.SHA512.FromBytes(content), 40000, 0, 0, withRename, false},
		{"write fails midway no rename", "", 40000, 0, 0, noRename, false},
		{"staging commit fails unknown digest", "", -1, 0, 1, withRename, false},
		{"staging commit fails sha512", digest.SHA512.FromBytes(content), -1, 0, 1, withRename, false},
		{"commit fails sha256", digest.FromBytes(content), -1, 0, 1, withRename, false},
		{"commit fails sha256 no rename", digest.FromBytes(content), -1, 0, 1, noRename, false},
		{"copy into place fails unknown digest", "", -1, 0, 2, noRename, true},
		{"copy into place fails sha512", digest.SHA512.FromBytes(content), -1, 0, 2, noRename, true},
		{"copy into place write fails", "", 40000, 2, 0, noRename, true},
		{"rename into place fails unknown digest", "", -1, 0, 0, failRename, true},
		{"rename into place fails sha512", digest.SHA512.FromBytes(content), -1, 0, 0, failRename, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, seeded := range []bool{false, true} {
				if c.seededOnly && !seeded {
					continue
				}
				t.Run(map[bool]string{false: "empty", true: "seeded"}[seeded], func(t *testing.T) {
					pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
						if seeded {
							pbSeed(t, pbStore(t, w))
						}
						before := pbTree(t, w)
						f := pbNewFaultyFS(w)
						f.writeLimit, f.limitFrom, f.failCommit = c.writeLimit, c.limitFrom, c.failCommit
						var fsys regstore.WriteFS = f
						if c.rename != noRename {
							fsys = pbFaultyRenameFS{f, c.rename == failRename}
						}
						s := pbStore(t, fsys)
						b, err := s.PutBlob(bytes.NewReader(content), c.want, -1)
						assert.Nil(t, b, "PutBlob(%q)", c.want)
						assert.ErrorIs(t, err, pbErrInjected, "PutBlob(%q)", c.want)
						var e *regstore.Error
						if assert.ErrorAs(t, err, &e, "PutBlob(%q)", c.want) {
							assert.Equal(t, "put blob", e.Op, "PutBlob(%q) error Op", c.want)
						}
						assert.Zero(t, f.misuse.Load(), "PutBlob(%q) used a writer after Commit or Cancel", c.want)
						assert.Equal(t, before, pbTree(t, w), "tree after PutBlob(%q)", c.want)
						backendtest.Clean(t, w, ".")
						_, err = s.Blob(digest.FromBytes(content))
						assert.ErrorIs(t, err, fs.ErrNotExist, "Blob(content) after a failed PutBlob")
					})
				})
			}
		})
	}
}

// TestPutBlobFailedCommitIsNotCancelled: after a failed Commit the writer
// is finished (FileWriter: "Exactly one of Commit or Cancel must be
// called"), so PutBlob must not Cancel it too. Doing so adds a spurious
// second error to the one returned: on Dir the removal of a temporary file
// that is already gone (so the error matches fs.ErrNotExist, as if the blob
// were unknown), on MemFS fs.ErrClosed.
func TestPutBlobFailedCommitIsNotCancelled(t *testing.T) {
	content := []byte("hello")
	for _, c := range []struct {
		name string
		want digest.Digest
	}{{"unknown digest", ""}, {"sha256", golden256}, {"sha512", golden512}} {
		want := c.want
		t.Run("contract/"+c.name, func(t *testing.T) {
			pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
				f := pbNewFaultyFS(w)
				f.failCommit = 1
				s := pbStore(t, pbFaultyRenameFS{pbFaultyFS: f})
				_, err := s.PutBlob(bytes.NewReader(content), want, -1)
				require.ErrorIs(t, err, pbErrInjected, "PutBlob(hello, %q) with a failing Commit", want)
				assert.Zero(t, f.misuse.Load(), "PutBlob(hello, %q) called Cancel after a failed Commit", want)
			})
		})
	}
	t.Run("error class", func(t *testing.T) {
		pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
			s := pbStore(t, w)
			// A directory where the data file goes makes the real
			// backends' Commit fail.
			backendtest.Put(t, w, s.Layout().BlobData(golden256)+"/x", "x")
			before := pbTree(t, w)
			_, err := s.PutBlob(bytes.NewReader(content), golden256, -1)
			require.Error(t, err, "PutBlob(hello) over a directory")
			assert.NotErrorIs(t, err, fs.ErrNotExist, "PutBlob(hello) over a directory")
			assert.NotErrorIs(t, err, fs.ErrClosed, "PutBlob(hello) over a directory")
			assert.Equal(t, before, pbTree(t, w), "tree after PutBlob(hello) over a directory")
			backendtest.Clean(t, w, ".")
		})
	})
}

// TestPutBlobConcurrent puts the same blob from 32 goroutines: every put
// succeeds with the same digest, and exactly one intact blob and nothing
// else (no temporary or staging file) is left.
func TestPutBlobConcurrent(t *testing.T) {
	content := pbPattern(256 << 10)
	d := digest.FromBytes(content)
	for _, mode := range []string{"known digest", "unknown digest", "mixed"} {
		t.Run(mode, func(t *testing.T) {
			pbBackends(t, func(t *testing.T, w regstore.WriteFS) {
				s := pbStore(t, w)
				const n = 32
				blobs := make([]*regstore.Blob, n)
				errs := make([]error, n)
				var wg sync.WaitGroup
				for i := range n {
					want, size := d, int64(len(content))
					if mode == "unknown digest" || mode == "mixed" && i%2 == 1 {
						want, size = "", -1
					}
					wg.Go(func() { blobs[i], errs[i] = s.PutBlob(bytes.NewReader(content), want, size) })
				}
				wg.Wait()
				for i := range n {
					if assert.NoError(t, errs[i], "PutBlob #%d", i) {
						assert.Equal(t, d, blobs[i].Digest(), "PutBlob #%d Digest()", i)
						assert.Equal(t, int64(len(content)), blobs[i].Size(), "PutBlob #%d Size()", i)
					}
				}
				assert.Equal(t, pbBlobTree(content), pbTree(t, w), "tree after %d concurrent PutBlob", n)
				backendtest.Clean(t, w, ".")
				b, err := s.Blob(d)
				require.NoError(t, err, "Blob(%s)", d)
				assert.NoError(t, b.Verify(), "Blob(%s).Verify()", d)
				assert.True(t, slices.IndexFunc(errs, func(err error) bool { return err != nil }) < 0)
			})
		})
	}
}
