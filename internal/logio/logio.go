// Package logio reads and writes the embedded log in the JSON Lines form
// the CLI speaks, for the CLI itself and for a running process serving other
// commands through its data-directory socket.
package logio

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"

	"github.com/heliosdb/helios-wasm/storage"
)

// recordKey validates a line as JSON and extracts the key field.
func recordKey(line []byte, keyField string) ([]byte, error) {
	if keyField == "" {
		if !json.Valid(line) {
			var v any
			return nil, fmt.Errorf("not valid JSON: %v", json.Unmarshal(line, &v))
		}
		return nil, nil
	}
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(line, &obj); err != nil {
		return nil, fmt.Errorf("not a JSON object: %v", err)
	}
	raw, ok := obj[keyField]
	if !ok {
		return nil, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return raw, nil // a non-string key: its JSON text
	}
	return []byte(s), nil
}

// Consume writes the committed values of topic (one partition, or all when
// part < 0, each in offset order) from offset from, one per line.
func Consume(db *storage.DB, topic string, part int, from uint64, w io.Writer) error {
	ti, err := db.Topic(topic)
	if err != nil {
		return err
	}
	if part >= int(ti.Partitions) {
		return fmt.Errorf("partition %d: topic %s has %d partitions", part, ti.Name, ti.Partitions)
	}
	bw := bufio.NewWriterSize(w, 64<<10)
	var entries []storage.Entry
	var arena []byte
	for p := uint32(0); p < ti.Partitions; p++ {
		if part >= 0 && uint32(part) != p {
			continue
		}
		for off := from; off < ti.HighWater[p]; {
			entries, arena, err = db.ReadLog(ti.Name, p, off, 1000, 8<<20, entries[:0], arena)
			if err != nil {
				return err
			}
			if len(entries) == 0 {
				break
			}
			for _, e := range entries {
				bw.Write(e.Value)
				bw.WriteByte('\n')
			}
			off = entries[len(entries)-1].Offset + 1
		}
	}
	return bw.Flush()
}
