package main

import (
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heliosdb/helios-wasm/runtime"
)

// onSignals makes the first SIGINT/SIGTERM call stop (finish and commit the
// batches in flight, then the command exits 0) and a second one exit the
// process at once with exitInterrupted: what is not committed is
// reprocessed by the next run, as after a crash. The returned function stops
// listening.
func onSignals(stop func()) (release func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		slog.Info("stopping: committing the batches in flight (signal again to exit at once; they are reprocessed on the next run)")
		stop()
		if _, ok := <-sigs; ok {
			fmt.Fprintf(os.Stderr, "helios-wasm: interrupted again: exiting without committing the batches in flight (exit %d); rerun to resume after the last commit\n", exitInterrupted)
			os.Exit(exitInterrupted)
		}
	}()
	return func() { signal.Stop(sigs) }
}

// newMetrics creates the process's Prometheus registry (with Go and process
// collectors) and the runtime's metrics in it.
func newMetrics() (*prometheus.Registry, *runtime.Metrics) {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	return reg, runtime.NewMetrics(reg)
}
