package dockerv1_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"io/fs"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/opencontainers/go-digest"
	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// v1Tree writes the generator's tree under "v1/" of a MemFS.
func v1Tree(t *testing.T) (*dockerv1.Storage, *regstoretest.V1Tree) {
	t.Helper()
	m := regstore.NewMemFS()
	tree, err := regstoretest.WriteV1Tree(m, "v1")
	require.NoError(t, err)
	s, err := dockerv1.Open(m, "v1")
	require.NoError(t, err)
	return s, tree
}

func newStore(t *testing.T) (*regstore.Store, *regstore.MemFS) {
	t.Helper()
	m := regstore.NewMemFS()
	s, err := regstore.Open(m)
	require.NoError(t, err)
	return s, m
}

func needXZ(t *testing.T) {
	t.Helper()
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz program")
	}
}

// snapshot is every file of fsys with its content and mtime.
func snapshot(t *testing.T, fsys fs.FS) map[string]string {
	t.Helper()
	out := map[string]string{}
	require.NoError(t, fs.WalkDir(fsys, ".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := fs.ReadFile(fsys, p)
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		out[p] = string(b) + "@" + fi.ModTime().UTC().Format(time.RFC3339Nano)
		return nil
	}))
	return out
}

func TestReader(t *testing.T) {
	s, tree := v1Tree(t)
	var names []string
	for r, err := range s.Repositories() {
		require.NoError(t, err)
		names = append(names, r.FullName())
	}
	assert.Equal(t, []string{"library/broken", "library/corrupt", "library/partial", "library/ubuntu", "myorg/MyApp", "myorg/app"}, names)

	var tags []string
	ubuntu, err := s.Repository("ubuntu")
	require.NoError(t, err)
	assert.Equal(t, "library/ubuntu", ubuntu.FullName())
	for tg, err := range ubuntu.Tags() {
		require.NoError(t, err)
		tags = append(tags, tg.Name+"="+tg.ImageID+"@"+tg.LastUpdate.Format(time.RFC3339))
	}
	assert.Equal(t, []string{
		"14.04=" + regstoretest.V1BaseID + "@" + time.Unix(1412170000, 0).UTC().Format(time.RFC3339),
		"latest=" + regstoretest.V1AppID + "@" + time.Unix(1412180000, 0).UTC().Format(time.RFC3339),
	}, tags)

	n := 0
	for img, err := range s.Images() {
		require.NoError(t, err)
		want := tree.Images[img.ID]
		require.NotNil(t, want, img.ID)
		assert.Equal(t, want.JSON, img.JSON, img.ID)
		assert.Equal(t, want.Parent, img.Parent, img.ID)
		assert.Equal(t, want.Unfinished, img.InProgress, img.ID)
		assert.NotEmpty(t, img.Ancestry, img.ID)
		assert.Equal(t, img.ID, img.Ancestry[0])
		if !want.Unfinished {
			assert.Len(t, img.Checksums, 1, img.ID) // the bare-string form too
			assert.Equal(t, int64(len(want.Layer)), img.LayerSize, img.ID)
		}
		n++
	}
	assert.Equal(t, len(tree.Images), n)

	chain, err := s.Chain(regstoretest.V1XZID)
	require.NoError(t, err)
	var ids []string
	for _, img := range chain {
		ids = append(ids, img.ID)
	}
	assert.Equal(t, []string{regstoretest.V1BaseID, regstoretest.V1EnvID, regstoretest.V1AppID, regstoretest.V1XZID}, ids)
	_, err = s.Chain(regstoretest.V1UnfinishedID)
	assert.ErrorIs(t, err, dockerv1.ErrUnfinished)
	_, err = s.Image(regstoretest.V1MissingID)
	assert.ErrorIs(t, err, fs.ErrNotExist)
	_, err = s.Image("../etc")
	assert.ErrorIs(t, err, fs.ErrInvalid)
	for _, bad := range []string{"", "../x", "library/..", "./x", "x/"} {
		_, err = s.Repository(bad)
		assert.ErrorIs(t, err, fs.ErrInvalid, "Repository(%q)", bad)
	}
	_, err = ubuntu.Tag("../../../images/x")
	assert.ErrorIs(t, err, fs.ErrInvalid)
	tg, err := ubuntu.Tag("latest")
	require.NoError(t, err)
	assert.Equal(t, regstoretest.V1AppID, tg.ImageID)
	_, err = ubuntu.Tag("nope")
	assert.ErrorIs(t, err, fs.ErrNotExist)
	// A repository component with "/" is stored escaped (quote_plus).
	deep, err := s.Repository("org/a/b")
	require.NoError(t, err)
	assert.Equal(t, "org/a/b", deep.FullName())

	_, err = dockerv1.Open(regstore.NewMemFS(), ".")
	assert.ErrorIs(t, err, fs.ErrNotExist)
}

