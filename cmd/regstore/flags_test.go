package main

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
)

func TestParseDuration(t *testing.T) {
	for in, want := range map[string]time.Duration{
		"0": 0, "90m": 90 * time.Minute, "1d": 24 * time.Hour, "2w": 14 * 24 * time.Hour, "1d12h": 36 * time.Hour,
		"1.5d": 36 * time.Hour, "-1s": -time.Second, "1h30m": 90 * time.Minute, "168h": 168 * time.Hour, "500ms": 500 * time.Millisecond,
	} {
		got, err := parseDuration(in)
		if assert.NoError(t, err, in) {
			assert.Equal(t, want, got, in)
		}
	}
	for _, in := range []string{"", "1", "d", "1x", "1dd", "1.5.5d", "1d 2h", "--1d", "1d-2h", "h"} {
		_, err := parseDuration(in)
		assert.ErrorContains(t, err, "7d or 2w", "%q", in)
	}
}

func TestCount(t *testing.T) {
	assert.Equal(t, "1 blob", count(1, "blob"))
	assert.Equal(t, "0 blobs", count(0, "blob"))
	assert.Equal(t, "2 repositories", count(2, "repository"))
	assert.Equal(t, "1 repository", count(int64(1), "repository"))
	assert.Equal(t, "3 untagged manifests", count(3, "untagged manifest"))
	assert.Equal(t, "1 upload session", count(1, "upload session"))
}
