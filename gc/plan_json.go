package gc

import (
	"encoding/json"
	"time"
)

// GraceOff reports whether the plan was made with the grace window off
// (a negative [Options.Grace]): then nothing is spared for being young, and
// Cutoff lies after Started.
func (p *Plan) GraceOff() bool { return p.Cutoff.After(p.Started) }

// planJSON is Plan's JSON form: Cutoff is null when the grace window is off.
type planJSON struct {
	planFields
	Cutoff *time.Time `json:"cutoff"`
}

// planFields is Plan without its methods, so that encoding it does not
// recurse into MarshalJSON.
type planFields Plan

// MarshalJSON encodes the plan; "cutoff" is null when the grace window is
// off, rather than a time far ahead.
func (p Plan) MarshalJSON() ([]byte, error) {
	j := planJSON{planFields: planFields(p)}
	if !p.GraceOff() {
		j.Cutoff = &p.Cutoff
	}
	return json.Marshal(j)
}

// UnmarshalJSON decodes what MarshalJSON encodes: a null or absent "cutoff"
// means the grace window is off, as the plan was made.
func (p *Plan) UnmarshalJSON(b []byte) error {
	var j planJSON
	if err := json.Unmarshal(b, &j); err != nil {
		return err
	}
	*p = Plan(j.planFields)
	if j.Cutoff != nil {
		p.Cutoff = *j.Cutoff
	} else {
		p.Cutoff = graceOffCutoff(p.Started)
	}
	return nil
}

// graceOffCutoff is the cutoff of a plan made with the grace window off:
// far enough ahead that nothing is young.
func graceOffCutoff(started time.Time) time.Time { return started.Add(time.Hour * 24 * 365 * 100) }
