package retain

import (
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// Policy says which tags to keep. Rules are tried in order for each
// repository and the first whose Repositories glob matches its name
// applies; a repository no rule matches is not looked at.
type Policy struct {
	// KeepUntagged says that the garbage collection after the prune keeps
	// untagged manifests (a plain "regstore gc"). When false, the default,
	// the collection removes them ("regstore gc --delete-untagged"), and
	// the bytes of the plan are what that collection frees. Either way the
	// prune itself only removes tags.
	KeepUntagged bool
	Rules        []Rule
}

// Rule is the policy of the repositories its globs match. Its keep rules
// are OR'ed: a considered tag is kept when any of them keeps it. Each is
// evaluated on its own over all the considered tags.
type Rule struct {
	// Repositories are globs over repository names: "*" matches within one
	// path component, "**" across components, "?" one character other
	// than "/". The whole name must match. Empty means "**".
	Repositories []string
	// Tags, if set, are the tags the rule considers: anchored regular
	// expressions; a tag none matches is kept ("not considered"). Empty
	// means every tag.
	Tags []string
	// KeepTags are anchored regular expressions: a tag any matches is
	// always kept.
	KeepTags []string
	// KeepLast keeps the KeepLast most recently pushed considered tags
	// (see [TagDecision].Pushed for push time and its tie-break). Zero
	// keeps none by count.
	KeepLast int
	// KeepWithin keeps the considered tags pushed within this duration
	// before the plan started. Zero keeps none by age.
	KeepWithin time.Duration

	// Line is the line of the rule in its policy file, 0 if none.
	Line int

	repos    []*regexp.Regexp
	tags     []*regexp.Regexp
	keepTags []*regexp.Regexp
}

// PolicyError is a mistake in a policy: a file's line, or a rule's field.
// It wraps [fs.ErrInvalid].
type PolicyError struct {
	File string // the policy file's name, if any
	Line int    // 1-based; 0 if unknown
	Msg  string
}

// Error is "file:line: message", leaving out what is unknown.
func (e *PolicyError) Error() string {
	var b strings.Builder
	if e.File != "" {
		b.WriteString(e.File)
		b.WriteByte(':')
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, "%d:", e.Line)
	}
	if b.Len() > 0 {
		b.WriteByte(' ')
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap returns fs.ErrInvalid.
func (e *PolicyError) Unwrap() error { return fs.ErrInvalid }

// ParsePolicy parses a policy file, YAML or JSON (JSON is YAML too):
//
//	untagged: delete            # or keep; default delete
//	rules:
//	  - repositories: ["org/**"]   # a glob or a list of globs; default "**"
//	    tags: ["build-.*"]          # optional: the tags considered
//	    keep-tags: ["v[0-9]+(\\.[0-9]+)*", "latest"]
//	    keep-last: 10
//	    keep-within: 30d            # Go duration, or whole days "30d"
//
// Every rule needs at least one of keep-last, keep-within and keep-tags
// (keep-last: 0 says "remove every considered tag" on purpose). Unknown
// fields, repeated fields, wrong types and bad patterns are errors
// (*[PolicyError]) that name the line; name is the file's name for them.
func ParsePolicy(name string, data []byte) (*Policy, error) {
	perr := func(line int, format string, args ...any) error {
		return &PolicyError{File: name, Line: line, Msg: fmt.Sprintf(format, args...)}
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		msg := strings.TrimPrefix(err.Error(), "yaml: ")
		line := 0
		if rest, ok := strings.CutPrefix(msg, "line "); ok {
			if i := strings.IndexByte(rest, ':'); i > 0 {
				if n, err := strconv.Atoi(rest[:i]); err == nil {
					line, msg = n, strings.TrimSpace(rest[i+1:])
				}
			}
		}
		return nil, perr(line, "%s", msg)
	}
	if len(doc.Content) == 0 {
		return nil, perr(0, "empty policy")
	}
	root := doc.Content[0]
	p := &Policy{}
	err := fields(root, perr, map[string]func(*yaml.Node) error{
		"untagged": func(v *yaml.Node) error {
			s, err := scalar(v, perr)
			if err != nil {
				return err
			}
			switch s {
			case "keep":
				p.KeepUntagged = true
			case "delete":
			default:
				return perr(v.Line, "untagged: want keep or delete, got %q", s)
			}
			return nil
		},
		"rules": func(v *yaml.Node) error {
			if v.Kind != yaml.SequenceNode {
				return perr(v.Line, "rules: want a list")
			}
			for _, rn := range v.Content {
				r, err := parseRule(rn, perr)
				if err != nil {
					return err
				}
				p.Rules = append(p.Rules, r)
			}
			return nil
		},
	}, "rules")
	if err != nil {
		return nil, err
	}
	if err := p.compile(); err != nil {
		var pe *PolicyError
		if errors.As(err, &pe) {
			pe.File = name
		}
		return nil, err
	}
	return p, nil
}

type errorf func(line int, format string, args ...any) error

// fields walks mapping n, calling each key's handler once; unknown and
// repeated keys are errors, and so are missing required ones.
func fields(n *yaml.Node, perr errorf, handlers map[string]func(*yaml.Node) error, required ...string) error {
	if n.Kind != yaml.MappingNode {
		return perr(n.Line, "want a mapping of fields")
	}
	seen := map[string]bool{}
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := n.Content[i], n.Content[i+1]
		h, ok := handlers[k.Value]
		if !ok {
			names := make([]string, 0, len(handlers))
			for name := range handlers {
				names = append(names, name)
			}
			return perr(k.Line, "unknown field %q (known: %s)", k.Value, strings.Join(slices.Sorted(slices.Values(names)), ", "))
		}
		if seen[k.Value] {
			return perr(k.Line, "field %q repeated", k.Value)
		}
		seen[k.Value] = true
		if err := h(v); err != nil {
			return err
		}
	}
	for _, r := range required {
		if !seen[r] {
			return perr(n.Line, "missing field %q", r)
		}
	}
	return nil
}

func scalar(v *yaml.Node, perr errorf) (string, error) {
	if v.Kind != yaml.ScalarNode {
		return "", perr(v.Line, "want a single value")
	}
	return v.Value, nil
}

// list accepts a scalar or a sequence of scalars; lines are each value's.
func list(v *yaml.Node, perr errorf) ([]string, []int, error) {
	if v.Kind == yaml.ScalarNode {
		return []string{v.Value}, []int{v.Line}, nil
	}
	if v.Kind != yaml.SequenceNode {
		return nil, nil, perr(v.Line, "want a string or a list of strings")
	}
	var out []string
	var lines []int
	for _, e := range v.Content {
		if e.Kind != yaml.ScalarNode {
			return nil, nil, perr(e.Line, "want a string")
		}
		out = append(out, e.Value)
		lines = append(lines, e.Line)
	}
	return out, lines, nil
}

func parseRule(n *yaml.Node, perr errorf) (Rule, error) {
	r := Rule{Line: n.Line}
	keeps := 0
	patterns := func(dst *[]string, compile func(string) (*regexp.Regexp, error), field string) func(*yaml.Node) error {
		return func(v *yaml.Node) error {
			vals, lines, err := list(v, perr)
			if err != nil {
				return err
			}
			for i, s := range vals {
				if _, err := compile(s); err != nil {
					return perr(lines[i], "%s: %v", field, err)
				}
			}
			*dst = vals
			return nil
		}
	}
	err := fields(n, perr, map[string]func(*yaml.Node) error{
		"repositories": patterns(&r.Repositories, compileGlob, "repositories"),
		"tags":         patterns(&r.Tags, compileAnchored, "tags"),
		"keep-tags": func(v *yaml.Node) error {
			keeps++
			return patterns(&r.KeepTags, compileAnchored, "keep-tags")(v)
		},
		"keep-last": func(v *yaml.Node) error {
			keeps++
			s, err := scalar(v, perr)
			if err != nil {
				return err
			}
			n, err := strconv.Atoi(s)
			if err != nil || n < 0 {
				return perr(v.Line, "keep-last: want a whole number, 0 or more, got %q", s)
			}
			r.KeepLast = n
			return nil
		},
		"keep-within": func(v *yaml.Node) error {
			keeps++
			s, err := scalar(v, perr)
			if err != nil {
				return err
			}
			d, err := ParseDuration(s)
			if err != nil {
				return perr(v.Line, "keep-within: %v", err)
			}
			r.KeepWithin = d
			return nil
		},
	})
	if err != nil {
		return r, err
	}
	if keeps == 0 {
		return r, perr(n.Line, "rule keeps nothing: set keep-last, keep-within or keep-tags (keep-last: 0 to remove every considered tag)")
	}
	return r, nil
}

// ParseDuration parses a Go duration ("36h", "90m") or a whole number of
// days ("30d"). It must not be negative.
func ParseDuration(s string) (time.Duration, error) {
	var d time.Duration
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.ParseUint(days, 10, 31)
		if err != nil {
			return 0, fmt.Errorf("invalid duration %q", s)
		}
		d = time.Duration(n) * 24 * time.Hour
	} else {
		var err error
		if d, err = time.ParseDuration(s); err != nil {
			return 0, err
		}
	}
	if d < 0 {
		return 0, fmt.Errorf("negative duration %q", s)
	}
	return d, nil
}

