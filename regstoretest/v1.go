package regstoretest

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	_ "embed"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"maps"
	"path"
	"slices"
	"strings"
	"time"

	"github.com/regstore/regstore"
)

// V1File is one entry of a v1 layer tar.
type V1File struct {
	Name     string // slash-separated; a directory's name ends in "/"
	Type     byte   // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     int64  // permission bits
	Body     string // a regular file's content
	Linkname string // a symbolic link's target
}

// V1Image is one image of a v1 tree written by WriteV1Tree.
type V1Image struct {
	ID, Parent string
	// JSON is the images/<id>/json file.
	JSON []byte
	// Files are the layer tar's entries, in order; Tar is the tar.
	Files []V1File
	Tar   []byte
	// Layer is the layer file as stored: Tar, or Tar compressed.
	Layer []byte
	// Compression is "none", "gzip" or "xz".
	Compression string
	// Empty: the tar holds no entry (a metadata-only build step).
	Empty bool
	// Unfinished: the push never finished (_inprogress; a cut layer).
	Unfinished bool
	// BadChecksum: the _checksum does not match the layer.
	BadChecksum bool
}

// V1Tag is one tag of a v1 tree written by WriteV1Tree.
type V1Tag struct {
	// Repository is the v1 name, "namespace/name".
	Repository, Tag string
	ImageID         string
	// LastUpdate is the tag's last_update (Unix seconds).
	LastUpdate int64
}

// V1Tree is what WriteV1Tree wrote.
type V1Tree struct {
	Images map[string]*V1Image
	Tags   []V1Tag
}

// The ids of the images WriteV1Tree writes.
var (
	V1BaseID       = v1ID("base", 64)
	V1EnvID        = v1ID("env", 64)    // empty layer
	V1AppID        = v1ID("app", 64)    // gzip layer with whiteouts
	V1XZID         = v1ID("xz", 16)     // xz layer, an old 16-hex id
	V1UnfinishedID = v1ID("wip", 64)    // _inprogress
	V1CorruptID    = v1ID("bad", 64)    // _checksum mismatch
	V1MissingID    = v1ID("gone", 64)   // tagged, never stored
	V1OrphanID     = v1ID("orphan", 64) // stored, never tagged
)

func v1ID(seed string, n int) string {
	h := sha256.Sum256([]byte("regstoretest v1 " + seed))
	return hex.EncodeToString(h[:])[:n]
}

// V1XZTar is the tar of the xz layer, and V1XZLayer the same compressed
// by the xz program (xz -6, CRC64), kept as a file so that generating the
// tree needs no xz encoder.
var (
	//go:embed testdata/v1-layer.tar.xz
	V1XZLayer []byte
	V1XZTar   = buildTar(v1XZFiles)
)

var v1XZFiles = []V1File{
	{Name: "opt/", Type: tar.TypeDir, Mode: 0o755},
	{Name: "opt/x/", Type: tar.TypeDir, Mode: 0o700},
	{Name: "opt/x/data.txt", Type: tar.TypeReg, Mode: 0o644, Body: "xz-compressed layer, pushed by a 2013 client\n"},
}

