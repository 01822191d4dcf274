package regstore

import (
	"os"
	"path/filepath"
)

// owner is the user and group a Dir gives what it creates, when the
// process would otherwise leave them its own: a tool run as root on a tree
// the registry serves as its service user must not leave directories that
// user cannot write (the registry then fails to push into them).
type owner struct {
	uid, gid int
}

// ownerFor returns the owner new files under dir get: the owner of the
// layout root (dir/docker/registry/v2, or dir itself when that is missing)
// when the process runs as root and it belongs to someone else; nil
// otherwise (the process's own ids are what the registry would use too).
func ownerFor(dir string) *owner {
	if os.Geteuid() != 0 {
		return nil
	}
	fi, err := os.Stat(filepath.Join(dir, filepath.FromSlash(DefaultLayoutRoot)))
	if err != nil {
		fi, err = os.Stat(dir)
	}
	if err != nil {
		return nil
	}
	uid, gid, ok := fileOwner(fi)
	if !ok || uid == os.Geteuid() && gid == os.Getegid() {
		return nil
	}
	return &owner{uid: uid, gid: gid}
}

// Owner reports the user and group the Dir gives the files and
// directories it creates: ok is true when it changes them (the process runs
// as root and the layout root, docker/registry/v2 below the directory the
// Dir was opened on, or that directory when it has none, belongs to another
// user or group), false when they keep the process's own.
func (d *Dir) Owner() (uid, gid int, ok bool) {
	if d.owner == nil {
		return 0, 0, false
	}
	return d.owner.uid, d.owner.gid, true
}

// ownDirs gives the directories made (paths in the Dir) the owner.
func (d *Dir) ownDirs(made []string) error {
	if d.owner == nil {
		return nil
	}
	for _, dir := range made {
		if err := d.root.Lchown(dir, d.owner.uid, d.owner.gid); err != nil && !os.IsNotExist(err) {
			return err
		}
	}
	return nil
}

// ownFile gives a file just created, still open, the owner.
func (d *Dir) ownFile(f *os.File) error {
	if d.owner == nil {
		return nil
	}
	return f.Chown(d.owner.uid, d.owner.gid)
}
