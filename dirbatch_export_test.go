package regstore

// SetBatchTrace makes every batch of d report its steps, in order, to fn:
// ("stage", name), ("barrier", ""), ("publish", name).
func SetBatchTrace(d *Dir, fn func(event, name string)) { d.batchTrace = fn }

// DisableFastPath makes d answer every call through os.Root, as it does
// where openat2 is unavailable.
func DisableFastPath(d *Dir) { d.fast.disabled.Store(true) }
