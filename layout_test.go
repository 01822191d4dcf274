package regstore_test

import (
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/go-digest"
	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Digests of "hello", written out so that the golden paths below do not
// depend on the code under test.
const (
	goldenHex256 = "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"
	goldenHex384 = "59e1748777448c69de6b800d7a33bbfb9ff1b463e44354c3553bcdb9c666fa90125a3c79f90397bdf5f6a13de828684f"
	goldenHex512 = "9b71d224bd62f3785d96d46ad3ea3d73319bfbc2890caadae2dff72519673ca72323c3d99ba5c11d7c7acc6e14b8c5da0c4663475c2e5c3adef46f73bcdec043"
)

func TestValidateName(t *testing.T) {
	for _, c := range []struct {
		name string
		ok   bool
	}{
		{"a", true},
		{"a/b", true},
		{"a__b", true},
		{"a--b", true},
		{"a-----b", true},
		{"a.b", true},
		{"a_b", true},
		{"0", true},
		{"team/app/web", true},
		{"library/ubuntu", true},
		{"example.com/x", true}, // a lowercase domain is just a component with dots
		{strings.Repeat("a", 255), true},
		{strings.Repeat("a/", 127) + "a", true}, // 255 characters, 128 components
		// A first component that is a host name: either case, not counted
		// in the length (the registry v3 serves these).
		{"Team/app", true},
		{"EXAMPLE.com/app", true},
		{"Example.com/x", true},
		{"my-host.example/a/b", true},
		{"a/" + strings.Repeat("b", 255), true},         // 257 in total
		{"x.y/" + strings.Repeat("b", 255), true},       // 259 in total
		{"localhost/" + strings.Repeat("b", 255), true}, // 265 in total
		{strings.Repeat("l", 250) + "/tagt/app", true},
		{strings.Repeat("a", 64), true}, // 64 hex: served without a cache

		{"", false},
		{"A", false},
		{"Example", false},
		{"-a", false},
		{"a-", false},
		{"a___b", false},
		{"a._b", false},
		{"a..b", false},
		{"a/_b", false},
		{"_layers", false},
		{"_manifests", false},
		{"_uploads", false},
		{"a/_manifests", false},
		{"a/_layers/sha256", false},
		{"a//b", false},
		{"/a", false},
		{"a/", false},
		{"/", false},
		{"../a", false},
		{"a/../b", false},
		{"a/./b", false},
		{"a/..", false},
		{".", false},
		{"..", false},
		{"localhost:5000/x", false},
		{"10.0.0.1:5000/app", false},
		{"[::1]/app", false},
		{"team/App", false},
		{"tagt/App", false},
		{"a___b/app", false},
		{"-team/app", false},
		{"team-/app", false},
		{"a..b/app", false},
		{"a/" + strings.Repeat("b", 256), false},
		{"a_b/" + strings.Repeat("b", 252), false}, // not a host: 256 in total
		{strings.Repeat("h", 256) + "/app", false}, // longer than a directory name
		{"a b", false},
		{"a\n", false},
		{"a\x00b", false},
		{`a\b`, false},
		{"ä", false},
		{"a@sha256", false},
		{"a:latest", false},
		{strings.Repeat("a", 256), false},
		{strings.Repeat("a/", 128) + "a", true},  // 257 characters, 255 after the host "a"
		{strings.Repeat("a/", 129) + "a", false}, // 257 after the host
	} {
		t.Run(c.name, func(t *testing.T) {
			err := regstore.ValidateName(c.name)
			if c.ok {
				assert.NoError(t, err, "ValidateName(%q)", c.name)
				return
			}
			assert.ErrorIs(t, err, regstore.ErrInvalidName, "ValidateName(%q)", c.name)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ValidateName(%q)", c.name)
			assert.NotErrorIs(t, err, regstore.ErrInvalidTag, "ValidateName(%q)", c.name)
		})
	}
}

func TestValidateTag(t *testing.T) {
	for _, c := range []struct {
		tag string
		ok  bool
	}{
		{"latest", true},
		{"Latest", true},
		{"v1.0", true},
		{"v1.0-rc_1", true},
		{"_x", true},
		{"0", true},
		{"a..b", true},
		{"x-", true},
		{"x.", true},
		{"sha256-" + goldenHex256, true}, // referrers tag schema
		{strings.Repeat("a", 128), true},

		{"", false},
		{".x", false},
		{"-x", false},
		{".", false},
		{"..", false},
		{strings.Repeat("a", 129), false},
		{"a/b", false},
		{"a:b", false},
		{"a@b", false},
		{"a b", false},
		{" a", false},
		{"latest\n", false},
		{"a\x00", false},
		{"ä", false},
		{"../x", false},
	} {
		t.Run(c.tag, func(t *testing.T) {
			err := regstore.ValidateTag(c.tag)
			if c.ok {
				assert.NoError(t, err, "ValidateTag(%q)", c.tag)
				return
			}
			assert.ErrorIs(t, err, regstore.ErrInvalidTag, "ValidateTag(%q)", c.tag)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ValidateTag(%q)", c.tag)
			assert.NotErrorIs(t, err, regstore.ErrInvalidName, "ValidateTag(%q)", c.tag)
		})
	}
}

func TestValidateDigest(t *testing.T) {
	for _, c := range []struct {
		d  string
		ok bool
	}{
		{"sha256:" + goldenHex256, true},
		{"sha384:" + goldenHex384, true},
		{"sha512:" + goldenHex512, true},

		{"", false},
		{"sha256", false},
		{"sha256:", false},
		{":" + goldenHex256, false},
		{"sha256:" + goldenHex256[:63], false},
		{"sha256:" + goldenHex256 + "0", false},
		{"sha256:" + strings.ToUpper(goldenHex256), false},
		{"SHA256:" + goldenHex256, false},
		{"sha256:" + goldenHex256 + "\n", false},
		{" sha256:" + goldenHex256, false},
		{"sha256: " + goldenHex256[1:], false},
		{"sha512:" + goldenHex256, false}, // wrong length for the algorithm
		{"sha256:" + goldenHex512, false},
		{"md5:5d41402abc4b2a76b9719d911017c592", false},
		{"tarsum.v1+sha256:" + goldenHex256, false},
		{"sha256:../../x", false},
		{"sha256:" + goldenHex256[:30] + "/" + goldenHex256[31:], false},
		{"sha256:" + goldenHex256[:30] + ".." + goldenHex256[32:], false},
		{"sha256:" + strings.Repeat("g", 64), false},
		{"sha256/../../x:" + goldenHex256, false},
	} {
		t.Run(c.d, func(t *testing.T) {
			err := regstore.ValidateDigest(digest.Digest(c.d))
			if c.ok {
				assert.NoError(t, err, "ValidateDigest(%q)", c.d)
				return
			}
			assert.ErrorIs(t, err, regstore.ErrInvalidDigest, "ValidateDigest(%q)", c.d)
			assert.ErrorIs(t, err, fs.ErrInvalid, "ValidateDigest(%q)", c.d)
		})
	}
}

// layoutGolden is every path-returning method of Layout for the name
// "team/app", the tag "v1.0", the digest of "hello" and an upload id, with
// the default root. Every Layout method that returns one string must have a
// row (TestLayoutGoldenComplete).
var layoutGolden = []struct {
	method string
	got    func(l regstore.Layout) string
	want   string
}{
	{"Root", func(l regstore.Layout) string { return l.Root() },
		"docker/registry/v2"},
	{"Blobs", func(l regstore.Layout) string { return l.Blobs() },
		"docker/registry/v2/blobs"},
	{"BlobDir", func(l regstore.Layout) string { return l.BlobDir(golden256) },
		"docker/registry/v2/blobs/sha256/2c/" + goldenHex256},
	{"BlobData", func(l regstore.Layout) string { return l.BlobData(golden256) },
		"docker/registry/v2/blobs/sha256/2c/" + goldenHex256 + "/data"},
	{"BlobData/sha512", func(l regstore.Layout) string { return l.BlobData(golden512) },
		"docker/registry/v2/blobs/sha512/9b/" + goldenHex512 + "/data"},
	{"BlobDataAside", func(l regstore.Layout) string { return l.BlobDataAside(golden256) },
		"docker/registry/v2/blobs/sha256/2c/" + goldenHex256 + "/data.gc"},
	{"GCJournal", func(l regstore.Layout) string { return l.GCJournal() },
		"docker/registry/v2/_gc/aside"},
	{"GCDir", func(l regstore.Layout) string { return l.GCDir() },
		"docker/registry/v2/_gc"},
	{"GCRunJournal", func(l regstore.Layout) string { return l.GCRunJournal("20261203T181812Z-bc8e0796") },
		"docker/registry/v2/_gc/aside-20261203T181812Z-bc8e0796"},
	{"Repositories", func(l regstore.Layout) string { return l.Repositories() },
		"docker/registry/v2/repositories"},
	{"Repository", func(l regstore.Layout) string { return l.Repository("team/app") },
		"docker/registry/v2/repositories/team/app"},
	{"Layers", func(l regstore.Layout) string { return l.Layers("team/app") },
		"docker/registry/v2/repositories/team/app/_layers"},
	{"LayerLink", func(l regstore.Layout) string { return l.LayerLink("team/app", golden256) },
		"docker/registry/v2/repositories/team/app/_layers/sha256/" + goldenHex256 + "/link"},
	{"LayerLink/sha512", func(l regstore.Layout) string { return l.LayerLink("team/app", golden512) },
		"docker/registry/v2/repositories/team/app/_layers/sha512/" + goldenHex512 + "/link"},
	{"Manifests", func(l regstore.Layout) string { return l.Manifests("team/app") },
		"docker/registry/v2/repositories/team/app/_manifests"},
	{"Revisions", func(l regstore.Layout) string { return l.Revisions("team/app") },
		"docker/registry/v2/repositories/team/app/_manifests/revisions"},
	{"RevisionDir", func(l regstore.Layout) string { return l.RevisionDir("team/app", golden256) },
		"docker/registry/v2/repositories/team/app/_manifests/revisions/sha256/" + goldenHex256},
	{"RevisionLink", func(l regstore.Layout) string { return l.RevisionLink("team/app", golden256) },
		"docker/registry/v2/repositories/team/app/_manifests/revisions/sha256/" + goldenHex256 + "/link"},
	{"Tags", func(l regstore.Layout) string { return l.Tags("team/app") },
		"docker/registry/v2/repositories/team/app/_manifests/tags"},
	{"Tag", func(l regstore.Layout) string { return l.Tag("team/app", "v1.0") },
		"docker/registry/v2/repositories/team/app/_manifests/tags/v1.0"},
	{"TagCurrent", func(l regstore.Layout) string { return l.TagCurrent("team/app", "v1.0") },
		"docker/registry/v2/repositories/team/app/_manifests/tags/v1.0/current/link"},
	{"TagIndex", func(l regstore.Layout) string { return l.TagIndex("team/app", "v1.0") },
		"docker/registry/v2/repositories/team/app/_manifests/tags/v1.0/index"},
	{"TagIndexEntry", func(l regstore.Layout) string { return l.TagIndexEntry("team/app", "v1.0", golden256) },
		"docker/registry/v2/repositories/team/app/_manifests/tags/v1.0/index/sha256/" + goldenHex256},
	{"TagIndexLink", func(l regstore.Layout) string { return l.TagIndexLink("team/app", "v1.0", golden256) },
		"docker/registry/v2/repositories/team/app/_manifests/tags/v1.0/index/sha256/" + goldenHex256 + "/link"},
	{"Uploads", func(l regstore.Layout) string { return l.Uploads("team/app") },
		"docker/registry/v2/repositories/team/app/_uploads"},
	{"Upload", func(l regstore.Layout) string { return l.Upload("team/app", goldenUploadID) },
		"docker/registry/v2/repositories/team/app/_uploads/" + goldenUploadID},
	{"UploadData", func(l regstore.Layout) string { return l.UploadData("team/app", goldenUploadID) },
		"docker/registry/v2/repositories/team/app/_uploads/" + goldenUploadID + "/data"},
	{"UploadStartedAt", func(l regstore.Layout) string { return l.UploadStartedAt("team/app", goldenUploadID) },
		"docker/registry/v2/repositories/team/app/_uploads/" + goldenUploadID + "/startedat"},
	{"UploadHashStates", func(l regstore.Layout) string { return l.UploadHashStates("team/app", goldenUploadID) },
		"docker/registry/v2/repositories/team/app/_uploads/" + goldenUploadID + "/hashstates"},
}

const (
	golden256      = digest.Digest("sha256:" + goldenHex256)
	golden384      = digest.Digest("sha384:" + goldenHex384)
	golden512      = digest.Digest("sha512:" + goldenHex512)
	goldenUploadID = "0190a5c2-6e3b-7c1a-9f2e-3d4b5c6d7e8f"
)

func TestHelloDigests(t *testing.T) {
	assert.Equal(t, golden256, digest.SHA256.FromString("hello"), "SHA256.FromString(hello)")
	assert.Equal(t, golden384, digest.SHA384.FromString("hello"), "SHA384.FromString(hello)")
	assert.Equal(t, golden512, digest.SHA512.FromString("hello"), "SHA512.FromString(hello)")
}

func TestLayoutGolden(t *testing.T) {
	def, err := regstore.NewLayout(regstore.DefaultLayoutRoot)
	require.NoError(t, err, "NewLayout(%q)", regstore.DefaultLayoutRoot)
	dot, err := regstore.NewLayout(".")
	require.NoError(t, err, `NewLayout(".")`)
	custom, err := regstore.NewLayout("srv/registry")
	require.NoError(t, err, `NewLayout("srv/registry")`)
	opened, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err, "Open(MemFS)")
	openedDot, err := regstore.Open(regstore.NewMemFS(), regstore.WithLayoutRoot("."))
	require.NoError(t, err, `Open(MemFS, WithLayoutRoot("."))`)

	const prefix = regstore.DefaultLayoutRoot + "/"
	for _, c := range []struct {
		name   string
		layout regstore.Layout
		want   func(golden string) string
	}{
		{"default", def, func(g string) string { return g }},
		{"Open", opened.Layout(), func(g string) string { return g }},
		{"dot", dot, func(g string) string {
			if g == regstore.DefaultLayoutRoot {
				return "."
			}
			return strings.TrimPrefix(g, prefix)
		}},
		{"WithLayoutRoot(.)", openedDot.Layout(), func(g string) string {
			if g == regstore.DefaultLayoutRoot {
				return "."
			}
			return strings.TrimPrefix(g, prefix)
		}},
		{"custom", custom, func(g string) string {
			return "srv/registry" + strings.TrimPrefix(g, regstore.DefaultLayoutRoot)
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			for _, g := range layoutGolden {
				require.True(t, g.want == regstore.DefaultLayoutRoot || strings.HasPrefix(g.want, prefix),
					"golden %s = %q is not below the default root", g.method, g.want)
				want := c.want(g.want)
				assert.Equal(t, want, g.got(c.layout), "Layout(%q).%s", c.layout.Root(), g.method)
			}
		})
	}
}

