//go:build linux

package regstore

// DisableFastPath makes d answer every call through os.Root, as it does
// where openat2 is unavailable.
func DisableFastPath(d *Dir) { d.fast.disabled.Store(true) }
