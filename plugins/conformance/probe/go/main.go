// Command probe exercises the Go SDK's whole surface (see ../README.md).
package main

import (
	"errors"
	"strconv"
	"strings"

	helios "github.com/heliosdb/helios-wasm/plugins/sdk/go"
)

func get(k string) string {
	v, ok, err := helios.StateGet([]byte(k))
	if err != nil {
		return "error: " + err.Error()
	}
	if !ok {
		return "absent"
	}
	return string(v)
}

func probe(r *helios.Record, out *helios.Emitter) error {
	args := strings.Split(string(r.Value), " ")
	arg := func(i int) string {
		if i < len(args) {
			return args[i]
		}
		return ""
	}
	emit := func(k, v string) { out.Emit([]byte(k), []byte(v)) }
	switch args[0] {
	case "put":
		if err := helios.StatePut([]byte(arg(1)), []byte(arg(2))); err != nil {
			return err
		}
		emit(arg(1), get(arg(1)))
	case "del":
		if err := helios.StateDelete([]byte(arg(1))); err != nil {
			return err
		}
		emit(arg(1), get(arg(1)))
	case "get":
		emit(arg(1), get(arg(1)))
	case "fail":
		if err := helios.StatePut([]byte(arg(1)), []byte(arg(2))); err != nil {
			return err
		}
		emit(arg(1), "dropped")
		return helios.WithCode(1001, errors.New("probe: failed on request"))
	case "retry":
		return helios.Retryable(errors.New("probe: try again"))
	case "invalid":
		return helios.InvalidInput(errors.New("probe: bad input"))
	case "hdr":
		v, ok := r.Header(arg(1))
		if !ok {
			v = []byte("no header")
		}
		out.Emit([]byte(arg(1)), v)
	case "rec":
		out.EmitRecord(helios.Output{Key: []byte("r"), Value: []byte("v"), Timestamp: 42,
			Headers: []helios.Header{{Key: []byte("a"), Value: []byte("1")}, {Key: []byte("b"), Value: nil}}})
	case "cfg":
		emit(arg(1), helios.GetConfig().Lookup(arg(1), "unset"))
	case "multi":
		n, _ := strconv.Atoi(arg(1))
		for i := range n {
			emit("m", strconv.Itoa(i))
		}
	case "log":
		helios.Log(helios.LevelInfo, arg(1))
		emit("log", arg(1))
	default:
		out.Emit(r.Key, []byte("unknown command"))
	}
	return nil
}

func init() { helios.Handle(probe) }

func main() {}
