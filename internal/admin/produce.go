package admin

import (
	"errors"
	"fmt"
	"io"
	"net/url"
	"strconv"

	"github.com/heliosdb/helios-wasm/internal/logio"
	"github.com/heliosdb/helios-wasm/storage"
)

var errBadQuery = errors.New("bad produce parameters")

// produceBody appends the JSON lines of body to ti for POST
// /v1/topics/{topic}/records, with the options of the query (key_field,
// skip, id_from, id_scope, max_record_bytes; see logio.ProduceOptions).
func produceBody(db *storage.DB, ti storage.TopicInfo, body io.Reader, q url.Values, batch int) (logio.Produced, error) {
	opts := logio.ProduceOptions{KeyField: q.Get("key_field"), BatchSize: batch, IDFrom: q.Get("id_from"), IDScope: q.Get("id_scope")}
	var err error
	if v := q.Get("skip"); v != "" {
		if opts.Skip, err = strconv.ParseInt(v, 10, 64); err != nil {
			return logio.Produced{}, fmt.Errorf("%w: skip=%q: %v", errBadQuery, v, err)
		}
	}
	if v := q.Get("max_record_bytes"); v != "" {
		if opts.MaxRecordBytes, err = strconv.Atoi(v); err != nil {
			return logio.Produced{}, fmt.Errorf("%w: max_record_bytes=%q: %v", errBadQuery, v, err)
		}
	}
	p, err := logio.NewProducer(db, ti, opts)
	if err != nil {
		return logio.Produced{}, fmt.Errorf("%w: %v", errBadQuery, err)
	}
	return p.Run(body)
}