func TestCheck(t *testing.T) {
	s, _ := v1Tree(t)
	probs, err := s.Check(context.Background(), dockerv1.CheckOptions{Checksums: true})
	require.NoError(t, err)
	var got []string
	for _, p := range probs {
		got = append(got, string(p.Kind)+" "+p.Image+" "+p.Repository+":"+p.Tag)
	}
	assert.ElementsMatch(t, []string{
		"unfinished " + regstoretest.V1UnfinishedID + " :",
		"checksum-mismatch " + regstoretest.V1CorruptID + " :",
		"missing-image " + regstoretest.V1MissingID + " library/broken:missing",
	}, got)

	// Without Checksums the layers are not read.
	probs, err = s.Check(context.Background(), dockerv1.CheckOptions{})
	require.NoError(t, err)
	assert.Len(t, probs, 2)
}

func TestCheckMissingAncestor(t *testing.T) {
	m := regstore.NewMemFS()
	_, err := regstoretest.WriteV1Tree(m, ".")
	require.NoError(t, err)
	require.NoError(t, m.RemoveAll("images/"+regstoretest.V1EnvID))
	s, err := dockerv1.Open(m, ".")
	require.NoError(t, err)
	probs, err := s.Check(context.Background(), dockerv1.CheckOptions{})
	require.NoError(t, err)
	kinds := map[string]dockerv1.ProblemKind{}
	for _, p := range probs {
		kinds[p.Image] = p.Kind
	}
	assert.Equal(t, dockerv1.MissingAncestor, kinds[regstoretest.V1AppID])
	assert.Equal(t, dockerv1.MissingAncestor, kinds[regstoretest.V1XZID])

	dst, _ := newStore(t)
	rep, err := dockerv1.Convert(context.Background(), dst, s, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	for _, tr := range rep.Tags {
		if tr.ImageID == regstoretest.V1AppID || tr.ImageID == regstoretest.V1XZID {
			assert.Equal(t, dockerv1.Skipped, tr.Status, tr.Repository+":"+tr.Tag)
			assert.ErrorIs(t, tr.Err, dockerv1.ErrMissingAncestor)
			assert.ErrorIs(t, tr.Err, fs.ErrNotExist)
		}
	}
}

func statuses(rep *dockerv1.Report) map[string]dockerv1.Status {
	out := map[string]dockerv1.Status{}
	for _, t := range rep.Tags {
		out[t.Repository+":"+t.Tag] = t.Status
	}
	return out
}

func gunzip(t *testing.T, b []byte) []byte {
	t.Helper()
	zr, err := gzip.NewReader(bytes.NewReader(b))
	require.NoError(t, err)
	out, err := io.ReadAll(zr)
	require.NoError(t, err)
	return out
}

func readBlob(t *testing.T, s *regstore.Store, d digest.Digest) []byte {
	t.Helper()
	b, err := s.Blob(d)
	require.NoError(t, err)
	rc, err := b.Open()
	require.NoError(t, err)
	defer rc.Close()
	out, err := io.ReadAll(rc)
	require.NoError(t, err)
	return out
}

func TestConvert(t *testing.T) {
	needXZ(t)
	src, tree := v1Tree(t)
	dst, mem := newStore(t)
	var last dockerv1.Progress
	calls := 0
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{
		Progress: func(p dockerv1.Progress) { last = p; calls++ }})
	require.NoError(t, err)

	assert.Equal(t, map[string]dockerv1.Status{
		"library/ubuntu:14.04":   dockerv1.Converted,
		"library/ubuntu:latest":  dockerv1.Converted,
		"myorg/app:1.0":          dockerv1.Converted,
		"myorg/app:latest":       dockerv1.Converted,
		"myorg/MyApp:latest":     dockerv1.Converted,
		"library/broken:missing": dockerv1.Skipped,
		"library/partial:wip":    dockerv1.Skipped,
		"library/corrupt:bad":    dockerv1.Skipped,
	}, statuses(rep))
	for _, tr := range rep.Tags {
		switch tr.Repository {
		case "library/broken":
			assert.ErrorIs(t, tr.Err, fs.ErrNotExist)
		case "library/partial":
			assert.ErrorIs(t, tr.Err, dockerv1.ErrUnfinished)
		case "library/corrupt":
			assert.ErrorIs(t, tr.Err, dockerv1.ErrChecksumMismatch)
		}
	}
	require.Len(t, rep.Images, 1)
	assert.Equal(t, regstoretest.V1CorruptID, rep.Images[0].ID)
	assert.Equal(t, []dockerv1.NameReport{{Repository: "myorg/MyApp", Target: "myorg/myapp", Action: "rewritten"}}, rep.Names)
	// base, env, app, xz converted once each (shared by four tags in three
	// repositories); the corrupt layer failed.
	assert.Equal(t, 4, rep.Stats.Layers)
	assert.Equal(t, 1, rep.Stats.EmptyLayers)
	assert.Equal(t, 5, rep.Stats.Converted)
	assert.Equal(t, 3, rep.Stats.Skipped)
	assert.Equal(t, 5, last.Layers)
	assert.Equal(t, 5, last.LayersTotal)
	assert.Equal(t, last.BytesTotal, last.Bytes)
	assert.Equal(t, 6, last.Tags) // the corrupt one is planned, then skipped
	assert.Equal(t, 6, last.TagsTotal)
	assert.Greater(t, calls, 9)

	for _, tr := range rep.Tags {
		if tr.Status != dockerv1.Converted {
			// Nothing of a skipped tag is published.
			_, err := dst.Repository(strings.ToLower(strings.TrimPrefix(tr.Repository, "library/")))
			if err == nil {
				r, _ := dst.Repository(strings.TrimPrefix(tr.Repository, "library/"))
				tg, _ := r.Tag(tr.Tag)
				_, err := tg.Digest()
				assert.ErrorIs(t, err, fs.ErrNotExist, tr.Repository)
			}
			continue
		}
		t.Run(tr.Target+":"+tr.Tag, func(t *testing.T) {
			r, err := dst.Repository(tr.Target)
			require.NoError(t, err)
			tg, err := r.Tag(tr.Tag)
			require.NoError(t, err)
			m, err := tg.Resolve()
			require.NoError(t, err)
			assert.Equal(t, tr.Digest, m.Digest())
			assert.Equal(t, regstore.MediaTypeDockerManifest, m.MediaType())

			chain := tree.Chain(tr.ImageID)
			var cfg struct {
				ID      *string `json:"id"`
				Parent  *string `json:"parent"`
				Size    *int    `json:"Size"`
				OS      string  `json:"os"`
				Arch    string  `json:"architecture"`
				Created string  `json:"created"`
				Config  struct {
					Env []string
				} `json:"config"`
				RootFS struct {
					Type    string          `json:"type"`
					DiffIDs []digest.Digest `json:"diff_ids"`
				} `json:"rootfs"`
				History []v1.History `json:"history"`
			}
			cd, ok := m.Config()
			require.True(t, ok)
			assert.Equal(t, regstore.MediaTypeDockerConfig, cd.MediaType)
			require.NoError(t, json.Unmarshal(readBlob(t, dst, cd.Digest), &cfg))
			assert.Nil(t, cfg.ID)
			assert.Nil(t, cfg.Parent)
			assert.Nil(t, cfg.Size)
			assert.Equal(t, "linux", cfg.OS)
			assert.Equal(t, "amd64", cfg.Arch)
			assert.Equal(t, "layers", cfg.RootFS.Type)
			require.Len(t, cfg.History, len(chain))
			layers := m.Layers()
			var want []digest.Digest
			li := 0
			for i, img := range chain {
				assert.Equal(t, img.Empty, cfg.History[i].EmptyLayer, img.ID)
				assert.Equal(t, "v1 maintainer <ops@example.com>", cfg.History[i].Author)
				assert.NotNil(t, cfg.History[i].Created)
				if img.Empty {
					assert.Equal(t, "/bin/sh -c #(nop) ENV FOO=bar", cfg.History[i].CreatedBy)
					continue
				}
				assert.True(t, strings.HasPrefix(cfg.History[i].CreatedBy, "/bin/sh -c "), cfg.History[i].CreatedBy)
				want = append(want, digest.FromBytes(img.Tar))
				require.Less(t, li, len(layers))
				assert.Equal(t, dockerv1.MediaTypeDockerLayer, layers[li].MediaType)
				blob := readBlob(t, dst, layers[li].Digest)
				assert.Equal(t, img.Tar, gunzip(t, blob), img.ID)
				assert.Equal(t, []byte{0x1f, 0x8b, 8, 0, 0, 0, 0, 0}, blob[:8], "gzip header: no name, no mtime")
				li++
			}
			assert.Equal(t, want, cfg.RootFS.DiffIDs)
			assert.Len(t, layers, li)

			// The tag's links carry the v1 push time.
			var lu int64
			for _, vt := range tree.Tags {
				if vt.Repository == tr.Repository && vt.Tag == tr.Tag {
					lu = vt.LastUpdate
				}
			}
			l := dst.Layout()
			for _, p := range []string{l.TagCurrent(tr.Target, tr.Tag), l.TagIndexLink(tr.Target, tr.Tag, m.Digest())} {
				fi, err := mem.Stat(p)
				require.NoError(t, err)
				assert.Equal(t, time.Unix(lu, 0).UTC(), fi.ModTime().UTC(), p)
			}
		})
	}

	// Idempotent: a second run converts nothing and changes nothing.
	before := snapshot(t, mem)
	rep2, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, rep2.Stats.Unchanged)
	assert.Equal(t, 0, rep2.Stats.Converted)
	assert.Equal(t, 0, rep2.Stats.Layers)
	assert.Equal(t, int64(len(tree.Images[regstoretest.V1CorruptID].Layer)), rep2.Stats.LayerBytes, "only the bad layer is read again")
	assert.Equal(t, 3, rep2.Stats.Skipped)
	for i := range rep.Tags {
		assert.Equal(t, rep.Tags[i].Digest, rep2.Tags[i].Digest)
	}
	assert.Equal(t, before, snapshot(t, mem))

	// The same tree gives the same digests in another store.
	dst3, _ := newStore(t)
	rep3, err := dockerv1.Convert(context.Background(), dst3, src, dockerv1.ConvertOptions{Workers: 1})
	require.NoError(t, err)
	for i := range rep.Tags {
		assert.Equal(t, rep.Tags[i].Digest, rep3.Tags[i].Digest)
	}

	// The report marshals.
	b, err := json.Marshal(rep)
	require.NoError(t, err)
	assert.Contains(t, string(b), `"v1Id":"`+regstoretest.V1XZID+`"`)
	assert.Contains(t, string(b), `"status":"skipped"`)
}

