package main

import (
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"

	"github.com/heliosdb/helios-wasm/runtime"
)

// onSignals makes the first SIGINT/SIGTERM call stop (finish and commit the
// batches in flight) and a second one call abandon. The returned function
// stops listening.
func onSignals(stop, abandon func()) (release func()) {
	sigs := make(chan os.Signal, 2)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM)
	go func() {
		if _, ok := <-sigs; !ok {
			return
		}
		slog.Info("stopping: committing the batches in flight (signal again to abandon them)")
		stop()
		if _, ok := <-sigs; ok {
			abandon()
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