// TestLayoutGoldenComplete fails when Layout grows a path method that has no
// golden row, so that every path the package can build is pinned.
func TestLayoutGoldenComplete(t *testing.T) {
	have := map[string]bool{}
	for _, g := range layoutGolden {
		method, _, _ := strings.Cut(g.method, "/")
		have[method] = true
	}
	typ := reflect.TypeFor[regstore.Layout]()
	for i := range typ.NumMethod() {
		m := typ.Method(i)
		if m.Type.NumOut() == 1 && m.Type.Out(0).Kind() == reflect.String {
			assert.True(t, have[m.Name], "Layout.%s has no row in layoutGolden", m.Name)
		}
	}
}

func TestNewLayout(t *testing.T) {
	for _, c := range []struct {
		root string
		ok   bool
	}{
		{regstore.DefaultLayoutRoot, true},
		{".", true},
		{"v2", true},
		{"srv/registry/docker/registry/v2", true},

		{"", false},
		{"/", false},
		{"/abs", false},
		{"/var/lib/registry", false},
		{"../x", false},
		{"..", false},
		{"a/../b", false},
		{"a/..", false},
		{"./a", false},
		{"a/./b", false},
		{"a/", false},
		{"a//b", false},
	} {
		t.Run(c.root, func(t *testing.T) {
			l, err := regstore.NewLayout(c.root)
			s, openErr := regstore.Open(regstore.NewMemFS(), regstore.WithLayoutRoot(c.root))
			if c.ok {
				require.NoError(t, err, "NewLayout(%q)", c.root)
				assert.Equal(t, c.root, l.Root(), "NewLayout(%q).Root()", c.root)
				require.NoError(t, openErr, "Open(WithLayoutRoot(%q))", c.root)
				assert.Equal(t, l, s.Layout(), "Open(WithLayoutRoot(%q)).Layout()", c.root)
				return
			}
			assert.ErrorIs(t, err, fs.ErrInvalid, "NewLayout(%q)", c.root)
			var e *regstore.Error
			assert.ErrorAs(t, err, &e, "NewLayout(%q)", c.root)
			assert.ErrorIs(t, openErr, fs.ErrInvalid, "Open(WithLayoutRoot(%q))", c.root)
			assert.Nil(t, s, "Open(WithLayoutRoot(%q))", c.root)
		})
	}
}