func TestConvertDryRun(t *testing.T) {
	src, _ := v1Tree(t)
	dst, mem := newStore(t)
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{DryRun: true})
	require.NoError(t, err)
	assert.Equal(t, 6, rep.Stats.Planned)
	assert.Equal(t, 2, rep.Stats.Skipped) // the corrupt layer is only found when read
	assert.Equal(t, dockerv1.Planned, statuses(rep)["library/corrupt:bad"])
	assert.Equal(t, dockerv1.Skipped, statuses(rep)["library/partial:wip"])
	assert.Empty(t, snapshot(t, mem))
}

func TestConvertOCIUncompressed(t *testing.T) {
	needXZ(t)
	src, tree := v1Tree(t)
	dst, _ := newStore(t)
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{OCI: true, Uncompressed: true})
	require.NoError(t, err)
	assert.Equal(t, 5, rep.Stats.Converted)
	r, err := dst.Repository("myorg/app")
	require.NoError(t, err)
	tg, err := r.Tag("1.0")
	require.NoError(t, err)
	m, err := tg.Resolve()
	require.NoError(t, err)
	assert.Equal(t, v1.MediaTypeImageManifest, m.MediaType())
	cd, _ := m.Config()
	assert.Equal(t, v1.MediaTypeImageConfig, cd.MediaType)
	var tars [][]byte
	for _, img := range tree.Chain(regstoretest.V1XZID) {
		if !img.Empty {
			tars = append(tars, img.Tar)
		}
	}
	require.Len(t, m.Layers(), len(tars))
	for i, l := range m.Layers() {
		assert.Equal(t, v1.MediaTypeImageLayer, l.MediaType)
		assert.Equal(t, digest.FromBytes(tars[i]), l.Digest) // digest == diff_id
	}
	// Other options: the gzip conversion is not "unchanged".
	rep2, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, rep2.Stats.Converted)
}

