// Package server serves a [regstore.Store] over the OCI distribution API
// (distribution-spec v1.1) and the registry's /v2/_catalog, answering as
// the CNCF Distribution registry v3 answers, from any backend: a
// directory, an object store, or memory.
//
// [New] returns an [http.Handler] (a [*Handler]) for a store;
// [NewMemory] one over a fresh in-memory store, for tests:
//
//	store, h := server.NewMemory(server.Options{})
//	srv := httptest.NewServer(h)
//	defer srv.Close()
//	// push and pull through srv.URL; read or write store meanwhile
//
// # What it serves
//
//   - Pulls: manifests by tag and by digest (GET, HEAD) with the stored
//     bytes, their media type, Docker-Content-Digest, Content-Length and
//     ETag, If-None-Match and If-Match; blobs with ranges (open-ended and
//     suffix ones too) and conditional requests. Content negotiation is
//     the v3 registry's: an OCI manifest or index only to clients whose
//     Accept names it.
//   - Listings: tags (sorted) and the catalog (in the v3 registry's order,
//     see [regstore.Store.Repositories]), both with n and last and a Link
//     header to the next page. The catalog defaults to 100 names a page and
//     refuses n above 1000, as the registry.
//   - Referrers: GET /v2/<name>/referrers/<digest>, an image index of the
//     repository's manifests whose subject is the digest, found by reading
//     them (what was read is cached by digest: manifests are immutable),
//     with the artifactType filter and OCI-Filters-Applied. The registry
//     itself has no referrers API.
//   - Pushes: monolithic (POST with ?digest=), POST then PUT, chunked
//     PATCHes with or without Content-Range (416 RANGE_INVALID out of
//     order), upload status and cancel, cross-repository mounts (201 when
//     mounted, else a new session; ?mount= without from= mounts from any
//     repository, as OCI 1.1 allows), manifest PUT by tag and by digest
//     with ?tag= parameters (OCI-Tag) and OCI-Subject for manifests with a
//     subject. Manifests over 4 MiB are refused with MANIFEST_INVALID, as
//     the registry refuses them. sha512 digests work for blobs and
//     manifests (the data is stored once, under its sha256 digest, and
//     the sha512 digest is a link to it, as the registry's alias links).
//   - Deletes of manifests, tags and blobs, each allowed by its own
//     option and refused by default with 405 UNSUPPORTED, as the registry
//     does without storage.delete.enabled.
//   - Errors in the registry's JSON envelope, {"errors":[{"code",
//     "message","detail"}]}, with its codes and statuses.
//   - A read-only mode: writes answer 405 Method Not Allowed with an Allow
//     header, as the registry's read-only maintenance mode does.
//
// # What it writes
//
// Pushes are the store's push-equivalent writes ([regstore.Repository]'s
// PutBlob, Mount, LinkBlob, PutManifest; [regstore.Tag]'s Set and Delete),
// so what the handler writes is what a registry would have written, and a
// registry serves it. Upload sessions live in the repository's
// _uploads/<id>/ with a startedat file, as the registry keeps them, so
// upload purging and the garbage collector's grace window apply unchanged.
// A backend publishes whole files only, so each chunk of a session is a
// file of its own (the first one is the registry's data file, later ones
// parts/<offset>), streamed to the backend; the completing PUT streams
// them into the store's blob write, which hashes and verifies them.
// Memory stays bounded whatever the blob's size.
//
// # Concurrency
//
// The handler keeps no state besides the referrers cache: any number of
// requests, handlers and processes (a live registry among them) may share
// a tree. As in the registry, the last of two concurrent tag writes wins.
// A garbage collection in the same process should run inside
// [Handler.Exclusive], which holds back the requests that publish blobs,
// links or tags (not reads, nor chunk uploads) while it runs: then no
// push can race it. A collection from another process relies on its grace
// window, which leaves the narrow window the collector documents; the
// handler narrows it further by looking again, after a manifest is
// published, for everything the manifest references: a blob link removed
// meanwhile is written again, and a blob whose data is gone is reported as
// MANIFEST_BLOB_UNKNOWN, so that the client pushes it again.
//
// # What it is not
//
// It has no authentication, no authorization, no TLS of its own (see the
// regstore serve command for that), no rate limits, no pull-through cache,
// no notifications and no schema1. Put a proxy that authenticates in
// front of it before you expose it. Manifests whose blobs or children were
// not pushed (the conformance suite's "sparse" manifests) are refused with
// MANIFEST_BLOB_UNKNOWN, as by the registry.
package server