// compile checks and compiles every rule's patterns.
func (p *Policy) compile() error {
	for i := range p.Rules {
		r := &p.Rules[i]
		perr := func(format string, args ...any) error {
			msg := fmt.Sprintf(format, args...)
			if r.Line == 0 {
				msg = fmt.Sprintf("rule %d: %s", i+1, msg)
			}
			return &PolicyError{Line: r.Line, Msg: msg}
		}
		if r.KeepLast < 0 || r.KeepWithin < 0 {
			return perr("negative keep-last or keep-within")
		}
		repos := r.Repositories
		if len(repos) == 0 {
			repos = []string{"**"}
		}
		var err error
		if r.repos, err = compileAll(repos, compileGlob); err != nil {
			return perr("repositories: %v", err)
		}
		if r.tags, err = compileAll(r.Tags, compileAnchored); err != nil {
			return perr("tags: %v", err)
		}
		if r.keepTags, err = compileAll(r.KeepTags, compileAnchored); err != nil {
			return perr("keep-tags: %v", err)
		}
	}
	return nil
}

func compileAll(pats []string, compile func(string) (*regexp.Regexp, error)) ([]*regexp.Regexp, error) {
	var out []*regexp.Regexp
	for _, p := range pats {
		re, err := compile(p)
		if err != nil {
			return nil, err
		}
		out = append(out, re)
	}
	return out, nil
}