func TestBlobDigest(t *testing.T) {
	l, err := regstore.NewLayout(regstore.DefaultLayoutRoot)
	require.NoError(t, err)
	t.Run("round trip", func(t *testing.T) {
		for _, d := range []digest.Digest{
			golden256, golden384, golden512,
			digest.FromString(""),
			digest.SHA512.FromString("x"),
		} {
			rel, ok := strings.CutPrefix(l.BlobData(d), l.Blobs()+"/")
			require.True(t, ok, "BlobData(%s) = %q is not below Blobs() = %q", d, l.BlobData(d), l.Blobs())
			got, ok := regstore.BlobDigest(rel)
			assert.True(t, ok, "BlobDigest(%q) ok", rel)
			assert.Equal(t, d, got, "BlobDigest(%q)", rel)
		}
	})
	for _, rel := range []string{
		"",
		"data",
		"sha256/2c/" + goldenHex256,
		"sha256/2c/" + goldenHex256 + "/",
		"sha256/2c/" + goldenHex256 + "/link",
		"sha256/2c/" + goldenHex256 + "/data/x",
		"sha256/2c/" + goldenHex256 + "/data.abc.tmp",
		"sha256/" + goldenHex256 + "/data",    // no fan-out
		"sha256/ab/" + goldenHex256 + "/data", // wrong fan-out
		"sha256/2C/" + strings.ToUpper(goldenHex256) + "/data",
		"SHA256/2c/" + goldenHex256 + "/data",
		"sha256/2c/" + goldenHex256[:63] + "/data",
		"sha256/2c/2c/data",
		"sha256/2/2/data",
		"sha256///data",
		"md5/5d/5d41402abc4b2a76b9719d911017c592/data",
		"sha512/2c/" + goldenHex256 + "/data",
		"/sha256/2c/" + goldenHex256 + "/data",
		"../sha256/2c/" + goldenHex256 + "/data",
		"sha256/../2c/" + goldenHex256 + "/data",
		"tarsum/v1/sha256/2c/" + goldenHex256 + "/data",
		"sha256:x/2c/" + goldenHex256 + "/data",
		"staging-ABC.tmp",
	} {
		t.Run(rel, func(t *testing.T) {
			d, ok := regstore.BlobDigest(rel)
			assert.False(t, ok, "BlobDigest(%q) ok", rel)
			assert.Empty(t, d, "BlobDigest(%q)", rel)
		})
	}
}

