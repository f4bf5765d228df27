// Package eventtime is the host's event-time machinery: reading a record's
// event time (Extractor), tracking watermarks per partition (Watermarks),
// deciding what happens to late records (LateDataHandler), assigning records
// to windows (WindowSpec, SessionIndex) and the bound of the windows a
// watermark closes (CloseBefore).
//
// Nothing here reads a clock: event time comes from records and processing
// time is passed in by the caller, so a replay of the same input with the
// same restored state routes every record the same way. Every piece of state
// that must commit with the offsets (watermarks, late-data counters) has
// MarshalBinary and UnmarshalBinary; open windows and sessions live in the
// pipeline's state (runtime/window.go, runtime/window_session.go).
//
// Types are safe for concurrent use only where their doc says so; the
// pipeline drives them from one goroutine per partition set and reads
// watermarks and counters from others (metrics, admin).
package eventtime
