package dockerv1

import (
	"errors"
	"io/fs"
	"testing"
	"testing/fstest"

	"github.com/regstore/regstore"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestReadMetaBounded: a metadata file longer than maxMeta is refused, not
// read whole; one that is not a regular file is refused unopened.
func TestReadMetaBounded(t *testing.T) {
	fsys := fstest.MapFS{
		"ok":   {Data: []byte(`{"id":"x"}`)},
		"huge": {Data: make([]byte, maxMeta+1)},
		"pipe": {Mode: 0o644 | fs.ModeNamedPipe},
	}
	b, err := readMeta(fsys, "ok")
	require.NoError(t, err)
	assert.Equal(t, `{"id":"x"}`, string(b))
	_, err = readMeta(fsys, "huge")
	assert.True(t, errors.Is(err, ErrInvalidImage), "%v", err)
	_, err = readMeta(fsys, "pipe")
	assert.True(t, errors.Is(err, regstore.ErrNotRegular), "%v", err)
}
