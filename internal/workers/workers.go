// Package workers runs indexed work on a bounded number of goroutines, the
// way the tools fan out over repositories and blobs. It is not a job queue:
// the work is known up front and the first error stops it.
package workers

import (
	"context"
	"errors"
	"sync"
)

// Run runs fn(0..n-1) on at most workers goroutines, stopping at the
// first error or when ctx is done; done, if set, is called after each item
// from one goroutine at a time.
func Run(ctx context.Context, workers, n int, fn func(i int) error, done func(int)) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	next := make(chan int)
	var mu sync.Mutex
	count := 0
	var wg sync.WaitGroup
	for range min(workers, max(n, 1)) {
		wg.Go(func() {
			for i := range next {
				if err := fn(i); err != nil {
					cancel(err)
					continue
				}
				if done != nil {
					mu.Lock()
					count++
					done(count)
					mu.Unlock()
				}
			}
		})
	}
feed:
	for i := range n {
		select {
		case next <- i:
		case <-ctx.Done():
			break feed
		}
	}
	close(next)
	wg.Wait()
	if err := context.Cause(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	if ctx.Err() != nil && context.Cause(ctx) != nil {
		return context.Cause(ctx)
	}
	return nil
}
