package storage

import (
	"encoding/binary"
	"fmt"
)

// Key layout. Every key starts with a one-byte tag naming its family, so that
// each family is one contiguous, prefix-bounded range:
//
//	'T' topic                                  -> topic metadata (partitions)
//	'H' topic 0x00 part(u32 BE)                -> durable high-water mark (u64 LE): next offset
//	'L' topic 0x00 part(u32 BE) offset(u64 BE) -> log entry
//	'O' group 0x00 source 0x00 part(u32 BE)    -> consumer position (Position)
//	'S' pipeline 0x00 part(u32 BE) userkey     -> operator state value
//	'X' pipeline 0x00 txid(u64 BE)             -> transaction decision record
//	'C' pipeline 0x00 id(u64 BE)               -> offset checkpoint
//	'D' pipeline 0x00 id(u64 BE)               -> dead-letter entry
//	'U' pipeline 0x00 message id(16)           -> dedup expiry (unix nanos, u64 BE)
//	'u' pipeline 0x00 expiry(u64 BE) id(16)    -> empty: the dedup expiry index
//	'E' producer                               -> producer epoch (u64 BE)
//	'Q' producer 0x00 topic 0x00 part(u32 BE)  -> epoch(u64 BE) last sequence(u64 BE)
//	'V' pipeline 0x00 seq(u64 BE)              -> plugin version record
//	'W' pipeline 0x00 id(u64 BE)               -> event-time state (watermarks, late-data counters)
//	'B' sha256 (hex)                           -> plugin module bytes (content-addressed)
//	'P' pipeline                               -> pipeline metadata
//	'R' subject 0x00 version(u64 BE)           -> schema version (schema.go)
//	'M' subject                                -> schema compatibility mode ("" = default)
//	'G' sha256 (hex)                           -> schema migrator module bytes (schema.go)
//
// Names never contain 0x00 (ValidateName), so the 0x00 separator keeps one
// name's range from overlapping another's. Big-endian integers make byte order
// equal numeric order, so iteration yields offsets and ids in order.
const (
	tagTopic      = 'T'
	tagHighWater  = 'H'
	tagLog        = 'L'
	tagOffset     = 'O'
	tagState      = 'S'
	tagTxn        = 'X'
	tagCheckpoint = 'C'
	tagDeadLetter = 'D'
	tagDedup      = 'U'
	tagDedupIndex = 'u'
	tagEpoch      = 'E'
	tagVersion    = 'V'
	tagEventTime  = 'W'
	tagBlob       = 'B'
	tagSequence   = 'Q'
	tagMeta       = 'P'
	tagSchema     = 'R'
	tagSchemaMode = 'M'
	tagMigrator   = 'G'
)

// knownTag reports whether a key's first byte is one of the tags above.
func knownTag(b byte) bool {
	switch b {
	case tagTopic, tagHighWater, tagLog, tagOffset, tagState, tagTxn, tagCheckpoint, tagDeadLetter,
		tagDedup, tagDedupIndex, tagEpoch, tagVersion, tagEventTime, tagBlob, tagSequence, tagMeta:
		return true
	}
	return false
}

// ValidateName checks a topic or pipeline name: 1..249 bytes of
// [A-Za-z0-9._-] (Kafka's rule, so topics map onto Kafka unchanged).
func ValidateName(kind, name string) error {
	if name == "" || len(name) > 249 {
		return fmt.Errorf("%s name %q must be 1 to 249 characters", kind, name)
	}
	for _, c := range []byte(name) {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("%s name %q may only contain letters, digits, '.', '_' and '-'", kind, name)
		}
	}
	return nil
}

func nameKey(dst []byte, tag byte, name string) []byte {
	dst = append(dst, tag)
	dst = append(dst, name...)
	return append(dst, 0)
}

func topicKey(topic string) []byte { return append([]byte{tagTopic}, topic...) }

func highWaterKey(topic string, part uint32) []byte {
	return binary.BigEndian.AppendUint32(nameKey(nil, tagHighWater, topic), part)
}

func logPrefix(dst []byte, topic string, part uint32) []byte {
	return binary.BigEndian.AppendUint32(nameKey(dst, tagLog, topic), part)
}

func logKey(dst []byte, topic string, part uint32, off uint64) []byte {
	return binary.BigEndian.AppendUint64(logPrefix(dst, topic, part), off)
}

// offsetKey's source may contain any byte but 0x00 (it is a path or a topic).
func offsetKey(group, source string, part uint32) []byte {
	k := nameKey(nil, tagOffset, group)
	k = append(k, source...)
	k = append(k, 0)
	return binary.BigEndian.AppendUint32(k, part)
}

func statePrefix(pipeline string, part uint32) []byte {
	return binary.BigEndian.AppendUint32(nameKey(nil, tagState, pipeline), part)
}

func seqKey(tag byte, pipeline string, id uint64) []byte {
	return binary.BigEndian.AppendUint64(nameKey(nil, tag, pipeline), id)
}

func metaKey(pipeline string) []byte { return append([]byte{tagMeta}, pipeline...) }

// prefixEnd returns the smallest key greater than every key with prefix p.
func prefixEnd(p []byte) []byte {
	end := append([]byte(nil), p...)
	for i := len(end) - 1; i >= 0; i-- {
		end[i]++
		if end[i] != 0 {
			return end[:i+1]
		}
	}
	return nil // p is all 0xff: no upper bound
}
