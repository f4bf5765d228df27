package runtime

import (
	"fmt"
	"time"

	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/storage"
)

// LateReport is what a pipeline with event time has committed about its
// late records: how many were accepted (within the allowed lateness) and
// how many went to the late output, and the most recent of them (at most
// 10,000, oldest first).
type LateReport struct {
	Accepted uint64       `json:"accepted"`
	Dropped  uint64       `json:"dropped"`
	Recent   []LateRecord `json:"recent"`
}

// LateRecord is one late record: behind the pipeline watermark when it was
// read.
type LateRecord struct {
	Partition uint32    `json:"partition"`
	MessageID string    `json:"message_id"`
	EventTime time.Time `json:"event_time"`
	Watermark time.Time `json:"watermark"`
	// LatenessMs is the watermark minus the event time, in milliseconds.
	LatenessMs int64 `json:"lateness_ms"`
	// Decision is "accept" (processed) or "drop" (sent to the late output).
	Decision string `json:"decision"`
}

// LateRecords reads the committed late-record report of pipeline from db
// (empty for a pipeline without event time or late records).
func LateRecords(db *storage.DB, pipeline string) (LateReport, error) {
	h, err := eventtime.NewLateDataHandler(0, eventtime.DefaultMaxTracked)
	if err != nil {
		return LateReport{}, err
	}
	if err := loadLate(db, pipeline, h); err != nil {
		return LateReport{}, fmt.Errorf("pipeline %s: %w", pipeline, err)
	}
	rep := LateReport{Accepted: h.Count(eventtime.Accept), Dropped: h.Count(eventtime.Drop), Recent: []LateRecord{}}
	for _, r := range h.Recent() {
		rep.Recent = append(rep.Recent, LateRecord{Partition: r.Partition, MessageID: messageID(r.ID),
			EventTime: time.UnixMilli(int64(r.EventTime)).UTC(), Watermark: time.UnixMilli(int64(r.Watermark)).UTC(),
			LatenessMs: r.Lateness.Milliseconds(), Decision: r.Decision.String()})
	}
	return rep, nil
}
