// Command demo-kafka is `make demo-kafka`: it starts a local Apache Kafka
// broker (internal/localkafka, the one the tests run), runs the
// internal/kafkademo scenario against it (two instances of one pipeline,
// one killed midway, the other takes its partitions over, the output is
// checked to hold every input exactly once), prints a summary and stops the
// broker whatever happens, Ctrl-C included. It exits 0 when every check
// held, 1 when one failed or the demo could not run, 130 when interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/heliosdb/helios-wasm/internal/kafkademo"
	"github.com/heliosdb/helios-wasm/internal/localkafka"
)

func main() { os.Exit(run()) }

func run() int {
	cli := flag.String("cli", "build/helios-wasm", "the helios-wasm binary (`make build`)")
	plugin := flag.String("plugin", "build/plugins/go/count.wasm", "the count operator (`make plugins`)")
	libs := flag.String("kafka-libs", "build/cache/kafka-"+localkafka.Version, "the Kafka broker's jars (`make kafka-libs`)")
	records := flag.Int("records", 200_000, "records produced before the instances start (a quarter as many more after the kill)")
	flag.Parse()
	for _, f := range []struct{ path, make string }{{*cli, "make build"}, {*plugin, "make plugins"}} {
		if _, err := os.Stat(f.path); err != nil {
			fmt.Fprintf(os.Stderr, "demo-kafka: %v: run `%s` first (or `make demo-kafka`, which does)\n", err, f.make)
			return 1
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	dir, err := os.MkdirTemp("", "helios-demo-kafka-")
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-kafka: %v\n", err)
		return 1
	}
	defer os.RemoveAll(dir)

	fmt.Printf("== 0. Apache Kafka %s (KRaft, one broker+controller node) from %s\n", localkafka.Version, *libs)
	began := time.Now()
	broker, err := localkafka.Start(localkafka.Options{LibsDir: *libs})
	if err != nil {
		fmt.Fprintf(os.Stderr, "demo-kafka: start the broker: %v\n", err)
		return 1
	}
	defer func() {
		fmt.Println("== stopping the broker")
		broker.Stop()
	}()
	fmt.Printf("      listening on %s, ready in %.1fs\n", broker.Addrs()[0], time.Since(began).Seconds())

	res, err := kafkademo.Run(ctx, kafkademo.Config{Brokers: broker.Addrs(), CLI: *cli, Plugin: *plugin, Dir: dir,
		First: *records, Second: *records / 4})
	fmt.Println()
	switch {
	case ctx.Err() != nil:
		fmt.Println("demo-kafka: interrupted")
		return 130
	case err != nil:
		fmt.Printf("FAIL: the demo could not run to the end: %v\n", err)
		return 1
	}
	fmt.Print(res.Summary())
	if !res.Pass() {
		return 1
	}
	return 0
}