// compileAnchored compiles a tag pattern that must match the whole tag.
func compileAnchored(p string) (*regexp.Regexp, error) {
	if p == "" {
		return nil, errors.New("empty pattern")
	}
	re, err := regexp.Compile("^(?:" + p + ")$")
	if err != nil {
		// The message without our anchoring.
		if _, err2 := regexp.Compile(p); err2 != nil {
			err = err2
		}
		return nil, err
	}
	return re, nil
}

// compileGlob turns a repository glob into an anchored regular expression:
// "**" matches anything, "*" anything but "/", "?" one character but "/".
func compileGlob(g string) (*regexp.Regexp, error) {
	if g == "" {
		return nil, errors.New("empty glob")
	}
	var b strings.Builder
	b.WriteString("^")
	for i := 0; i < len(g); i++ {
		switch c := g[i]; {
		case c == '*' && i+1 < len(g) && g[i+1] == '*':
			b.WriteString(".*")
			i++
		case c == '*':
			b.WriteString("[^/]*")
		case c == '?':
			b.WriteString("[^/]")
		case c == '[' || c == ']' || c == '{' || c == '}' || c == '\\':
			return nil, fmt.Errorf("glob %q: %q is not supported (only *, ** and ?)", g, c)
		case (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-' || c == '/':
			b.WriteString(regexp.QuoteMeta(string(c)))
		default:
			return nil, fmt.Errorf("glob %q: %q cannot be in a repository name", g, c)
		}
	}
	b.WriteString("$")
	return regexp.Compile(b.String())
}

func (r *Rule) matchesRepo(name string) bool {
	for _, re := range r.repos {
		if re.MatchString(name) {
			return true
		}
	}
	return false
}

func matchAny(res []*regexp.Regexp, s string) (int, bool) {
	for i, re := range res {
		if re.MatchString(s) {
			return i, true
		}
	}
	return -1, false
}
