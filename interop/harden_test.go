package interop

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/opencontainers/image-spec/specs-go/v1"
	"github.com/regstore/regstore"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// hardenImage is an image pushed through the registry's API.
type hardenImage struct {
	repo, ref string   // ref: the tag pushed, or the digest when the tag is unusable
	manifest  string   // digest
	blobs     []string // config and layer
}

// pushHardenImage pushes a one-layer OCI image to repo:tag over plain HTTP
// (crane's reference parser refuses upper case, which the registry takes
// in a first component).
func pushHardenImage(t *testing.T, host, repo, tag string, seed int) hardenImage {
	t.Helper()
	l := regstoretest.NewLayer(map[string]string{"file": fmt.Sprintf("layer %d of %s", seed, repo)})
	layer := l.Compressed
	config := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","rootfs":{"type":"layers","diff_ids":["%s"]}}`, l.DiffID))
	ld, cd := uploadBlob(t, host, repo, layer), uploadBlob(t, host, repo, config)
	m := map[string]any{"schemaVersion": 2, "mediaType": v1.MediaTypeImageManifest,
		"config": map[string]any{"mediaType": v1.MediaTypeImageConfig, "digest": cd, "size": len(config)},
		"layers": []any{map[string]any{"mediaType": v1.MediaTypeImageLayerGzip, "digest": ld, "size": len(layer)}}}
	body, err := json.Marshal(m)
	require.NoError(t, err)
	putManifest(t, host, repo, tag, v1.MediaTypeImageManifest, body)
	return hardenImage{repo: repo, ref: tag, manifest: digestOf(body), blobs: []string{cd, ld}}
}

// requireServed pulls img through the registry: its manifest by ref, with
// the right digest, and every blob, whose content hashes to its digest.
func requireServed(t *testing.T, host string, img hardenImage, when string) {
	t.Helper()
	res := httpDo(t, http.MethodGet, "http://"+host+"/v2/"+img.repo+"/manifests/"+img.ref,
		http.Header{"Accept": {v1.MediaTypeImageManifest}}, nil)
	require.Equal(t, http.StatusOK, res.Status, "%s: GET %s:%s: %s", when, img.repo, img.ref, res.Body)
	assert.Equal(t, img.manifest, digestOf(res.Body), "%s: manifest of %s:%s", when, img.repo, img.ref)
	for _, d := range img.blobs {
		b := getBlob(t, host, img.repo, d)
		require.Equal(t, http.StatusOK, b.Status, "%s: blob %s of %s", when, d, img.repo)
		assert.Equal(t, d, digestOf(b.Body), "%s: content of blob %s of %s", when, d, img.repo)
	}
}

// TestHardenGCKeepsWhatTheRegistryServes is the registry v3's view of items 1
// and 4 of the hardening: it serves Team/app (an upper-case first
// component, taken as a host), a name whose host part makes it longer than
// 255 characters, and a manifest whose only tag directory has a name that
// is not a valid tag (".bad", renamed on disk). `regstore gc` (the CLI,
// plain and --delete-untagged) keeps all of them: the registry serves the
// same images before and after (every blob re-hashed); crane validates
// the one whose name crane can parse. Only what is really unreferenced
// goes.
func TestHardenGCKeepsWhatTheRegistryServes(t *testing.T) {
	registryBinary(t, V3)
	bin := buildRegstoreCLI(t)
	long := "x.y/" + strings.Repeat("l", 255)
	for _, untagged := range []bool{false, true} {
		t.Run(fmt.Sprintf("delete-untagged=%v", untagged), func(t *testing.T) {
			root := filepath.Join(t.TempDir(), "root")
			reg := startRegistry(t, V3, root, RegistryOptions{})
			old := pushHardenImage(t, reg.Host, "Team/app", "v1", 1)
			upper := pushHardenImage(t, reg.Host, "Team/app", "v1", 2) // old is untagged now
			longImg := pushHardenImage(t, reg.Host, long, "v1", 3)
			bad := pushHardenImage(t, reg.Host, "tags/app", "keep", 4)
			pushHardenImage(t, reg.Host, "tags/app", "other", 5)
			s := openStore(t, root)
			l := s.Layout()
			require.NoError(t, os.Rename(filepath.Join(root, filepath.FromSlash(l.Tag("tags/app", "keep"))),
				filepath.Join(root, filepath.FromSlash(l.Tag("tags/app", ".bad")))))
			bad.ref = bad.manifest // the registry cannot route ".bad"; by digest it serves it
			served := []hardenImage{upper, longImg, bad}
			for _, img := range served {
				requireServed(t, reg.Host, img, "before gc")
			}
			// inspect lists what the registry serves.
			names, err := s.Catalog(0, "")
			require.NoError(t, err)
			assert.Equal(t, catalog(t, reg.Host, 0), names, "regstore's catalog is the registry's")

			args := []string{"gc", "--grace=-1s"}
			if untagged {
				args = append(args, "--delete-untagged")
			}
			out, err := exec.Command(bin, append(args, root)...).CombinedOutput()
			require.NoError(t, err, "regstore %v:\n%s", args, out)
			for _, img := range served {
				requireServed(t, reg.Host, img, "after regstore gc")
			}
			// crane's parser refuses Team/app and names over 255
			// characters; it takes the manifest of the invalid tag.
			craneValidate(t, reg.Host+"/tags/app@"+bad.manifest)

			res := httpDo(t, http.MethodGet, "http://"+reg.Host+"/v2/Team/app/manifests/"+old.manifest,
				http.Header{"Accept": {v1.MediaTypeImageManifest}}, nil)
			if untagged {
				assert.Equal(t, http.StatusNotFound, res.Status, "the untagged manifest of Team/app went")
			} else {
				assert.Equal(t, http.StatusOK, res.Status, "without --delete-untagged the untagged manifest stays")
			}
			assert.NoError(t, regstore.ValidateName("Team/app"))
			assert.NoError(t, regstore.ValidateName(long))
		})
	}
}