func TestConvertNoXZ(t *testing.T) {
	src, _ := v1Tree(t)
	dst, _ := newStore(t)
	noXZ := func(io.Reader) (io.ReadCloser, error) { return nil, dockerv1.ErrNoXZ }
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{XZ: noXZ})
	require.NoError(t, err)
	st := statuses(rep)
	assert.Equal(t, dockerv1.Skipped, st["myorg/app:1.0"])
	assert.Equal(t, dockerv1.Converted, st["library/ubuntu:latest"])
	for _, tr := range rep.Tags {
		if tr.Repository == "myorg/app" {
			assert.ErrorIs(t, tr.Err, errors.ErrUnsupported)
		}
	}
	r, _ := dst.Repository("myorg/app")
	ok, err := r.Exists()
	require.NoError(t, err)
	assert.False(t, ok, "no half-converted repository")
}

func TestConvertResume(t *testing.T) {
	needXZ(t)
	src, _ := v1Tree(t)
	clean, _ := newStore(t)
	want, err := dockerv1.Convert(context.Background(), clean, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)

	dst, _ := newStore(t)
	ctx, cancel := context.WithCancel(context.Background())
	_, err = dockerv1.Convert(ctx, dst, src, dockerv1.ConvertOptions{Workers: 1, Progress: func(p dockerv1.Progress) {
		if p.Layers == 2 {
			cancel()
		}
	}})
	require.ErrorIs(t, err, context.Canceled)
	got, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, 5, got.Stats.Converted+got.Stats.Unchanged)
	for i := range want.Tags {
		assert.Equal(t, want.Tags[i].Digest, got.Tags[i].Digest, want.Tags[i].Tag)
	}
}

