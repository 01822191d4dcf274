// Package migrate moves images into, out of and between registry trees:
// [ImportOCILayout] and [ExportOCILayout] for OCI image layouts (skopeo,
// crane, umoci, buildkit), [ImportDockerArchive] for docker save archives,
// [ImportSkopeoDir] for skopeo's dir transport, and [Copy] from one store to
// another (another directory, memory, or S3), with resume and optional hard
// links between directories on one filesystem.
//
// Every import verifies what it reads against its digests and writes in the
// registry's push order (blobs, then manifests bottom-up, then tags), so a
// registry serving the tree never sees a pointer to something missing, and a
// failed import leaves nothing that a tag reaches. It is built only on the
// exported API of package regstore. It does not talk to registries over
// HTTP; see the server package for serving a tree.
package migrate
