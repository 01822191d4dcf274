// Package conformance runs the OCI distribution-spec conformance suite
// against the server package's handler, and against the CNCF Distribution
// registry v3 when its binary is installed, for comparison.
//
// It is a module of its own so that the suite (pinned in go.mod) and its
// dependencies stay out of the main module. It holds tests only.
package conformance