func TestConvertDeterministicGzip(t *testing.T) {
	// The layer blobs do not depend on the machine: the digest of the
	// gzip stream is pinned here.
	needXZ(t)
	src, tree := v1Tree(t)
	dst, _ := newStore(t)
	_, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	var zb bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&zb, gzip.BestSpeed)
	_, _ = zw.Write(tree.Images[regstoretest.V1BaseID].Tar)
	require.NoError(t, zw.Close())
	d := digest.FromBytes(zb.Bytes())
	_, err = dst.Blob(d)
	assert.NoError(t, err, "base layer stored as gzip -1 of its tar (%s)", d)
	assert.Equal(t, byte(255), zb.Bytes()[9], "OS byte")
}

func TestMapName(t *testing.T) {
	for _, tc := range []struct {
		in, want  string
		rewritten bool
		keep      bool
		err       bool
	}{
		{in: "library/ubuntu", want: "ubuntu"},
		{in: "library/ubuntu", want: "library/ubuntu", keep: true},
		{in: "myorg/app", want: "myorg/app"},
		{in: "myorg/MyApp", want: "myorg/myapp", rewritten: true},
		{in: "Org/a b", want: "org/a-b", rewritten: true},
		{in: "org/a..b", want: "org/a-b", rewritten: true},
		{in: "org/a.-b", want: "org/a-b", rewritten: true},
		{in: "org/-a_", want: "org/a", rewritten: true},
		{in: "org/a__b", want: "org/a__b"},
		{in: "org/a---b", want: "org/a---b"},
		{in: "org/b/c", want: "org/b/c"},
		{in: "org/--", rewritten: true, err: true},
	} {
		got, rw, err := dockerv1.MapName(tc.in, tc.keep)
		if tc.err {
			assert.ErrorIs(t, err, regstore.ErrInvalidName, tc.in)
			continue
		}
		require.NoError(t, err, tc.in)
		assert.Equal(t, tc.want, got, "MapName(%q)", tc.in)
		assert.Equal(t, tc.rewritten, rw, "MapName(%q) rewritten", tc.in)
	}
}

