package dockerv1_test

import (
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/dockerv1"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// FuzzMapName: whatever the v1 name, MapName gives a name v2 accepts, or
// an error wrapping ErrInvalidName; a name v2 accepts maps to itself.
func FuzzMapName(f *testing.F) {
	for _, s := range []string{"library/ubuntu", "myorg/MyApp", "org/a b", "org/a..b", "Org/--", "a/b/c", "x/é"} {
		f.Add(s, false)
	}
	f.Fuzz(func(t *testing.T, name string, keep bool) {
		got, rewritten, err := dockerv1.MapName(name, keep)
		if err != nil {
			assert.ErrorIs(t, err, regstore.ErrInvalidName)
			return
		}
		require.NoError(t, regstore.ValidateName(got), "MapName(%q) = %q", name, got)
		if !rewritten {
			want := name
			if !keep && len(name) > 8 && name[:8] == "library/" {
				want = name[8:]
			}
			assert.Equal(t, want, got)
		}
		again, rw, err := dockerv1.MapName(got, true)
		require.NoError(t, err)
		assert.False(t, rw)
		assert.Equal(t, got, again)
	})
}
