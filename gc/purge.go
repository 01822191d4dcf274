package gc

import (
	"context"
	"fmt"
	"io/fs"
	"time"

	"github.com/regstore/regstore"
)

// PurgeOptions configures [PurgeUploads].
type PurgeOptions struct {
	// OlderThan is the age past which an upload session is purged. It is
	// required and must be positive. The registry's default
	// (storage.maintenance.uploadpurging.age) is 168h.
	OlderThan time.Duration
	// DryRun lists what would be removed and removes nothing. It works on a
	// read-only backend.
	DryRun bool
	// Now, if set, replaces time.Now (for tests).
	Now func() time.Time
}

// PurgeUploads removes the upload sessions (_uploads/<id> directories) of
// every repository that are older than opts.OlderThan, as the registry's
// upload purging does, and returns them, in the order of the walk (see
// below). With opts.DryRun it returns what it would remove and changes
// nothing.
//
// A session's age is judged by its startedat file (RFC 3339). When
// startedat is missing or unreadable, the age of the session directory's
// modification time is used instead. This is a deliberate difference: the
// registry never purges such sessions (it gives them a start time 10000
// hours in the future), so they pile up forever; and it cannot resume them
// either (a PATCH needs startedat), so removing them loses nothing. A
// session whose startedat is in the future is kept, whatever its directory's
// modification time.
//
// Sessions are found by the registry's route grammar for upload ids
// ([a-zA-Z0-9-_.=]+, see [regstore.Repository.Uploads]), not only UUIDs: the
// registry itself treats a directory whose name is not a UUID as never
// purgeable, but any id a client could have been given is purged here, so
// that sessions left by other writers do not accumulate. Directories whose
// name is not a valid upload id are left alone.
//
// Every directory below repositories/ that holds _uploads is visited, as
// the registry walks the whole tree, so the sessions of a repository that
// has no _manifests yet (an abandoned first push, invisible to
// [regstore.Store.Repositories]) are purged too; directories whose path is not a
// valid repository name are skipped. The walk is a pre-order one with each
// directory's entries sorted by name, and within a repository sessions go in
// lexical order of their ids.
//
// Each session directory is removed whole and nothing else is touched: the
// (possibly now empty) _uploads directory stays, as the registry leaves it.
// A session that disappears meanwhile (completed or cancelled by a live
// registry) is not an error. On S3-like backends, note that removing a
// session does not abort a multipart upload still in progress.
//
// opts.OlderThan <= 0 is an error wrapping [fs.ErrInvalid]; a read-only
// backend (unless DryRun) one wrapping [errors.ErrUnsupported]; nothing is
// changed then. PurgeUploads stops at the first error, or when ctx is done,
// and returns the sessions removed so far with the error.
func PurgeUploads(ctx context.Context, s *regstore.Store, opts PurgeOptions) ([]*regstore.Upload, error) {
	const op = "purge uploads"
	if opts.OlderThan <= 0 {
		return nil, &regstore.Error{Op: op, Err: fmt.Errorf("OlderThan is %v, must be positive: %w", opts.OlderThan, fs.ErrInvalid)}
	}
	var w regstore.WriteFS
	if !opts.DryRun {
		var err error
		if w, err = writer(s, op); err != nil {
			return nil, err
		}
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	cutoff := now().Add(-opts.OlderThan)

	var purged []*regstore.Upload
	for u, err := range s.Uploads() {
		if err != nil {
			return purged, err
		}
		if err := ctx.Err(); err != nil {
			return purged, &regstore.Error{Op: op, Err: err}
		}
		if !u.StartTime().Before(cutoff) {
			continue
		}
		if !opts.DryRun {
			if err := regstore.RemoveAll(w, u.Path()); err != nil {
				return purged, &regstore.Error{Op: op, Repository: u.Repository.Name(), Reference: u.ID, Path: u.Path(), Err: err}
			}
		}
		purged = append(purged, u)
	}
	return purged, nil
}