func TestConvertNameCollision(t *testing.T) {
	m := regstore.NewMemFS()
	_, err := regstoretest.WriteV1Tree(m, ".")
	require.NoError(t, err)
	// A second spelling of myorg/MyApp, and the exact name it maps to.
	for _, p := range []string{"repositories/myorg/MYAPP/tag_latest", "repositories/myorg/myapp/tag_latest"} {
		f, err := m.Create(p)
		require.NoError(t, err)
		_, _ = f.Write([]byte(regstoretest.V1BaseID))
		require.NoError(t, f.Commit())
	}
	s, err := dockerv1.Open(m, ".")
	require.NoError(t, err)
	dst, _ := newStore(t)
	rep, err := dockerv1.Convert(context.Background(), dst, s, dockerv1.ConvertOptions{DryRun: true})
	require.NoError(t, err)
	st := statuses(rep)
	assert.Equal(t, dockerv1.Planned, st["myorg/myapp:latest"], "the exact name wins")
	assert.Equal(t, dockerv1.Skipped, st["myorg/MyApp:latest"])
	assert.Equal(t, dockerv1.Skipped, st["myorg/MYAPP:latest"])
	var coll int
	for _, n := range rep.Names {
		if n.Action == "collision" {
			coll++
		}
	}
	assert.Equal(t, 2, coll)
}

// replaceLayer rewrites image id's layer (and its _checksum, so that only
// the layer's form is tested) in a v1 tree on m.
func replaceLayer(t *testing.T, m *regstore.MemFS, id string, layer []byte) {
	t.Helper()
	js, err := m.ReadFile("images/" + id + "/json")
	require.NoError(t, err)
	sum := sha256.Sum256(append(append(js, '\n'), layer...))
	for name, b := range map[string][]byte{"layer": layer, "_checksum": []byte(`["sha256:` + hex.EncodeToString(sum[:]) + `"]`)} {
		f, err := m.Create("images/" + id + "/" + name)
		require.NoError(t, err)
		_, err = f.Write(b)
		require.NoError(t, err)
		require.NoError(t, f.Commit())
	}
}

func TestConvertBzip2AndDamagedLayers(t *testing.T) {
	if _, err := exec.LookPath("bzip2"); err != nil {
		t.Skip("no bzip2 program")
	}
	m := regstore.NewMemFS()
	tree, err := regstoretest.WriteV1Tree(m, ".")
	require.NoError(t, err)
	// The base layer bzip2-compressed (as the earliest clients pushed it).
	cmd := exec.Command("bzip2", "-c")
	cmd.Stdin = bytes.NewReader(tree.Images[regstoretest.V1BaseID].Tar)
	bz, err := cmd.Output()
	require.NoError(t, err)
	require.Equal(t, dockerv1.Bzip2, dockerv1.Sniff(bz))
	replaceLayer(t, m, regstoretest.V1BaseID, bz)
	// The orphan, tagged, with a layer that is not a tar.
	replaceLayer(t, m, regstoretest.V1OrphanID, []byte("this is not a tar archive, but it is long enough to be read as a header block?"+strings.Repeat("x", 600)))
	f, err := m.Create("repositories/library/junk/tag_latest")
	require.NoError(t, err)
	_, _ = f.Write([]byte(regstoretest.V1OrphanID))
	require.NoError(t, f.Commit())

	src, err := dockerv1.Open(m, ".")
	require.NoError(t, err)
	dst, _ := newStore(t)
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{XZ: func(io.Reader) (io.ReadCloser, error) { return nil, dockerv1.ErrNoXZ }})
	require.NoError(t, err)
	st := statuses(rep)
	assert.Equal(t, dockerv1.Converted, st["library/ubuntu:14.04"])
	assert.Equal(t, dockerv1.Skipped, st["library/junk:latest"])
	for _, tr := range rep.Tags {
		if tr.Repository == "library/junk" {
			assert.Contains(t, tr.Reason, "tar")
		}
	}
	// The bzip2 layer's diff_id is its tar's, and it is stored as gzip.
	r, _ := dst.Repository("ubuntu")
	tg, _ := r.Tag("14.04")
	man, err := tg.Resolve()
	require.NoError(t, err)
	require.Len(t, man.Layers(), 1)
	assert.Equal(t, tree.Images[regstoretest.V1BaseID].Tar, gunzip(t, readBlob(t, dst, man.Layers()[0].Digest)))
}

