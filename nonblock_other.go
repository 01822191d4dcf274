//go:build !unix

package regstore

// oNonblock is 0 where the system has no named pipes to wait on.
const oNonblock = 0