// WriteV1Tree writes a legacy docker-registry (v1) storage tree at dir of
// w (dir "." for its root), exactly in docker-registry's formats:
//
//	images/<id>/json, layer, ancestry, _checksum [, _inprogress]
//	repositories/<namespace>/<name>/tag_<tag>, tag<tag>_json, json, _index_images
//
// It holds a base image with a plain tar layer (directories, an
// executable, a symbolic link), a metadata-only image whose tar is empty,
// an image with a gzip layer that replaces a file, deletes a file and a
// directory with whiteouts (".wh.<name>") and empties a directory with an
// opaque whiteout (".wh..wh..opq"), and an image with an xz layer
// and a 16-hex id; these ancestors are shared by several repositories.
// Then an unfinished push, an image whose _checksum does not match, an
// untagged image, a tag pointing at a missing image, and a repository
// name with upper case ("myorg/MyApp").
func WriteV1Tree(w regstore.WriteFS, dir string) (*V1Tree, error) {
	t := &V1Tree{Images: map[string]*V1Image{}}
	created := time.Date(2014, 10, 1, 12, 0, 0, 0, time.UTC)
	add := func(img *V1Image, cmd []string, env []string) {
		img.Tar = buildTar(img.Files)
		img.Empty = len(img.Files) == 0
		switch img.Compression {
		case "gzip":
			var b bytes.Buffer
			zw := gzip.NewWriter(&b)
			_, _ = zw.Write(img.Tar)
			_ = zw.Close()
			img.Layer = b.Bytes()
		case "xz":
			img.Layer = V1XZLayer
		default:
			img.Compression = "none"
			img.Layer = img.Tar
		}
		created = created.Add(time.Hour)
		img.JSON = v1ImageJSON(img.ID, img.Parent, created, cmd, env, len(img.Tar))
		t.Images[img.ID] = img
	}
	add(&V1Image{ID: V1BaseID, Files: []V1File{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/tool", Type: tar.TypeReg, Mode: 0o755, Body: "#!/bin/sh\necho tool v1\n"},
		{Name: "bin/alias", Type: tar.TypeSymlink, Mode: 0o777, Linkname: "tool"},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/hostname", Type: tar.TypeReg, Mode: 0o644, Body: "v1host\n"},
		{Name: "etc/os-release", Type: tar.TypeReg, Mode: 0o644, Body: "NAME=v1\n"},
		{Name: "var/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var/cache/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var/cache/big.bin", Type: tar.TypeReg, Mode: 0o644, Body: strings.Repeat("cache line\n", 400)},
		{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/doc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/doc/a.txt", Type: tar.TypeReg, Mode: 0o644, Body: "doc a\n"},
		{Name: "usr/share/doc/b.txt", Type: tar.TypeReg, Mode: 0o644, Body: "doc b\n"},
	}}, []string{"/bin/sh", "-c", "#(nop) ADD file:0123456789abcdef in /"}, nil)
	add(&V1Image{ID: V1EnvID, Parent: V1BaseID},
		[]string{"/bin/sh", "-c", "#(nop) ENV FOO=bar"}, []string{"FOO=bar"})
	add(&V1Image{ID: V1AppID, Parent: V1EnvID, Compression: "gzip", Files: []V1File{
		{Name: "bin/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "bin/tool", Type: tar.TypeReg, Mode: 0o750, Body: "#!/bin/sh\necho tool v2\n"},
		{Name: "etc/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "etc/.wh.os-release", Type: tar.TypeReg, Mode: 0o644},
		{Name: "etc/app.conf", Type: tar.TypeReg, Mode: 0o600, Body: "listen=80\n"},
		{Name: "var/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "var/.wh.cache", Type: tar.TypeReg, Mode: 0o644},
		{Name: "usr/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/", Type: tar.TypeDir, Mode: 0o755},
		{Name: "usr/share/doc/", Type: tar.TypeDir, Mode: 0o750},
		{Name: "usr/share/doc/.wh..wh..opq", Type: tar.TypeReg, Mode: 0o644},
		{Name: "usr/share/doc/c.txt", Type: tar.TypeReg, Mode: 0o644, Body: "doc c\n"},
	}}, []string{"/bin/sh", "-c", "echo listen=80 > /etc/app.conf && rm -rf /var/cache /etc/os-release"}, []string{"FOO=bar"})
	add(&V1Image{ID: V1XZID, Parent: V1AppID, Compression: "xz", Files: v1XZFiles},
		[]string{"/bin/sh", "-c", "#(nop) ADD file:fedcba9876543210 in /opt"}, []string{"FOO=bar"})
	add(&V1Image{ID: V1UnfinishedID, Parent: V1BaseID, Unfinished: true, Files: []V1File{
		{Name: "wip.txt", Type: tar.TypeReg, Mode: 0o644, Body: strings.Repeat("w", 3000)},
	}}, []string{"/bin/sh", "-c", "touch /wip.txt"}, nil)
	add(&V1Image{ID: V1CorruptID, Parent: V1BaseID, BadChecksum: true, Files: []V1File{
		{Name: "bad.txt", Type: tar.TypeReg, Mode: 0o644, Body: "bit rot\n"},
	}}, []string{"/bin/sh", "-c", "echo bit rot > /bad.txt"}, nil)
	add(&V1Image{ID: V1OrphanID, Files: []V1File{
		{Name: "orphan.txt", Type: tar.TypeReg, Mode: 0o644, Body: "nobody tags me\n"},
	}}, []string{"/bin/sh", "-c", "#(nop) ADD file:orphan in /"}, nil)

	t.Tags = []V1Tag{
		{"library/ubuntu", "14.04", V1BaseID, 1412170000},
		{"library/ubuntu", "latest", V1AppID, 1412180000},
		{"myorg/app", "1.0", V1XZID, 1412190000},
		{"myorg/app", "latest", V1XZID, 1412190500},
		{"myorg/MyApp", "latest", V1AppID, 1412200000},
		{"library/broken", "missing", V1MissingID, 1412210000},
		{"library/partial", "wip", V1UnfinishedID, 1412220000},
		{"library/corrupt", "bad", V1CorruptID, 1412230000},
	}

	put := func(p string, b []byte) error {
		f, err := w.Create(path.Join(dir, p))
		if err != nil {
			return err
		}
		if _, err := f.Write(b); err != nil {
			_ = f.Cancel()
			return err
		}
		return f.Commit()
	}
	for _, id := range slices.Sorted(maps.Keys(t.Images)) {
		img := t.Images[id]
		base := "images/" + id + "/"
		var err error
		if img.Unfinished {
			// json and ancestry are written first, with the marker; the
			// layer upload was cut, and no _checksum was stored.
			err = errors.Join(put(base+"_inprogress", []byte("true")),
				put(base+"layer", img.Layer[:len(img.Layer)/2]))
		} else {
			sum := sha256.Sum256(append(append(slices.Clip(img.JSON), '\n'), img.Layer...))
			if img.BadChecksum {
				sum[0] ^= 0xff
			}
			cs := "sha256:" + hex.EncodeToString(sum[:])
			if id == V1BaseID {
				// The oldest form: one bare string, not JSON.
				err = put(base+"_checksum", []byte(cs))
			} else {
				err = put(base+"_checksum", pyJSON([]string{cs}))
			}
			err = errors.Join(err, put(base+"layer", img.Layer))
		}
		err = errors.Join(err, put(base+"json", img.JSON), put(base+"ancestry", pyJSON(t.ancestry(id))))
		if err != nil {
			return nil, err
		}
	}
	byRepo := map[string][]V1Tag{}
	for _, tg := range t.Tags {
		byRepo[tg.Repository] = append(byRepo[tg.Repository], tg)
	}
	for repo, tags := range byRepo {
		base := "repositories/" + repo + "/"
		var index []map[string]string
		seen := map[string]bool{}
		for _, tg := range tags {
			meta := pyJSON(map[string]any{"last_update": tg.LastUpdate, "docker_version": "1.3.2",
				"docker_go_version": "go1.3.3", "arch": "amd64", "os": "linux", "kernel": "3.16.0-4-amd64"})
			err := errors.Join(put(base+"tag_"+tg.Tag, []byte(tg.ImageID)), put(base+"tag"+tg.Tag+"_json", meta))
			if tg.Tag == "latest" {
				err = errors.Join(err, put(base+"json", meta))
			}
			if err != nil {
				return nil, err
			}
			for _, id := range t.ancestry(tg.ImageID) {
				if !seen[id] {
					seen[id] = true
					index = append(index, map[string]string{"id": id})
				}
			}
		}
		if err := put(base+"_index_images", pyJSON(index)); err != nil {
			return nil, err
		}
	}
	return t, nil
}

// ancestry is id's ancestry as docker-registry stores it: the image first.
func (t *V1Tree) ancestry(id string) []string {
	var ids []string
	for img := t.Images[id]; ; img = t.Images[img.Parent] {
		if img == nil {
			if len(ids) == 0 {
				ids = append(ids, id)
			}
			return ids
		}
		ids = append(ids, img.ID)
		if img.Parent == "" {
			return ids
		}
	}
}

// Chain returns id's images, base first.
func (t *V1Tree) Chain(id string) []*V1Image {
	var chain []*V1Image
	for _, a := range t.ancestry(id) {
		if img := t.Images[a]; img != nil {
			chain = append(chain, img)
		}
	}
	slices.Reverse(chain)
	return chain
}

// Convertible reports whether the tag's image and all its ancestors are
// whole (a converter should convert it).
func (t *V1Tree) Convertible(tg V1Tag) bool {
	if t.Images[tg.ImageID] == nil {
		return false
	}
	for _, img := range t.Chain(tg.ImageID) {
		if img.Unfinished || img.BadChecksum {
			return false
		}
	}
	return true
}

// v1ImageJSON is an image json as a docker 1.3 client pushed it.
func v1ImageJSON(id, parent string, created time.Time, cmd, env []string, size int) []byte {
	type config struct {
		Hostname        string
		Domainname      string
		User            string
		Memory          int
		MemorySwap      int
		CpuShares       int
		Cpuset          string
		AttachStdin     bool
		AttachStdout    bool
		AttachStderr    bool
		PortSpecs       []string
		ExposedPorts    map[string]struct{}
		Tty             bool
		OpenStdin       bool
		StdinOnce       bool
		Env             []string
		Cmd             []string
		Image           string
		Volumes         map[string]struct{}
		WorkingDir      string
		Entrypoint      []string
		NetworkDisabled bool
		OnBuild         []string
	}
	if env == nil {
		env = []string{}
	}
	env = append([]string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"}, env...)
	v := struct {
		ID              string `json:"id"`
		Parent          string `json:"parent,omitempty"`
		Created         string `json:"created"`
		Container       string `json:"container"`
		ContainerConfig config `json:"container_config"`
		DockerVersion   string `json:"docker_version"`
		Author          string `json:"author,omitempty"`
		Config          config `json:"config"`
		Architecture    string `json:"architecture"`
		OS              string `json:"os"`
		Size            int    `json:"Size"`
	}{
		ID: id, Parent: parent, Created: created.Format(time.RFC3339Nano), Container: v1ID("container "+id, 64),
		ContainerConfig: config{Hostname: "a1b2c3d4e5f6", Env: env, Cmd: cmd, Image: parent},
		DockerVersion:   "1.3.2", Author: "v1 maintainer <ops@example.com>",
		Config:       config{Hostname: "a1b2c3d4e5f6", Env: env, Cmd: []string{"/bin/sh"}, Image: parent},
		Architecture: "amd64", OS: "linux", Size: size,
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

// pyJSON is v as Python's json.dumps writes it (", " and ": " separators),
// as docker-registry wrote ancestry, _checksum, tag json and _index_images.
func pyJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	var out bytes.Buffer
	inStr, esc := false, false
	for _, c := range b {
		out.WriteByte(c)
		switch {
		case inStr && esc:
			esc = false
		case inStr && c == '\\':
			esc = true
		case c == '"':
			inStr = !inStr
		case !inStr && (c == ',' || c == ':'):
			out.WriteByte(' ')
		}
	}
	return out.Bytes()
}

// buildTar writes files as a tar (USTAR/PAX headers, zero times, root
// owner), ending with the end-of-archive marker.
func buildTar(files []V1File) []byte {
	var b bytes.Buffer
	tw := tar.NewWriter(&b)
	for _, f := range files {
		h := &tar.Header{Name: f.Name, Typeflag: f.Type, Mode: f.Mode, Linkname: f.Linkname,
			ModTime: time.Unix(1412000000, 0), Format: tar.FormatUSTAR}
		if f.Type == tar.TypeReg {
			h.Size = int64(len(f.Body))
		}
		if err := tw.WriteHeader(h); err != nil {
			panic(err)
		}
		if _, err := tw.Write([]byte(f.Body)); err != nil {
			panic(err)
		}
	}
	if err := tw.Close(); err != nil {
		panic(err)
	}
	return b.Bytes()
}

// TreeEntry is one path of a root filesystem.
type TreeEntry struct {
	Type     byte // tar.TypeReg, tar.TypeDir or tar.TypeSymlink
	Mode     fs.FileMode
	Body     string
	Linkname string
}

// ApplyLayers returns the root filesystem that applying the layer tars in
// order gives, as the v1 graph drivers did: an entry replaces what was at
// its path; ".wh.<name>" deletes <name> (and all below it) from the lower
// layers; ".wh..wh..opq" empties its directory of the lower layers'
// entries. Paths are cleaned ("./a/b/" is "a/b"). Directories that a
// layer implies without an entry are left out.
func ApplyLayers(tars ...[]byte) (map[string]TreeEntry, error) {
	tree := map[string]TreeEntry{}
	for i, tb := range tars {
		tr := tar.NewReader(bytes.NewReader(tb))
		added := map[string]bool{} // by this layer: an opaque whiteout keeps them
		for {
			h, err := tr.Next()
			if err != nil {
				if err == io.EOF {
					break
				}
				return nil, fmt.Errorf("layer %d: %w", i, err)
			}
			name := path.Clean("/" + h.Name)[1:]
			if name == "" {
				continue
			}
			dir, base := path.Split(name)
			if base == ".wh..wh..opq" {
				removeBelow(tree, strings.TrimSuffix(dir, "/"), false, added)
				continue
			}
			if victim, ok := strings.CutPrefix(base, ".wh."); ok {
				removeBelow(tree, dir+victim, true, nil)
				continue
			}
			if old, ok := tree[name]; ok && !(old.Type == tar.TypeDir && h.Typeflag == tar.TypeDir) {
				removeBelow(tree, name, true, nil)
			}
			e := TreeEntry{Type: h.Typeflag, Mode: fs.FileMode(h.Mode & 0o777), Linkname: h.Linkname}
			if e.Type == tar.TypeRegA {
				e.Type = tar.TypeReg
			}
			if e.Type == tar.TypeReg {
				body, err := io.ReadAll(tr)
				if err != nil {
					return nil, fmt.Errorf("layer %d: %s: %w", i, name, err)
				}
				e.Body = string(body)
			}
			tree[name] = e
			added[name] = true
		}
	}
	return tree, nil
}

// removeBelow deletes p (when self) and everything below it, but keep.
func removeBelow(tree map[string]TreeEntry, p string, self bool, keep map[string]bool) {
	if self {
		delete(tree, p)
	}
	prefix := p + "/"
	if p == "" {
		prefix = ""
	}
	for k := range tree {
		if strings.HasPrefix(k, prefix) && k != p && !keep[k] {
			delete(tree, k)
		}
	}
}