// FuzzNamePath checks the name → path mapping: for every name, tag and
// digest that validate, every Layout path is a valid unrooted slash path
// below the layout root with no ".." element, and the repository and blob
// parts map back to what went in.
func FuzzNamePath(f *testing.F) {
	f.Add(regstore.DefaultLayoutRoot, "team/app", "latest", []byte("hello"))
	f.Add(".", "a", "_x", []byte{})
	f.Add("srv/registry", "a__b/c--d/e.f", "v1.0-rc_1", []byte{0, 1, 2})
	f.Add("..", "a/../b", "..", []byte("x"))
	f.Fuzz(func(t *testing.T, root, name, tag string, data []byte) {
		if regstore.ValidateName(name) != nil || regstore.ValidateTag(tag) != nil {
			return
		}
		l, err := regstore.NewLayout(root)
		if err != nil {
			l, err = regstore.NewLayout(regstore.DefaultLayoutRoot)
			require.NoError(t, err)
		}
		prefix := l.Root() + "/"
		if l.Root() == "." {
			prefix = ""
		}
		digests := []digest.Digest{
			digest.SHA256.FromBytes(data),
			digest.SHA384.FromBytes(data),
			digest.SHA512.FromBytes(data),
		}
		paths := []string{
			l.Blobs(), l.Repositories(),
			l.Repository(name), l.Layers(name), l.Manifests(name), l.Revisions(name),
			l.Tags(name), l.Tag(name, tag), l.TagCurrent(name, tag), l.TagIndex(name, tag),
			l.Uploads(name), l.Upload(name, goldenUploadID), l.UploadData(name, goldenUploadID),
			l.UploadStartedAt(name, goldenUploadID), l.UploadHashStates(name, goldenUploadID),
		}
		for _, d := range digests {
			require.NoError(t, regstore.ValidateDigest(d), "ValidateDigest(%s)", d)
			paths = append(paths,
				l.BlobDir(d), l.BlobData(d), l.LayerLink(name, d),
				l.RevisionDir(name, d), l.RevisionLink(name, d),
				l.TagIndexEntry(name, tag, d), l.TagIndexLink(name, tag, d))

			rel, ok := strings.CutPrefix(l.BlobData(d), l.Blobs()+"/")
			require.True(t, ok, "BlobData(%s) = %q is not below %q", d, l.BlobData(d), l.Blobs())
			back, ok := regstore.BlobDigest(rel)
			assert.True(t, ok && back == d, "BlobDigest(%q) = %q, %v, want %q, true", rel, back, ok, d)
		}
		for _, p := range paths {
			assert.True(t, fs.ValidPath(p), "fs.ValidPath(%q)", p)
			assert.True(t, strings.HasPrefix(p, prefix), "%q does not start with %q", p, prefix)
			assert.False(t, slices.Contains(strings.Split(p, "/"), ".."), "%q has a .. element", p)
		}
		repo := l.Repository(name)
		assert.Equal(t, name, strings.TrimPrefix(repo, prefix+"repositories/"), "Repository(%q) = %q", name, repo)
		assert.Equal(t, l.Tags(name)+"/"+tag, l.Tag(name, tag), "Tag(%q, %q)", name, tag)
		for c := range strings.SplitSeq(name, "/") {
			// Name components can never collide with _layers, _manifests
			// or _uploads.
			assert.False(t, strings.HasPrefix(c, "_"), "ValidateName(%q) accepted a component starting with _", name)
		}
	})
}
