package server

import (
	"encoding/json"
	"net/http"
)

// An errorCode is one of the registry's error codes: the value clients
// match, the registry's message, and the HTTP status it is sent with.
type errorCode struct {
	value   string
	message string
	status  int
}

// The codes of the distribution API (and the registry's own) this handler
// answers with, each with the status the v3 registry sends it with.
var (
	errUnknown             = errorCode{"UNKNOWN", "unknown error", http.StatusInternalServerError}
	errUnsupported         = errorCode{"UNSUPPORTED", "The operation is unsupported.", http.StatusMethodNotAllowed}
	errDigestInvalid       = errorCode{"DIGEST_INVALID", "provided digest did not match uploaded content", http.StatusBadRequest}
	errSizeInvalid         = errorCode{"SIZE_INVALID", "provided length did not match content length", http.StatusBadRequest}
	errRangeInvalid        = errorCode{"RANGE_INVALID", "invalid content range", http.StatusRequestedRangeNotSatisfiable}
	errNameInvalid         = errorCode{"NAME_INVALID", "invalid repository name", http.StatusBadRequest}
	errTagInvalid          = errorCode{"TAG_INVALID", "manifest tag did not match URI", http.StatusBadRequest}
	errNameUnknown         = errorCode{"NAME_UNKNOWN", "repository name not known to registry", http.StatusNotFound}
	errManifestUnknown     = errorCode{"MANIFEST_UNKNOWN", "manifest unknown", http.StatusNotFound}
	errManifestInvalid     = errorCode{"MANIFEST_INVALID", "manifest invalid", http.StatusBadRequest}
	errManifestBlobUnknown = errorCode{"MANIFEST_BLOB_UNKNOWN", "blob unknown to registry", http.StatusBadRequest}
	errBlobUnknown         = errorCode{"BLOB_UNKNOWN", "blob unknown to registry", http.StatusNotFound}
	errBlobUploadUnknown   = errorCode{"BLOB_UPLOAD_UNKNOWN", "blob upload unknown to registry", http.StatusNotFound}
	errBlobUploadInvalid   = errorCode{"BLOB_UPLOAD_INVALID", "blob upload invalid", http.StatusNotFound}
	errPaginationInvalid   = errorCode{"PAGINATION_NUMBER_INVALID", "invalid number of results requested", http.StatusBadRequest}
)

// apiError is one entry of the registry's error envelope.
type apiError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
	Detail  any    `json:"detail,omitempty"`
}

// writeError answers with the registry's JSON error envelope holding one
// error of code c, with detail (nil for none; an error is sent as its
// message).
func writeError(w http.ResponseWriter, c errorCode, detail any) {
	if err, ok := detail.(error); ok {
		detail = err.Error()
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	// Headers set for a success that did not happen must not leak.
	for _, k := range []string{"Content-Length", "Docker-Content-Digest", "Location", "Etag", "Range", "Docker-Upload-Uuid"} {
		h.Del(k)
	}
	w.WriteHeader(c.status)
	_ = json.NewEncoder(w).Encode(struct {
		Errors []apiError `json:"errors"`
	}{[]apiError{{Code: c.value, Message: c.message, Detail: detail}}})
}

// methodNotAllowed answers as the registry's router does for a method a
// route does not have (every write in read-only mode): 405 with an Allow
// header and a plain-text body, not the JSON envelope.
func methodNotAllowed(w http.ResponseWriter, allow string) {
	w.Header().Set("Allow", allow)
	http.Error(w, "Method not allowed", http.StatusMethodNotAllowed)
}
