package dockerv1

import (
	"fmt"
	"strings"

	"github.com/regstore/regstore"
)

// MapName returns the v2 repository name for the v1 repository
// "namespace/name" (Repository.FullName), and whether the name had to be
// rewritten because v2 refuses it. The mapping:
//
//   - "library/NAME" becomes "NAME" (unless keepLibrary): a v1 registry
//     stored a one-component name under library/, while a v2 registry
//     stores it as given, so "docker pull host/NAME" keeps working. This is
//     not counted as a rewrite.
//   - Upper-case letters become lower case.
//   - Every other character outside [a-z0-9._-] becomes '-'.
//   - In each component, a run of separators that v2 refuses (such as
//     "..", "._" or "-_") becomes a single '-', and separators at either
//     end are dropped.
//
// A name that is still refused (an empty component, over MaxNameLength)
// is an error wrapping regstore.ErrInvalidName. Two v1 names may map to
// one v2 name; Convert reports that as a collision.
func MapName(v1name string, keepLibrary bool) (name string, rewritten bool, err error) {
	n := v1name
	if !keepLibrary {
		n = strings.TrimPrefix(n, "library/")
	}
	if regstore.ValidateName(n) == nil {
		return n, false, nil
	}
	comps := strings.Split(strings.ToLower(n), "/")
	for i, c := range comps {
		comps[i] = mapComponent(c)
	}
	out := strings.Join(comps, "/")
	if err := regstore.ValidateName(out); err != nil {
		return "", true, fmt.Errorf("v1 repository %q: no v2 name (%q): %w", v1name, out, err)
	}
	return out, true, nil
}

func isAlnum(c byte) bool { return c >= 'a' && c <= 'z' || c >= '0' && c <= '9' }

func mapComponent(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); {
		if isAlnum(c[i]) {
			b.WriteByte(c[i])
			i++
			continue
		}
		j := i
		for j < len(c) && !isAlnum(c[j]) {
			j++
		}
		run := c[i:j]
		if i > 0 && j < len(c) { // between alphanumerics
			switch {
			case run == "." || run == "_" || run == "__" || strings.Trim(run, "-") == "":
				b.WriteString(run)
			default:
				b.WriteByte('-')
			}
		}
		i = j
	}
	return b.String()
}
