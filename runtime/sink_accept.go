package runtime

import (
	"fmt"

	"github.com/heliosdb/helios-wasm/abi"
)

// RecordAcceptor is implemented by sinks that cannot write some outputs (the
// file sink: a value containing a newline). The worker asks before the
// transaction, so that such an output sends its input record to the
// dead-letter queue (abi.FailSinkRejected) instead of failing the commit of
// its whole batch on every run.
type RecordAcceptor interface {
	Accepts(OutRecord) error
}

// sinkRejects dead-letters, in w, each input of recs with an output the sink
// refuses, and returns their indexes: none of their outputs are written.
// Without a dead-letter queue the first one is an error naming the input.
func (p *Pipeline) sinkRejects(w *work, recs []abi.Record, entries []abi.Entry) (map[uint32]bool, error) {
	a, ok := p.cfg.Sink.(RecordAcceptor)
	if !ok {
		return nil, nil
	}
	var rejected map[uint32]bool
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed || rejected[e.InputIndex] {
			continue
		}
		err := a.Accepts(OutRecord{Key: e.Key, Value: e.Value, Headers: e.Headers, Timestamp: e.Timestamp})
		if err == nil {
			continue
		}
		r := &recs[e.InputIndex]
		msg := fmt.Sprintf("sink %s cannot write an output of this record: %v", p.cfg.Sink.Identity(), err)
		if p.dlq == nil {
			return nil, &RecordError{Source: p.cfg.Source.Identity(), Partition: w.part, Offset: r.Offset, ID: r.ID,
				Code: abi.FailSinkRejected, Message: msg}
		}
		if rejected == nil {
			rejected = map[uint32]bool{}
		}
		rejected[e.InputIndex] = true
		p.cfg.Logger.Warn("an output the sink cannot write; its input record goes to the dead-letter queue",
			"pipeline", p.cfg.Name, "partition", w.part, "offset", r.Offset, "error", err)
		w.dead = append(w.dead, p.deadEntry(w, r, abi.FailSinkRejected, msg))
	}
	return rejected, nil
}
