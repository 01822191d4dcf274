package config

import (
	"fmt"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// envPrefix starts every variable the registry reads; it must be upper
// case.
const envPrefix = "REGISTRY_"

// tree is the part of the config document regstore reads, held as the
// registry holds it: storage is a map of driver (and non-driver) names to
// parameter maps; redis and proxy are structs whose fields env variables
// name in upper case.
type tree struct {
	storage map[string]any
	redis   map[string]any
	proxy   map[string]any
}

func newTree(doc map[string]any) (*tree, error) {
	t := &tree{storage: map[string]any{}, redis: map[string]any{}, proxy: map[string]any{}}
	if err := t.setStorage(doc["storage"]); err != nil {
		return nil, err
	}
	if m, ok := doc["redis"].(map[string]any); ok {
		t.redis = m
	}
	if m, ok := doc["proxy"].(map[string]any); ok {
		t.proxy = m
	}
	return t, nil
}

// setStorage replaces the storage section: a bare string names a driver
// with no parameters; each section below is a string-keyed parameter map
// whose own mappings are opaque (yamlMap).
func (t *tree) setStorage(v any) error {
	t.storage = map[string]any{}
	switch v := v.(type) {
	case nil:
	case string:
		t.storage[v] = map[string]any{}
	case map[string]any:
		for k, p := range v {
			pm, err := params(p, "storage."+k)
			if err != nil {
				return err
			}
			t.storage[k] = pm
		}
	default:
		return fmt.Errorf("storage must be a driver name or a mapping, got %v", v)
	}
	return nil
}

// params is a driver's parameter map with its nested mappings opaque.
func params(v any, where string) (map[string]any, error) {
	switch v := v.(type) {
	case nil:
		return map[string]any{}, nil
	case map[string]any:
		out := make(map[string]any, len(v))
		for k, x := range v {
			out[k] = opaque(x)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("%s must be a mapping of parameters, got %v", where, v)
	}
}

// opaque marks mappings as read from YAML.
func opaque(v any) any {
	if m, ok := v.(map[string]any); ok {
		y := make(yamlMap, len(m))
		for k, x := range m {
			y[k] = opaque(x)
		}
		return y
	}
	return v
}

// applyEnv applies the REGISTRY_* variables of env in the registry's
// order (sorted by name) and with its matching rules.
func (t *tree) applyEnv(env []string, warnings *[]string) error {
	type kv struct{ name, value string }
	var vars []kv
	for _, e := range env {
		name, value, _ := strings.Cut(e, "=")
		if strings.HasPrefix(name, envPrefix) {
			vars = append(vars, kv{name, value})
		}
	}
	slices.SortFunc(vars, func(a, b kv) int { return strings.Compare(a.name, b.name) })
	for _, v := range vars {
		segs := strings.Split(strings.TrimPrefix(v.name, envPrefix), "_")
		warn := func(why string) {
			*warnings = append(*warnings, fmt.Sprintf("ignoring environment variable %s: %s", v.name, why))
		}
		val, err := yamlValue(v.value)
		if err != nil {
			return fmt.Errorf("environment variable %s: %w", v.name, err)
		}
		switch segs[0] {
		case "STORAGE":
			if len(segs) == 1 {
				if err := t.setStorage(plain(val)); err != nil {
					return fmt.Errorf("environment variable %s: %w", v.name, err)
				}
				continue
			}
			key := mapKey(t.storage, segs[1])
			if len(segs) == 2 {
				p, err := params(plain(val), "storage."+key)
				if err != nil {
					return fmt.Errorf("environment variable %s: %w", v.name, err)
				}
				t.storage[key] = p
				continue
			}
			p, ok := t.storage[key].(map[string]any)
			if !ok {
				p = map[string]any{}
				t.storage[key] = p
			}
			if why := setPath(p, segs[2:], val); why != "" {
				warn(why)
			}
		case "REDIS", "PROXY":
			section := t.redis
			if segs[0] == "PROXY" {
				section = t.proxy
			}
			if len(segs) == 1 {
				m, ok := plain(val).(map[string]any)
				if !ok {
					return fmt.Errorf("environment variable %s: want a mapping", v.name)
				}
				clear(section)
				for k, x := range m {
					section[k] = x
				}
				continue
			}
			if why := setPath(section, segs[1:], val); why != "" {
				warn(why)
			}
		case "CONFIGURATION", "VERSION":
			// REGISTRY_CONFIGURATION_PATH names the file; the version is
			// read from the file before the environment applies.
		default:
			// Sections regstore does not read.
		}
	}
	if a, ok := t.redis["addrs"]; ok {
		if _, isList := a.([]any); !isList && a != nil {
			return fmt.Errorf("redis.addrs must be a YAML list (REGISTRY_REDIS_ADDRS='[host:6379]'), got %v: the registry would not start", a)
		}
	}
	return nil
}

// mapKey is the existing key of m whose upper case is seg, or seg in
// lower case for a new key.
func mapKey(m map[string]any, seg string) string {
	for k := range m {
		if strings.ToUpper(k) == seg {
			return k
		}
	}
	return strings.ToLower(seg)
}

// setPath sets the value at segs below m, descending only through maps
// the environment made (string keys); it returns why it did not.
func setPath(m map[string]any, segs []string, val any) string {
	for i, seg := range segs {
		if seg == "" || seg != strings.ToUpper(seg) {
			return "unrecognized (keys are matched in upper case)"
		}
		key := mapKey(m, seg)
		if i == len(segs)-1 {
			m[key] = val
			return ""
		}
		switch next := m[key].(type) {
		case nil:
			n := map[string]any{}
			m[key] = n
			m = n
		case map[string]any:
			m = next
		case yamlMap:
			return "it involves a map with non-string keys (a mapping read from the YAML file)"
		default:
			return fmt.Sprintf("%s is not a mapping", strings.ToLower(seg))
		}
	}
	return ""
}

// yamlValue parses an environment value as YAML, as the registry does:
// "true" is a bool, "12" an int, "[a, b]" a list, "{k: v}" a mapping
// (opaque: it has non-string keys in the registry).
func yamlValue(s string) (any, error) {
	var v any
	if err := yaml.Unmarshal([]byte(s), &v); err != nil {
		return nil, err
	}
	return opaque(v), nil
}

// plain undoes opaque at the top level, for values that replace a whole
// section (a struct or the storage map in the registry).
func plain(v any) any {
	if y, ok := v.(yamlMap); ok {
		m := make(map[string]any, len(y))
		for k, x := range y {
			if inner, ok := x.(yamlMap); ok {
				x = map[string]any(inner)
			}
			m[k] = x
		}
		return m
	}
	return v
}
