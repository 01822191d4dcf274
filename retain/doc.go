// Package retain prunes tags by a retention policy: keep the most recent N
// tags, the tags pushed within a duration, the tags matching patterns, and
// the referrers of what is kept; remove the other tags, and report what the
// garbage collection after the prune frees.
//
// It works on the storage tree, beside the registry, through the root
// package's exported API: a tag's push time is the modification time of its
// current link, which the registry rewrites on every push of the tag, so
// no manifest or config is fetched to date it.
//
// # What it is not
//
// A prune removes tags only, as the registry's DELETE by tag does: never a
// manifest and never blob data. A removed tag's manifest is not deleted by
// digest (which would take its sibling tags along); whether it goes is up
// to the garbage collection after the prune ([gc.Mark], [gc.Sweep]), which
// keeps every manifest another tag, a kept index or a kept referrer still
// needs, and every blob any repository still needs. [Decide] computes that
// collection's plan on a read-only view of the tree without the removed
// tags, so the bytes it reports are the collection's, not an estimate.
//
// # Live registries
//
// A prune may run while the registry serves and receives pushes, under the
// same rules as garbage collection: tags pushed within the grace window
// ([gc.DefaultGrace] by default) are kept, and [Prune] re-reads each tag
// before removing it and keeps it if it was pushed again since the plan.
//
// The policy model, the push-time definition and its tie-break are
// described on [Policy], [Rule], [ParsePolicy] and [Decide].
package retain
