package main

import (
	"errors"
	"flag"
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"
)

// durationFlag is a time.Duration flag that also takes days ("d", 24h) and
// weeks ("w", 7d): "7d", "2w", "1d12h", "90m", "-1s".
type durationFlag time.Duration

// durationHelp says what a duration flag accepts, in error messages.
const durationHelp = `a duration such as 90m, 36h, 7d or 2w (units: w, d, h, m, s, ms)`

// durationTerm is one number and unit of a duration.
var durationTerm = regexp.MustCompile(`([0-9]+(?:\.[0-9]*)?|\.[0-9]+)(ns|us|µs|μs|ms|s|m|h|d|w)`)

// parseDuration is time.ParseDuration with days and weeks.
func parseDuration(s string) (time.Duration, error) {
	bad := fmt.Errorf("%q is not %s", s, durationHelp)
	body, neg := strings.CutPrefix(s, "-")
	if !neg {
		body = strings.TrimPrefix(body, "+")
	}
	if body == "0" {
		return 0, nil
	}
	terms := durationTerm.FindAllStringSubmatchIndex(body, -1)
	if len(terms) == 0 {
		return 0, bad
	}
	var total time.Duration
	end := 0
	for _, m := range terms {
		if m[0] != end {
			return 0, bad
		}
		end = m[1]
		num, unit := body[m[2]:m[3]], body[m[4]:m[5]]
		var d time.Duration
		switch unit {
		case "d", "w":
			n, err := strconv.ParseFloat(num, 64)
			if err != nil {
				return 0, bad
			}
			if unit == "w" {
				n *= 7
			}
			d = time.Duration(n * 24 * float64(time.Hour))
		default:
			var err error
			if d, err = time.ParseDuration(num + unit); err != nil {
				return 0, bad
			}
		}
		total += d
	}
	if end != len(body) {
		return 0, bad
	}
	if neg {
		total = -total
	}
	return total, nil
}

func (d *durationFlag) Set(s string) error {
	v, err := parseDuration(s)
	if err != nil {
		return err
	}
	*d = durationFlag(v)
	return nil
}

func (d *durationFlag) String() string { return time.Duration(*d).String() }

// durationVar defines a duration flag that takes days and weeks too.
func durationVar(fset *flag.FlagSet, name string, value time.Duration, usage string) *time.Duration {
	p := new(time.Duration)
	*p = value
	fset.Var((*durationFlag)(p), name, usage)
	return p
}

// flagNames matches a flag named with one dash in the flag package's
// messages ("flag provided but not defined: -x", "for flag -grace: ...").
var flagNames = regexp.MustCompile(`(^|[\s:]|flag )-([A-Za-z][A-Za-z0-9-]*)`)

// valueError matches the flag package's "invalid value" messages.
var valueError = regexp.MustCompile(`^invalid (?:boolean )?value ("(?:[^"\\]|\\.)*") for (?:flag )?-([A-Za-z0-9-]+): (.*)$`)

// flagError rewrites a flag parsing error to name flags as this command
// documents them, with two dashes: "flag provided but not defined: --x",
// "--workers: invalid value \"x\"", "--grace: \"1x\" is not a duration...".
func flagError(err error) error {
	if err == nil || errors.Is(err, flag.ErrHelp) {
		return err
	}
	msg := err.Error()
	if m := valueError.FindStringSubmatch(msg); m != nil {
		value, name, cause := m[1], m[2], m[3]
		switch {
		case strings.Contains(cause, value):
			return fmt.Errorf("--%s: %s", name, cause)
		case cause == "parse error" && strings.HasPrefix(msg, "invalid boolean"):
			return fmt.Errorf("--%s: invalid value %s (want true or false)", name, value)
		case cause == "parse error":
			return fmt.Errorf("--%s: invalid value %s", name, value)
		default:
			return fmt.Errorf("--%s: invalid value %s: %s", name, value, cause)
		}
	}
	return errors.New(flagNames.ReplaceAllString(msg, "${1}--${2}"))
}
