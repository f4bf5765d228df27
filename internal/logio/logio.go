// Package logio reads and writes the embedded log in the JSON Lines form
// the CLI speaks, for the CLI itself and for a running process serving other
// commands through its data-directory socket.
package logio

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"io"

	"github.com/google/uuid"

	"github.com/heliosdb/helios-wasm/storage"
)

// BadLineError is a line of input that is not JSON.
type BadLineError struct {
	Line          int64
	Err           error
	NoneCommitted bool // ProduceChecked: the input was refused as a whole
}

func (b *BadLineError) Error() string {
	if b.NoneCommitted {
		return fmt.Sprintf("stdin line %d: %v (nothing was committed)", b.Line, b.Err)
	}
	return fmt.Sprintf("stdin line %d: %v (the lines before it are committed)", b.Line, b.Err)
}

// Produce appends the JSON lines of in to topic ti, committing every
// batchSize records with a synced write. A line that is not JSON (or, with
// keyField, not a JSON object) stops it with a *BadLineError after the lines
// before it are committed. With keyField the key is that top-level field and
// one key always lands in one partition; otherwise lines go round-robin.
func Produce(db *storage.DB, ti storage.TopicInfo, in io.Reader, keyField string, batchSize int) (int64, error) {
	r := bufio.NewReaderSize(in, 1<<20)
	b := db.NewBatch()
	defer func() { b.Close() }()
	var produced, pending, lineNo int64
	flush := func() error {
		if pending == 0 {
			return nil
		}
		if err := db.Commit(b); err != nil {
			return err
		}
		produced += pending
		pending = 0
		b = db.NewBatch()
		return nil
	}
	for {
		line, err := r.ReadBytes('\n')
		if len(line) > 0 {
			lineNo++
			line = bytes.TrimRight(line, "\r\n")
			if len(bytes.TrimSpace(line)) > 0 {
				key, kerr := recordKey(line, keyField)
				if kerr != nil {
					if ferr := flush(); ferr != nil {
						return produced, ferr
					}
					return produced, &BadLineError{Line: lineNo, Err: kerr}
				}
				e := storage.Entry{ID: uuid.New(), Key: key, Value: line}
				if err := b.Append(ti.Name, partition(ti, lineNo, key), &e); err != nil {
					return produced, err
				}
				pending++
				if pending >= int64(batchSize) {
					if err := flush(); err != nil {
						return produced, err
					}
				}
			}
		}
		if err == io.EOF {
			return produced, flush()
		}
		if err != nil {
			return produced, err
		}
	}
}

// partition is where line lineNo goes: by key hash, or round-robin.
func partition(ti storage.TopicInfo, lineNo int64, key []byte) uint32 {
	if key == nil {
		return uint32(lineNo) % ti.Partitions
	}
	h := fnv.New32a()
	h.Write(key)
	return h.Sum32() % ti.Partitions
}

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
