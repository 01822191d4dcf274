package s3

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/smithy-go/middleware"
)

// Stats counts requests per S3 operation ("GetObject", "ListObjectsV2",
// ...). A retried request counts once per attempt, as the server sees it.
// It is safe for concurrent use.
type Stats struct {
	mu  sync.Mutex
	ops map[string]int64
}

func newStats() *Stats { return &Stats{ops: map[string]int64{}} }

// Snapshot returns the counts so far.
func (s *Stats) Snapshot() map[string]int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return maps.Clone(s.ops)
}

// Total is the number of requests so far.
func (s *Stats) Total() int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var n int64
	for _, c := range s.ops {
		n += c
	}
	return n
}

// Reset sets every count to zero.
func (s *Stats) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	clear(s.ops)
}

// String lists the counts by operation name, such as
// "GetObject=12 ListObjectsV2=3 (total 15)".
func (s *Stats) String() string {
	ops := s.Snapshot()
	var b strings.Builder
	var total int64
	for _, op := range slices.Sorted(maps.Keys(ops)) {
		fmt.Fprintf(&b, "%s=%d ", op, ops[op])
		total += ops[op]
	}
	fmt.Fprintf(&b, "(total %d)", total)
	return b.String()
}

// middleware adds the counter at the end of the finalize step, after the
// retry loop begins, so that each attempt is counted.
func (s *Stats) middleware(stack *middleware.Stack) error {
	return stack.Finalize.Add(middleware.FinalizeMiddlewareFunc("regstoreRequestCount",
		func(ctx context.Context, in middleware.FinalizeInput, next middleware.FinalizeHandler) (middleware.FinalizeOutput, middleware.Metadata, error) {
			op := awsmiddleware.GetOperationName(ctx)
			s.mu.Lock()
			s.ops[op]++
			s.mu.Unlock()
			return next.HandleFinalize(ctx, in)
		}), middleware.After)
}
