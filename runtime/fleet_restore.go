package runtime

import (
	"context"
	"encoding/binary"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
	"github.com/heliosdb/helios-wasm/runtime/internal/eventtime"
	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
	"github.com/heliosdb/helios-wasm/storage"
)

// restoreBatch is how many changelog records one synced restore batch
// applies.
const restoreBatch = 5000

// restore readies an assigned partition: it waits until no transaction of
// a previous owner can still commit offsets for it (the group's stable
// committed offset, KIP-447), then brings the partition's state (and, with
// deduplication, its message ids) in the data directory up to what the
// group's committed offsets include. Only then is a record of the
// partition processed.
func (f *fleet) restore(ctx context.Context, part int32, fp *fleetPart) error {
	f.mu.Lock()
	m := f.member
	f.mu.Unlock()
	// Batches of an earlier assignment of the partition may still be in
	// the committer, which discards them (their assignment has ended):
	// until then their state writes and message ids are pending, visible
	// to this assignment's batches.
	for int(part) < len(f.p.inflight) && f.p.inflight[part].Load() > 0 {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(5 * time.Millisecond):
		}
	}
	committed, err := m.Committed(ctx, true, part)
	if err != nil {
		return err
	}
	var need topicNexts
	if c, ok := committed[part]; ok {
		fp.next = c.At
		need = parseNexts(c.Metadata)
	}
	cl, err := kafka.Connect(ctx, f.src.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	if fp.next >= 0 {
		start, err := partitionEnd(ctx, adm.ListStartOffsets, f.src.topic, part)
		if err != nil {
			return err
		}
		if start > fp.next { // the reader's fetches go on from the log start
			warnDeleted(f.p.cfg.Logger.With("pipeline", f.p.cfg.Name), f.src.topic, part, fp.next, start)
		}
	}
	if err := f.restoreState(ctx, adm, part, need.state); err != nil {
		return err
	}
	if f.p.clock != nil {
		// The previous owner's watermarks: records it would have found
		// late are late here too, and its closed windows stay closed.
		f.p.clock.marks.Raise(uint32(part), need.mark, need.pipeline, eventtime.FromStd(f.p.now()))
	}
	if f.p.dedup != nil {
		return f.restoreDedup(ctx, adm, part, need.dedup)
	}
	return nil
}

// topicNexts are, for one input partition, the offsets of the changelog
// and of the dedup topic that its committed state reaches, and with event
// time its committed watermark and the pipeline watermark its records were
// judged against. They ride in the metadata of the group's offset commits
// as "STATE/DEDUP" or "STATE/DEDUP/MARK/PIPELINE", so that they follow the
// partition to its next owner.
type topicNexts struct {
	state, dedup   int64
	mark, pipeline eventtime.Time // NoWatermark: none
}

func parseNexts(md string) topicNexts {
	n := topicNexts{mark: eventtime.NoWatermark, pipeline: eventtime.NoWatermark}
	f := strings.Split(md, "/")
	n.state, _ = strconv.ParseInt(f[0], 10, 64)
	if len(f) > 1 {
		n.dedup, _ = strconv.ParseInt(f[1], 10, 64)
	}
	if len(f) == 4 {
		m, err1 := strconv.ParseInt(f[2], 10, 64)
		g, err2 := strconv.ParseInt(f[3], 10, 64)
		if err1 == nil && err2 == nil {
			n.mark, n.pipeline = eventtime.Time(m), eventtime.Time(g)
		}
	}
	return n
}

func (n topicNexts) String() string {
	if n.mark == eventtime.NoWatermark && n.pipeline == eventtime.NoWatermark {
		return fmt.Sprintf("%d/%d", n.state, n.dedup)
	}
	return fmt.Sprintf("%d/%d/%d/%d", n.state, n.dedup, n.mark, n.pipeline)
}

// changelogSource names the changelog in the data directory's offsets: the
// position up to which the local state has applied it.
func (f *fleet) changelogSource() string { return "changelog:" + f.changelog }

