package logio

import (
	"bufio"
	"bytes"
	"io"

	"github.com/google/uuid"

	"github.com/heliosdb/helios-wasm/storage"
)

// ProduceChecked appends the JSON lines of in to topic ti in one synced
// batch, each record carrying headers (an encoded header block), once check
// has accepted every line. The first line that is not JSON or that check
// refuses stops it with a *BadLineError, and nothing is committed. The whole
// input is held in memory until the commit.
func ProduceChecked(db *storage.DB, ti storage.TopicInfo, in io.Reader, keyField string, headers []byte, check func(line []byte) error) (int64, error) {
	sc := bufio.NewScanner(in)
	sc.Buffer(make([]byte, 64<<10), 64<<20)
	b := db.NewBatch()
	defer b.Close()
	var n, lineNo int64
	for sc.Scan() {
		lineNo++
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		key, err := recordKey(line, keyField)
		if err == nil {
			err = check(line)
		}
		if err != nil {
			return 0, &BadLineError{Line: lineNo, Err: err, NoneCommitted: true}
		}
		e := storage.Entry{ID: uuid.New(), Key: key, Value: line, Headers: headers} // Append copies
		if err := b.Append(ti.Name, partition(ti, lineNo, key), &e); err != nil {
			return 0, err
		}
		n++
	}
	if err := sc.Err(); err != nil {
		return 0, &BadLineError{Line: lineNo + 1, Err: err, NoneCommitted: true}
	}
	if n == 0 {
		return 0, nil
	}
	return n, db.Commit(b)
}
