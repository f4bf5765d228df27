package eventtime_test

import (
	"fmt"
	"time"

	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
)

// The seed's usage: five minutes of allowed lateness, ten for one partition.
func ExampleLateDataHandler() {
	h, err := eventtime.NewLateDataHandler(eventtime.DefaultAllowedLateness, eventtime.DefaultMaxTracked)
	if err != nil {
		panic(err)
	}
	const critical = 3
	if err := h.SetAllowedLateness(critical, 10*time.Minute); err != nil {
		panic(err)
	}
	watermark := eventtime.FromStd(time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC))
	sevenMinutesAgo := watermark.Add(-7 * time.Minute)
	for _, partition := range []uint32{0, critical} {
		if !h.IsLate(partition, sevenMinutesAgo, watermark) {
			continue
		}
		switch h.Handle(partition, [16]byte{1}, sevenMinutesAgo, watermark) {
		case eventtime.Accept:
			fmt.Printf("partition %d: accepted, its window is updated\n", partition)
		case eventtime.Drop:
			fmt.Printf("partition %d: dropped to the late output (lateness > %v)\n", partition, h.AllowedLateness(partition))
		}
	}
	fmt.Println("accepted", h.Count(eventtime.Accept), "dropped", h.Count(eventtime.Drop))
	// Output:
	// partition 0: dropped to the late output (lateness > 5m0s)
	// partition 3: accepted, its window is updated
	// accepted 1 dropped 1
}
