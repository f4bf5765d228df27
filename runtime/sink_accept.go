package runtime

import (
	"fmt"

	"github.com/heliosdb/helios-wasm/abi"
)

// Outputs a pipeline cannot write: refused by the sink or by the output
// schema. Either fails the output's input record.

// RecordAcceptor is implemented by sinks that cannot write some outputs (the
// file sink: a value containing a newline). The worker asks before the
// transaction, so that such an output sends its input record to the
// dead-letter queue (abi.FailSinkRejected) instead of failing the commit of
// its whole batch on every run.
type RecordAcceptor interface {
	Accepts(OutRecord) error
}

// sinkRejects dead-letters, in w, each input of recs with an output the sink
// refuses or that does not match the output schema (Config.OutputSchema),
// and returns their indexes: none of their outputs are written. Outputs
// that pass have their schema header set. Without a dead-letter queue the
// first one is an error naming the input.
func (p *Pipeline) sinkRejects(w *work, recs []abi.Record, entries []abi.Entry) (map[uint32]bool, error) {
	a, _ := p.cfg.Sink.(RecordAcceptor)
	if a == nil && p.outSchema == nil {
		return nil, nil
	}
	var rejected map[uint32]bool
	for i := range entries {
		e := &entries[i]
		if e.Kind == abi.EntryKindFailed || rejected[e.InputIndex] {
			continue
		}
		var msg string
		var code uint32
		var err error
		if p.outSchema != nil {
			var hs []byte
			if hs, err = p.outSchema.check(e); err == nil {
				e.Headers = hs
			} else {
				msg, code = err.Error(), abi.FailSchema
			}
		}
		if err == nil && a != nil {
			if err = a.Accepts(OutRecord{Key: e.Key, Value: e.Value, Headers: e.Headers, Timestamp: e.Timestamp}); err != nil {
				msg, code = fmt.Sprintf("sink %s cannot write an output of this record: %v", p.cfg.Sink.Identity(), err), abi.FailSinkRejected
			}
		}
		if err == nil {
			continue
		}
		r := &recs[e.InputIndex]
		if p.dlq == nil {
			return nil, &RecordError{Source: p.cfg.Source.Identity(), Partition: w.part, Offset: r.Offset, ID: r.ID,
				Code: code, Message: msg}
		}
		if rejected == nil {
			rejected = map[uint32]bool{}
		}
		rejected[e.InputIndex] = true
		p.cfg.Logger.Warn("an output the sink cannot write or that does not match the output schema; its input record goes to the dead-letter queue",
			"pipeline", p.cfg.Name, "partition", w.part, "offset", r.Offset, "error", err)
		w.dead = append(w.dead, p.deadEntry(w, r, code, msg))
	}
	return rejected, nil
}
