package interop

import (
	"archive/tar"
	"context"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestImportV1Served converts the generator's v1 tree, as Docker schema2
// and as OCI images, serves it with each registry version, and checks that
// every converted tag passes "crane validate" and unpacks (skopeo to an
// OCI layout, then "umoci unpack") to exactly the file tree that applying
// its v1 layers in order gives.
func TestImportV1Served(t *testing.T) {
	if _, err := exec.LookPath("xz"); err != nil {
		t.Skip("no xz program")
	}
	for _, version := range registryVersions {
		for _, oci := range []bool{false, true} {
			name := version + "/docker"
			if oci {
				name = version + "/oci"
			}
			t.Run(name, func(t *testing.T) {
				v1dir := t.TempDir()
				d, err := regstore.OpenDir(v1dir)
				require.NoError(t, err)
				t.Cleanup(func() { d.Close() })
				tree, err := regstoretest.WriteV1Tree(d, ".")
				require.NoError(t, err)
				src, err := dockerv1.Open(d, ".")
				require.NoError(t, err)

				root := t.TempDir()
				s := openStore(t, root)
				rep, err := dockerv1.Convert(context.Background(), s, src, dockerv1.ConvertOptions{OCI: oci})
				require.NoError(t, err)

				reg := startRegistry(t, version, root, RegistryOptions{ReadOnly: true})
				converted := 0
				for _, vt := range tree.Tags {
					var tr *dockerv1.TagReport
					for i := range rep.Tags {
						if rep.Tags[i].Repository == vt.Repository && rep.Tags[i].Tag == vt.Tag {
							tr = &rep.Tags[i]
						}
					}
					require.NotNil(t, tr, "%s:%s reported", vt.Repository, vt.Tag)
					if !tree.Convertible(vt) {
						assert.Equal(t, dockerv1.Skipped, tr.Status, "%s:%s", vt.Repository, vt.Tag)
						tags, _ := listTags(t, reg.Host, tr.Target)
						assert.NotContains(t, tags, vt.Tag, "%s:%s not served", tr.Target, vt.Tag)
						continue
					}
					require.Equal(t, dockerv1.Converted, tr.Status, "%s:%s: %s", vt.Repository, vt.Tag, tr.Reason)
					converted++
					ref := reg.Ref(tr.Target + ":" + tr.Tag)
					assert.Equal(t, tr.Digest.String(), headManifest(t, reg.Host, tr.Target, tr.Tag).Digest, ref)
					craneValidate(t, ref)

					layout := filepath.Join(t.TempDir(), "oci")
					skopeoCopyOCI(t, ref, layout, "x")
					bundle := filepath.Join(t.TempDir(), "bundle")
					args := []string{"unpack", "--image", layout + ":x", bundle}
					if os.Geteuid() != 0 {
						args = append([]string{"unpack", "--rootless"}, args[1:]...)
					}
					mustTool(t, "umoci", args...)

					var tars [][]byte
					for _, img := range tree.Chain(vt.ImageID) {
						tars = append(tars, img.Tar)
					}
					want, err := regstoretest.ApplyLayers(tars...)
					require.NoError(t, err)
					assert.Equal(t, want, rootfsTree(t, filepath.Join(bundle, "rootfs")), "%s: unpacked tree", ref)
				}
				assert.Equal(t, 5, converted)
			})
		}
	}
}

// rootfsTree reads an unpacked root filesystem as regstoretest.ApplyLayers
// describes one.
func rootfsTree(t *testing.T, dir string) map[string]regstoretest.TreeEntry {
	t.Helper()
	out := map[string]regstoretest.TreeEntry{}
	require.NoError(t, filepath.WalkDir(dir, func(p string, de fs.DirEntry, err error) error {
		if err != nil || p == dir {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		e := regstoretest.TreeEntry{Mode: fi.Mode().Perm()}
		switch {
		case fi.IsDir():
			e.Type = tar.TypeDir
		case fi.Mode()&fs.ModeSymlink != 0:
			e.Type = tar.TypeSymlink
			if e.Linkname, err = os.Readlink(p); err != nil {
				return err
			}
			e.Mode = 0o777
		case fi.Mode().IsRegular():
			e.Type = tar.TypeReg
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			e.Body = string(b)
		default:
			e.Type = '?'
		}
		out[filepath.ToSlash(rel)] = e
		return nil
	}))
	return out
}