// dedupSource names the dedup topic in the data directory's offsets.
func (f *fleet) dedupSource() string { return "dedup:" + f.dedupTopic }

// restoreState applies the changelog partition's committed records from
// the position the data directory has applied up to its end, which it
// first waits to reach need: the changelog offset that the group's
// committed offsets say the partition's state reaches (Kafka writes a
// transaction's commit markers partition by partition, so the offsets can
// be stable before the changelog's last records are). A position outside
// the partition's offsets (the changelog was recreated, or retention
// removed records never applied), or one applied too long ago, drops the
// partition's local state and restores it whole.
func (f *fleet) restoreState(ctx context.Context, adm *kadm.Client, part int32, need int64) error {
	cfg := &f.p.cfg
	db, pipeline := cfg.DB, cfg.Name
	applied, found, err := db.GetOffset(pipeline, f.changelogSource(), uint32(part))
	if err != nil {
		return err
	}
	start, end, err := topicRange(ctx, adm, cfg.Logger, f.changelog, part, need)
	if err != nil {
		return err
	}
	defer f.setNext(f.changelog, part, end)
	from := applied.Offset
	stale, err := f.tooOld(ctx, adm, uint32(part))
	if err != nil {
		return err
	}
	if !found || from < start || from > end || stale {
		if err := f.dropState(uint32(part)); err != nil {
			return err
		}
		if found {
			cfg.Logger.Warn("the data directory's state of a partition is too old or does not match the changelog: restoring it whole",
				"pipeline", pipeline, "changelog", f.changelog, "partition", part, "applied", from, "changelog_start", start, "changelog_end", end, "too_old", stale)
		}
		from = start
	}
	lagGauge := cfg.Metrics.RestoreLag.WithLabelValues(pipeline, partName(uint32(part)))
	counter := cfg.Metrics.RestoredRecords.WithLabelValues(pipeline, partName(uint32(part)))
	lagGauge.Set(float64(end - from))
	began := time.Now()
	restored, err := f.replay(ctx, f.changelog, part, from, end,
		func(b *storage.Batch, r *kgo.Record) error {
			if r.Value == nil {
				return b.DeleteState(pipeline, uint32(part), r.Key)
			}
			return b.PutState(pipeline, uint32(part), r.Key, r.Value)
		},
		func(b *storage.Batch, pos int64, n int) error {
			counter.Add(float64(n))
			lagGauge.Set(float64(end - pos))
			return f.putApplied(b, uint32(part), pos)
		})
	if err != nil {
		return err
	}
	if from < end {
		cfg.Logger.Info("partition state restored from the changelog", "pipeline", pipeline, "partition", part,
			"records", restored, "from", from, "to", end, "elapsed", time.Since(began).Round(time.Millisecond))
	}
	return nil
}

// restoreDedup applies the dedup topic partition's unexpired message ids
// from the position the data directory has applied up to its end (first
// waiting for it to reach need). Ids only accumulate until they expire, so
// a position outside the topic's offsets (time retention removed records)
// just starts at its beginning.
func (f *fleet) restoreDedup(ctx context.Context, adm *kadm.Client, part int32, need int64) error {
	cfg := &f.p.cfg
	db, pipeline := cfg.DB, cfg.Name
	applied, _, err := db.GetOffset(pipeline, f.dedupSource(), uint32(part))
	if err != nil {
		return err
	}
	start, end, err := topicRange(ctx, adm, cfg.Logger, f.dedupTopic, part, need)
	if err != nil {
		return err
	}
	defer f.setNext(f.dedupTopic, part, end)
	from := applied.Offset
	if from < start || from > end {
		from = start
	}
	now := f.p.dedup.cfg.Now().UnixNano()
	_, err = f.replay(ctx, f.dedupTopic, part, from, end,
		func(b *storage.Batch, r *kgo.Record) error {
			if len(r.Key) != 16 || len(r.Value) != 8 {
				return fmt.Errorf("dedup topic %s partition %d offset %d: not a message id record; the topic belongs to helios-wasm", f.dedupTopic, part, r.Offset)
			}
			expiry := int64(binary.BigEndian.Uint64(r.Value))
			if expiry <= now {
				return nil
			}
			return b.PutDedup(pipeline, [16]byte(r.Key), expiry)
		},
		func(b *storage.Batch, pos int64, _ int) error {
			return b.PutOffset(pipeline, f.dedupSource(), uint32(part), storage.Position{Offset: pos})
		})
	return err
}

