// Package treearchive stores a directory tree, such as a registry's storage
// rootdirectory, as one txtar archive, and loads it back into a directory or
// into any regstore backend. It is what the committed registry-written trees
// under testdata/ are made of, and it is shared by the root module's unit
// tests and the interop module.
//
// # Format
//
// A tree archive is a txtar archive (the format of
// golang.org/x/tools/txtar) whose entries are the files of the tree, named by
// their slash-separated path relative to its root (for a registry tree they
// start with "docker/registry/v2/"). Because txtar is a text format, and
// because registry link files have no trailing newline, the entries follow
// these rules:
//
//   - "-- path --": a text file. Its bytes are the entry's content with
//     exactly one trailing "\n" removed. The writer always adds one, so link
//     files round-trip without a newline and a file that ends in "\n" is
//     stored with two.
//   - "-- path base64 --": a binary file (gzip layers, upload hash states,
//     anything that is not plain UTF-8 text, or text that could be misread
//     as a file marker). The content is standard base64 wrapped in lines;
//     white space is ignored when decoding.
//   - "-- path/ --" with empty content: an empty directory. It is emitted
//     only for directories that contain nothing, since git and txtar cannot
//     represent them otherwise.
//
// Registry paths never contain spaces (the driver path grammar is
// [A-Za-z0-9._-] and '/'), so the " base64" suffix cannot clash with a name;
// names with a space or a newline are refused.
package treearchive

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"unicode/utf8"

	"github.com/regstore/regstore"
)

// File is one entry of a txtar archive, as written in the archive (a name
// with its " base64" or "/" suffix, and encoded content).
type File struct {
	Name string
	Data []byte
}

// Archive is a parsed txtar archive: a free-form comment followed by
// entries.
type Archive struct {
	Comment []byte
	Files   []File
}

var (
	markerStart = []byte("-- ")
	markerEnd   = []byte(" --")
	newlineMark = []byte("\n-- ")
)

// Parse parses the txtar format: lines of the form "-- NAME --" start a new
// file, and everything before the first such line is the comment. It follows
// the semantics of golang.org/x/tools/txtar.
func Parse(data []byte) *Archive {
	a := new(Archive)
	var name string
	a.Comment, name, data = findFileMarker(data)
	for name != "" {
		f := File{Name: name}
		f.Data, name, data = findFileMarker(data)
		a.Files = append(a.Files, f)
	}
	return a
}

// findFileMarker returns the data before the next file marker, the name in
// that marker, and the data after the marker line.
func findFileMarker(data []byte) (before []byte, name string, after []byte) {
	var i int
	for {
		if name, after = isMarker(data[i:]); name != "" {
			return data[:i], name, after
		}
		j := bytes.Index(data[i:], newlineMark)
		if j < 0 {
			return fixNL(data), "", nil
		}
		i += j + 1 // the start of a possible marker line
	}
}

func isMarker(data []byte) (name string, after []byte) {
	if !bytes.HasPrefix(data, markerStart) {
		return "", nil
	}
	if i := bytes.IndexByte(data, '\n'); i >= 0 {
		data, after = data[:i], data[i+1:]
	}
	if !(bytes.HasSuffix(data, markerEnd) && len(data) >= len(markerStart)+len(markerEnd)) {
		return "", nil
	}
	return strings.TrimSpace(string(data[len(markerStart) : len(data)-len(markerEnd)])), after
}

func fixNL(data []byte) []byte {
	if len(data) == 0 || data[len(data)-1] == '\n' {
		return data
	}
	d := make([]byte, len(data)+1)
	copy(d, data)
	d[len(data)] = '\n'
	return d
}

// Format serialises an archive. Like x/tools/txtar it adds a final newline
// to the comment and to any entry that lacks one.
func Format(a *Archive) []byte {
	var buf bytes.Buffer
	buf.Write(fixNL(a.Comment))
	for _, f := range a.Files {
		fmt.Fprintf(&buf, "-- %s --\n", f.Name)
		buf.Write(fixNL(f.Data))
	}
	return buf.Bytes()
}

const base64Suffix = " base64"

// isPlainText reports whether b can be stored verbatim.
func isPlainText(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, c := range b {
		if (c < 0x20 && c != '\n' && c != '\t') || c == 0x7f {
			return false
		}
	}
	// A line that starts with "-- " could be read back as a file marker.
	return !bytes.HasPrefix(b, markerStart) && !bytes.Contains(b, newlineMark)
}

// FileEntry returns the archive entry for a file at name (slash-separated,
// relative) with content b: text when it can be, base64 otherwise.
func FileEntry(name string, b []byte) File {
	if isPlainText(b) {
		return File{Name: name, Data: append(bytes.Clone(b), '\n')}
	}
	return File{Name: name + base64Suffix, Data: wrapBase64(b)}
}

// DirEntry returns the archive entry for an empty directory at name.
func DirEntry(name string) File { return File{Name: name + "/"} }