func TestExecXZ(t *testing.T) {
	needXZ(t)
	rc, err := dockerv1.ExecXZ(bytes.NewReader(regstoretest.V1XZLayer))
	require.NoError(t, err)
	got, err := io.ReadAll(rc)
	require.NoError(t, err)
	require.NoError(t, rc.Close())
	assert.Equal(t, regstoretest.V1XZTar, got)

	// A damaged stream: the program's failure is the error.
	rc, err = dockerv1.ExecXZ(bytes.NewReader(regstoretest.V1XZLayer[:len(regstoretest.V1XZLayer)-20]))
	require.NoError(t, err)
	_, _ = io.ReadAll(rc)
	assert.ErrorContains(t, rc.Close(), "xz")

	// No program: ErrNoXZ.
	t.Setenv("PATH", t.TempDir())
	_, err = dockerv1.ExecXZ(bytes.NewReader(nil))
	assert.ErrorIs(t, err, dockerv1.ErrNoXZ)
	assert.ErrorIs(t, err, errors.ErrUnsupported)
}

func TestConvertDamagedXZ(t *testing.T) {
	needXZ(t)
	m := regstore.NewMemFS()
	_, err := regstoretest.WriteV1Tree(m, ".")
	require.NoError(t, err)
	replaceLayer(t, m, regstoretest.V1XZID, regstoretest.V1XZLayer[:len(regstoretest.V1XZLayer)-20])
	src, err := dockerv1.Open(m, ".")
	require.NoError(t, err)
	dst, _ := newStore(t)
	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	st := statuses(rep)
	assert.Equal(t, dockerv1.Skipped, st["myorg/app:1.0"])
	assert.Equal(t, dockerv1.Converted, st["library/ubuntu:latest"])
	var reason string
	for _, img := range rep.Images {
		if img.ID == regstoretest.V1XZID {
			reason = img.Reason
		}
	}
	assert.Contains(t, reason, "xz")
}

func TestConvertTagConflict(t *testing.T) {
	needXZ(t)
	src, _ := v1Tree(t)
	dst, _ := newStore(t)
	// ubuntu:latest was pushed to v2 since (another image).
	r, err := dst.Repository("ubuntu")
	require.NoError(t, err)
	other := regstoretest.Push(t, r, regstoretest.Image{MediaType: regstore.MediaTypeDockerManifest,
		Layers: []regstoretest.Layer{regstoretest.NewLayer(map[string]string{"new": "v2 push"})}}, "latest")

	rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{})
	require.NoError(t, err)
	assert.Equal(t, dockerv1.Skipped, statuses(rep)["library/ubuntu:latest"])
	assert.Equal(t, dockerv1.Converted, statuses(rep)["library/ubuntu:14.04"])
	for _, tr := range rep.Tags {
		if tr.Repository == "library/ubuntu" && tr.Tag == "latest" {
			assert.ErrorIs(t, tr.Err, dockerv1.ErrTagConflict)
			assert.ErrorIs(t, tr.Err, fs.ErrExist)
		}
	}
	tg, _ := r.Tag("latest")
	d, err := tg.Digest()
	require.NoError(t, err)
	assert.Equal(t, other.Digest(), d, "the v2 push is kept")

	rep, err = dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{Overwrite: true})
	require.NoError(t, err)
	assert.Equal(t, dockerv1.Converted, statuses(rep)["library/ubuntu:latest"])
	d, err = tg.Digest()
	require.NoError(t, err)
	assert.NotEqual(t, other.Digest(), d)
}

// TestConvertLargeLayers: layers of several compression blocks give the
// same blobs with any number of workers, and decompress to their tars.
func TestConvertLargeLayers(t *testing.T) {
	m, _ := benchTree(t, 2, 5<<19) // 2.5 MiB each
	src, err := dockerv1.Open(m, ".")
	require.NoError(t, err)
	var digests []digest.Digest
	for _, workers := range []int{1, 3} {
		dst, _ := newStore(t)
		rep, err := dockerv1.Convert(context.Background(), dst, src, dockerv1.ConvertOptions{Workers: workers})
		require.NoError(t, err)
		require.Equal(t, 1, rep.Stats.Converted)
		digests = append(digests, rep.Tags[0].Digest)
		r, _ := dst.Repository("bench")
		tg, _ := r.Tag("latest")
		man, err := tg.Resolve()
		require.NoError(t, err)
		chain, err := src.Chain(rep.Tags[0].ImageID)
		require.NoError(t, err)
		require.Len(t, man.Layers(), 2)
		for i, l := range man.Layers() {
			f, err := src.OpenLayer(chain[i].ID)
			require.NoError(t, err)
			want, err := io.ReadAll(f)
			require.NoError(t, err)
			f.Close()
			assert.Equal(t, want, gunzip(t, readBlob(t, dst, l.Digest)))
		}
	}
	assert.Equal(t, digests[0], digests[1])
}