// topicRange returns a partition's log start and last stable offset, once
// the latter has reached need. The records below need were written before
// the group's offsets committed, so a partition whose high watermark is
// below need lost them (it was deleted and created again, or truncated):
// that is an error, not something to wait for.
func topicRange(ctx context.Context, adm *kadm.Client, logger *slog.Logger, topic string, part int32, need int64) (start, end int64, err error) {
	if start, err = partitionEnd(ctx, adm.ListStartOffsets, topic, part); err != nil {
		return 0, 0, err
	}
	end, err = partitionEnd(ctx, adm.ListCommittedOffsets, topic, part)
	if err == nil && end < need {
		var hw int64
		if hw, err = partitionEnd(ctx, adm.ListEndOffsets, topic, part); err == nil && hw < need {
			return 0, 0, fmt.Errorf("%w: %s partition %d ends at offset %d, but the consumer group's committed offsets say "+
				"the partition's state reaches offset %d: the topic was deleted and created again, or truncated, so the state "+
				"cannot be restored from it; process the input under a new pipeline name (and consumer group)",
				ErrKafkaOffsetsBehind, topic, part, hw, need)
		}
	}
	began, warned := time.Now(), false
	for backoff := 10 * time.Millisecond; err == nil && end < need; backoff = min(2*backoff, time.Second) {
		if !warned && time.Since(began) > 10*time.Second {
			// An open transaction of a previous owner holds the stable
			// offset back until it ends or Kafka's transaction timeout aborts it.
			logger.Warn("kafka: waiting for a transaction to end before restoring a partition", "topic", topic, "partition", part,
				"last_stable_offset", end, "needed", need)
			warned = true
		}
		select {
		case <-ctx.Done():
			return 0, 0, ctx.Err()
		case <-time.After(backoff):
		}
		end, err = partitionEnd(ctx, adm.ListCommittedOffsets, topic, part)
	}
	return start, end, err
}

