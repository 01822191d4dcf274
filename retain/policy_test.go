package retain

import (
	"errors"
	"io/fs"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestParsePolicy(t *testing.T) {
	src := `# retention
untagged: keep
rules:
  - repositories: ["org/**", "tools/*"]
    tags: ["build-.*"]
    keep-tags: ["v[0-9]+(\\.[0-9]+)*", latest]
    keep-last: 10
    keep-within: 30d
  - repositories: "**"
    keep-last: 0
`
	p, err := ParsePolicy("p.yaml", []byte(src))
	require.NoError(t, err)
	assert.True(t, p.KeepUntagged)
	require.Len(t, p.Rules, 2)
	r := p.Rules[0]
	assert.Equal(t, []string{"org/**", "tools/*"}, r.Repositories)
	assert.Equal(t, []string{"build-.*"}, r.Tags)
	assert.Equal(t, []string{`v[0-9]+(\.[0-9]+)*`, "latest"}, r.KeepTags)
	assert.Equal(t, 10, r.KeepLast)
	assert.Equal(t, 30*24*time.Hour, r.KeepWithin)
	assert.Equal(t, 4, r.Line)
	assert.Equal(t, []string{"**"}, p.Rules[1].Repositories)
	assert.Equal(t, 9, p.Rules[1].Line)

	// Globs: "*" stays within a component, "**" crosses them.
	for name, want := range map[string]bool{"org/a": true, "org/a/b": true, "org": false, "tools/x": true, "tools/x/y": false, "other": false} {
		assert.Equal(t, want, r.matchesRepo(name), "rule 1 matches %q", name)
	}
	// Tag patterns are anchored.
	_, ok := matchAny(r.keepTags, "v1.2")
	assert.True(t, ok)
	_, ok = matchAny(r.keepTags, "v1.2-rc1")
	assert.False(t, ok, "keep-tags must match the whole tag")
	_, ok = matchAny(r.keepTags, "latest-amd64")
	assert.False(t, ok, "keep-tags must match the whole tag")

	// JSON is accepted too, with the same line numbers for errors.
	p, err = ParsePolicy("p.json", []byte(`{"untagged": "delete", "rules": [{"keep-last": 3}]}`))
	require.NoError(t, err)
	assert.False(t, p.KeepUntagged)
	assert.Equal(t, 3, p.Rules[0].KeepLast)
}

func TestParsePolicyErrors(t *testing.T) {
	for _, tc := range []struct {
		name, src string
		line      int
		contains  string
	}{
		{"unknown top field", "rules: []\nuntaged: keep\n", 2, `unknown field "untaged"`},
		{"unknown rule field", "rules:\n  - keep-last: 1\n    keep-lats: 2\n", 3, `unknown field "keep-lats"`},
		{"bad regexp", "rules:\n  - keep-tags:\n      - ok\n      - 'v(1'\n", 4, "keep-tags: error parsing regexp"},
		{"bad considered regexp", "rules:\n  - keep-last: 1\n    tags: '*x'\n", 3, "tags: error parsing regexp"},
		{"bad glob", "rules:\n  - repositories: 'org/[ab]'\n    keep-last: 1\n", 2, "not supported"},
		{"uppercase glob", "rules:\n  - repositories: 'Org/*'\n    keep-last: 1\n", 2, "cannot be in a repository name"},
		{"repeated field", "rules:\n  - keep-last: 1\n    keep-last: 2\n", 3, "repeated"},
		{"keeps nothing", "rules:\n  - repositories: a\n", 2, "rule keeps nothing"},
		{"bad keep-last", "rules:\n  - keep-last: -1\n", 2, "keep-last"},
		{"bad keep-within", "rules:\n  - keep-within: 3 weeks\n", 2, "keep-within"},
		{"bad untagged", "untagged: maybe\nrules: []\n", 1, "want keep or delete"},
		{"missing rules", "untagged: keep\n", 1, `missing field "rules"`},
		{"syntax", "rules: []\n\tuntagged: keep\n", 2, "cannot start any token"},
		{"rules not a list", "rules: {a: 1}\n", 1, "want a list"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := ParsePolicy("p.yaml", []byte(tc.src))
			require.Error(t, err)
			var pe *PolicyError
			require.True(t, errors.As(err, &pe), "ParsePolicy error %v is a *PolicyError", err)
			assert.True(t, errors.Is(err, fs.ErrInvalid), "error wraps fs.ErrInvalid")
			assert.Equal(t, tc.line, pe.Line, "line of %v", err)
			assert.Contains(t, err.Error(), tc.contains)
			assert.Contains(t, err.Error(), "p.yaml:", "the error names the file")
		})
	}
}

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{"30d": 30 * 24 * time.Hour, "36h": 36 * time.Hour, "1h30m": 90 * time.Minute, "0d": 0} {
		got, err := ParseDuration(in)
		require.NoError(t, err, "ParseDuration(%q)", in)
		assert.Equal(t, want, got, "ParseDuration(%q)", in)
	}
	for _, in := range []string{"-1h", "d", "1.5d", "-3d", "x"} {
		_, err := ParseDuration(in)
		assert.Error(t, err, "ParseDuration(%q)", in)
	}
}

func TestPolicyCompileErrors(t *testing.T) {
	// A policy built in Go is checked by Decide too.
	p := &Policy{Rules: []Rule{{KeepTags: []string{"("}}}}
	err := p.compile()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "rule 1: keep-tags")
	assert.ErrorIs(t, err, fs.ErrInvalid)
}
