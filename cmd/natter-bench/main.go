// Command natter-bench is natter's load generator: many users of the Go SDK
// messaging each other through one natterd, reporting throughput, delivery
// latency and memory. See internal/bench, or run natter-bench -h.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/natterim/natter/internal/bench"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := bench.Main(ctx, os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
