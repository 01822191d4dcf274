package check_test

import (
	"testing"

	"github.com/regstore/regstore"
	"github.com/regstore/regstore/check"
	"github.com/regstore/regstore/regstoretest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// TestOrphanMessage: an orphan blob is described as what it is, not linked
// and not referenced.
func TestOrphanMessage(t *testing.T) {
	s, err := regstore.Open(regstore.NewMemFS())
	require.NoError(t, err)
	d, err := regstoretest.OrphanBlob(s, []byte("nobody's"))
	require.NoError(t, err)
	problems := runCheck(t, s, true)
	require.Len(t, problems, 1)
	assert.Equal(t, check.BlobOrphan, problems[0].Kind)
	assert.Equal(t, d, problems[0].Digest)
	assert.NotContains(t, problems[0].Message, "is linked")
	assert.Contains(t, problems[0].Message, "is neither linked in any repository nor referenced by any manifest")
}
