// Package gc collects garbage in a registry tree, as the registry's
// garbage-collect command does, and safely beside a registry that is
// serving it: [Mark] finds what nothing references and returns it as a
// [Plan] (a dry run; the plan is plain JSON), and [Sweep] removes what a
// plan lists, re-checking every item first, pointers before data, with a
// grace window that protects what was written recently. [PurgeUploads]
// removes abandoned upload sessions, as the registry's upload purging does.
//
// What it cannot name, parse or read it keeps or refuses, never skips: a
// directory holding _manifests whose name is not valid is marked whole and
// left alone ([Plan].Unnamed); a tag directory whose name is not a valid
// tag still tags; a revision link naming another digest than its path, a
// link that is a directory or a symbolic link below repositories/ ends
// [Mark] with an error. [Sweep] reports what it removed and, apart, what
// it kept of the plan and why ([Result]).
//
// It is built only on the exported API of package regstore, as a
// third-party tool would be. It is not a retention policy: it never removes
// a tag (see the retain package for that), only what no tag, or with
// DeleteUntagged what no tag and no kept index, still reaches.
package gc