// FromDir encodes the tree below root as a tree archive with the given
// comment. Entries are sorted by name; only regular files and directories
// are allowed, and only empty directories get an entry of their own.
func FromDir(root, comment string) (*Archive, error) {
	a := &Archive{Comment: []byte(comment)}
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(root, p)
		if err != nil {
			return err
		}
		if rel == "." {
			return nil
		}
		name := filepath.ToSlash(rel)
		if strings.ContainsAny(name, " \n") {
			return fmt.Errorf("tree archive: unsupported file name %q", name)
		}
		switch {
		case d.IsDir():
			ents, err := os.ReadDir(p)
			if err != nil {
				return err
			}
			if len(ents) == 0 {
				a.Files = append(a.Files, DirEntry(name))
			}
		case d.Type().IsRegular():
			b, err := os.ReadFile(p)
			if err != nil {
				return err
			}
			a.Files = append(a.Files, FileEntry(name, b))
		default:
			return fmt.Errorf("tree archive: %s is not a regular file or directory", name)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	sort.Slice(a.Files, func(i, j int) bool { return a.Files[i].Name < a.Files[j].Name })
	return a, nil
}

func wrapBase64(b []byte) []byte {
	s := base64.StdEncoding.EncodeToString(b)
	var buf bytes.Buffer
	for len(s) > 76 {
		buf.WriteString(s[:76])
		buf.WriteByte('\n')
		s = s[76:]
	}
	buf.WriteString(s)
	buf.WriteByte('\n')
	return buf.Bytes()
}

// Entry is one decoded entry of a tree archive.
type Entry struct {
	Path  string // slash-separated, relative to the root, no trailing '/'
	IsDir bool   // an (empty) directory
	Data  []byte // file content, exact bytes
}

// Decode decodes the entries of a tree archive, checking that every name is
// a clean relative path ([fs.ValidPath], without spaces).
func Decode(a *Archive) ([]Entry, error) {
	out := make([]Entry, 0, len(a.Files))
	for _, f := range a.Files {
		name := f.Name
		e := Entry{}
		switch {
		case strings.HasSuffix(name, "/"):
			if len(bytes.TrimSpace(f.Data)) != 0 {
				return nil, fmt.Errorf("tree archive: directory entry %q has content", name)
			}
			e.IsDir = true
			e.Path = strings.TrimSuffix(name, "/")
		case strings.HasSuffix(name, base64Suffix):
			e.Path = strings.TrimSuffix(name, base64Suffix)
			clean := strings.Map(func(r rune) rune {
				if r == '\n' || r == '\r' || r == ' ' || r == '\t' {
					return -1
				}
				return r
			}, string(f.Data))
			b, err := base64.StdEncoding.DecodeString(clean)
			if err != nil {
				return nil, fmt.Errorf("tree archive: %s: %w", name, err)
			}
			e.Data = b
		default:
			e.Path = name
			e.Data = bytes.TrimSuffix(f.Data, []byte("\n"))
		}
		if !fs.ValidPath(e.Path) || e.Path == "." || strings.Contains(e.Path, " ") {
			return nil, fmt.Errorf("tree archive: bad entry name %q", name)
		}
		out = append(out, e)
	}
	return out, nil
}

// ToDir materialises a tree archive below root, which is created if
// missing. Files get mode 0644 and directories 0755, like the registry's.
func ToDir(a *Archive, root string) error {
	ents, err := Decode(a)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return err
	}
	for _, e := range ents {
		p := filepath.Join(root, filepath.FromSlash(e.Path))
		if e.IsDir {
			if err := os.MkdirAll(p, 0o755); err != nil {
				return err
			}
			continue
		}
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, e.Data, 0o644); err != nil {
			return err
		}
	}
	return nil
}

// placeholder is the file ToFS creates, and removes again, to make an empty
// directory on a backend that has no Mkdir.
const placeholder = ".treearchive-placeholder"

// ToFS writes a tree archive into a regstore backend through its write
// side only: every file with Create, Write and Commit (parents are created
// by Create), and every empty directory by committing a placeholder file in
// it and removing that again, since [regstore.WriteFS] has no Mkdir.
func ToFS(a *Archive, w regstore.WriteFS) error {
	ents, err := Decode(a)
	if err != nil {
		return err
	}
	for _, e := range ents {
		if e.IsDir {
			p := path.Join(e.Path, placeholder)
			if err := writeFile(w, p, nil); err != nil {
				return err
			}
			if err := w.Remove(p); err != nil {
				return err
			}
			continue
		}
		if err := writeFile(w, e.Path, e.Data); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(w regstore.WriteFS, name string, data []byte) error {
	fw, err := w.Create(name)
	if err != nil {
		return err
	}
	if _, err := fw.Write(data); err != nil {
		return errors.Join(err, fw.Cancel())
	}
	return fw.Commit()
}

// ReadFile reads and parses the tree archive file at name.
func ReadFile(name string) (*Archive, error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return nil, err
	}
	if len(b) == 0 {
		return nil, fmt.Errorf("tree archive %s: empty file", name)
	}
	return Parse(b), nil
}

// LoadDir reads the tree archive file at archivePath and materialises it
// below root (see [ToDir]), ready for [regstore.OpenDir] or a registry's
// rootdirectory.
func LoadDir(archivePath, root string) error {
	a, err := ReadFile(archivePath)
	if err != nil {
		return err
	}
	return ToDir(a, root)
}

// LoadMemFS reads the tree archive file at archivePath into a new
// [regstore.MemFS] (see [ToFS]).
func LoadMemFS(archivePath string) (*regstore.MemFS, error) {
	a, err := ReadFile(archivePath)
	if err != nil {
		return nil, err
	}
	m := regstore.NewMemFS()
	if err := ToFS(a, m); err != nil {
		return nil, err
	}
	return m, nil
}
