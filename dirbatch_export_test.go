package regstore

// SetBatchTrace makes every batch of d report its steps, in order, to fn:
// ("stage", name), ("barrier", ""), ("publish", name).
func SetBatchTrace(d *Dir, fn func(event, name string)) { d.batchTrace = fn }