// replay reads a topic partition's committed records in [from, end) and
// applies them to the data directory in synced batches of restoreBatch
// records; done adds each batch's position (and count) before it commits.
// It returns how many records it applied.
func (f *fleet) replay(ctx context.Context, topic string, part int32, from, end int64,
	apply func(*storage.Batch, *kgo.Record) error, done func(b *storage.Batch, pos int64, n int) error) (int, error) {
	if from >= end {
		return 0, nil
	}
	db := f.p.cfg.DB
	rd, err := kafka.Connect(ctx, f.src.cfg,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{topic: {part: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		return 0, err
	}
	defer rd.Close()
	pos, pending, total := from, 0, 0
	b := db.NewBatch()
	defer func() { b.Close() }()
	for pos < end {
		fs := rd.PollRecords(ctx, restoreBatch)
		if err := ctx.Err(); err != nil {
			return total, err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("kafka: restoring from %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return total, ferr
		}
		for _, r := range fs.Records() {
			if r.Offset < pos || pos >= end {
				continue
			}
			pos = r.Offset + 1
			if r.Attrs.IsControl() {
				continue
			}
			if err := apply(b, r); err != nil {
				return total, err
			}
			pending++
		}
		if pending >= restoreBatch || pos >= end {
			if err := done(b, pos, pending); err != nil {
				return total, err
			}
			if err := db.Commit(b); err != nil {
				return total, fmt.Errorf("restoring partition %d from %s: %w", part, topic, err)
			}
			total += pending
			pending = 0
			b = db.NewBatch()
			crashpoint.Hit(crashpoint.DuringRestore)
		}
	}
	return total, nil
}

// dropState deletes a partition's state from the data directory.
func (f *fleet) dropState(part uint32) error {
	db, pipeline := f.p.cfg.DB, f.p.cfg.Name
	b := db.NewBatch()
	defer b.Close()
	err := db.ScanState(pipeline, part, func(key, _ []byte) error {
		return b.DeleteState(pipeline, part, key)
	})
	if err != nil {
		return err
	}
	if err := f.putApplied(b, part, 0); err != nil {
		return err
	}
	return db.Commit(b)
}

// putApplied records in b that the partition's local state includes the
// changelog up to offset next, as of now.
func (f *fleet) putApplied(b *storage.Batch, part uint32, next int64) error {
	if err := b.PutOffset(f.p.cfg.Name, f.changelogSource(), part, storage.Position{Offset: next}); err != nil {
		return err
	}
	return b.PutOffset(f.p.cfg.Name, f.changelogSource()+"@time", part, storage.Position{Offset: time.Now().UnixMilli()})
}

// tooOld reports whether the partition's local state was last brought up
// to date longer ago than half the changelog's delete.retention.ms:
// compaction may since have removed the tombstones of keys deleted after
// it, and only a whole restore drops them.
func (f *fleet) tooOld(ctx context.Context, adm *kadm.Client, part uint32) (bool, error) {
	at, found, err := f.p.cfg.DB.GetOffset(f.p.cfg.Name, f.changelogSource()+"@time", part)
	if err != nil || !found {
		return false, err // no local state: restored whole anyway
	}
	retention := 24 * time.Hour // Kafka's default
	rcs, err := adm.DescribeTopicConfigs(ctx, f.changelog)
	if err == nil {
		if rc, err := rcs.On(f.changelog, nil); err == nil {
			for _, c := range rc.Configs {
				if c.Key == "delete.retention.ms" && c.Value != nil {
					if ms, err := strconv.ParseInt(*c.Value, 10, 64); err == nil {
						retention = time.Duration(ms) * time.Millisecond
					}
				}
			}
		}
	}
	return time.Since(time.UnixMilli(at.Offset)) > retention/2, nil
}

// setNext records that an input partition's committed state reaches
// offset next of topic (the changelog or the dedup topic); the partition's
// next offset commits carry it.
func (f *fleet) setNext(topic string, part int32, next int64) {
	f.mu.Lock()
	defer f.mu.Unlock()
	n := f.nexts[part]
	if topic == f.dedupTopic {
		n.dedup = max(n.dedup, next)
	} else {
		n.state = max(n.state, next)
	}
	f.nexts[part] = n
}

// offsetMetadata is the metadata of a transaction's offset commits: for
// each partition, the changelog and dedup offsets its state reaches once
// the transaction commits (placed holds the offsets the broker gave the
// transaction's changelog and dedup records, each of placedPart's input
// partition, in order; the rest are dead letters).
// marks (nil without event time) gives the partitions' watermarks once
// the transaction commits.
func (f *fleet) offsetMetadata(offsets *kafka.GroupOffsets, placed []kafka.PlacedRecord, placedPart []uint32, got []int64, marks *eventtime.Watermarks) map[int32]string {
	for i, part := range placedPart {
		f.setNext(placed[i].Topic, int32(part), got[i]+1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	md := make(map[int32]string, len(offsets.Next))
	for part := range offsets.Next {
		n := f.nexts[part]
		n.mark, n.pipeline = eventtime.NoWatermark, eventtime.NoWatermark
		if marks != nil {
			n.mark, _, _ = marks.Partition(uint32(part))
			n.pipeline = marks.Current()
		}
		md[part] = n.String()
	}
	return md
}
