package runtime

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/heliosdb/helios-wasm/internal/crashpoint"
	"github.com/heliosdb/helios-wasm/runtime/internal/kafka"
	"github.com/heliosdb/helios-wasm/storage"
)

// restoreBatch is how many changelog records one synced restore batch
// applies.
const restoreBatch = 5000

// restore readies an assigned partition: it waits until no transaction of
// a previous owner can still commit offsets for it (the group's stable
// committed offset, KIP-447), then brings the partition's state in the data
// directory up to the changelog's committed end. Only then is a record of
// the partition processed.
func (f *fleet) restore(ctx context.Context, part int32, fp *fleetPart) error {
	f.mu.Lock()
	m := f.member
	f.mu.Unlock()
	committed, err := m.Committed(ctx, true, part)
	if err != nil {
		return err
	}
	var need int64 // the changelog offset the committed state reaches
	if c, ok := committed[part]; ok {
		fp.next = c.At
		need, _ = strconv.ParseInt(c.Metadata, 10, 64)
	}
	return f.restoreState(ctx, part, need)
}

// changelogSource names the changelog in the data directory's offsets: the
// position up to which the local state has applied it.
func (f *fleet) changelogSource() string { return "changelog:" + f.changelog }

// restoreState applies the changelog partition's committed records from
// the position the data directory has applied up to its end, which it
// first waits to reach need: the changelog offset that the group's
// committed offsets say the partition's state reaches (Kafka writes a
// transaction's commit markers partition by partition, so the offsets can
// be stable before the changelog's last records are). A position
// outside the partition's offsets (the changelog was recreated, or
// retention removed records never applied) drops the partition's local
// state and restores it whole.
func (f *fleet) restoreState(ctx context.Context, part int32, need int64) error {
	cfg := &f.p.cfg
	db, pipeline, src := cfg.DB, cfg.Name, f.changelogSource()
	applied, found, err := db.GetOffset(pipeline, src, uint32(part))
	if err != nil {
		return err
	}
	cl, err := kafka.Connect(ctx, f.src.cfg)
	if err != nil {
		return err
	}
	defer cl.Close()
	adm := kadm.NewClient(cl)
	start, err := partitionEnd(ctx, adm.ListStartOffsets, f.changelog, part)
	if err != nil {
		return err
	}
	end, err := partitionEnd(ctx, adm.ListCommittedOffsets, f.changelog, part)
	for backoff := 10 * time.Millisecond; err == nil && end < need; backoff = min(2*backoff, time.Second) {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(backoff):
		}
		end, err = partitionEnd(ctx, adm.ListCommittedOffsets, f.changelog, part)
	}
	if err != nil {
		return err
	}
	defer f.setChangelogNext(part, end)
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
	lagGauge.Set(float64(end - from))
	if from >= end {
		return nil
	}
	began, restored := time.Now(), 0
	rd, err := kafka.Connect(ctx, f.src.cfg,
		kgo.ConsumePartitions(map[string]map[int32]kgo.Offset{f.changelog: {part: kgo.NewOffset().At(from)}}),
		kgo.FetchIsolationLevel(kgo.ReadCommitted()),
		kgo.KeepControlRecords())
	if err != nil {
		return err
	}
	defer rd.Close()
	counter := cfg.Metrics.RestoredRecords.WithLabelValues(pipeline, partName(uint32(part)))
	pos := from
	b := db.NewBatch()
	defer func() { b.Close() }()
	pending := 0
	flush := func() error {
		if err := f.putApplied(b, uint32(part), pos); err != nil {
			return err
		}
		if err := db.Commit(b); err != nil {
			return fmt.Errorf("restoring partition %d's state from %s: %w", part, f.changelog, err)
		}
		counter.Add(float64(pending))
		lagGauge.Set(float64(end - pos))
		restored += pending
		pending = 0
		b = db.NewBatch()
		crashpoint.Hit(crashpoint.DuringRestore)
		return nil
	}
	for pos < end {
		fs := rd.PollRecords(ctx, restoreBatch)
		if err := ctx.Err(); err != nil {
			return err
		}
		var ferr error
		fs.EachError(func(t string, p int32, err error) {
			if ferr == nil {
				ferr = fmt.Errorf("kafka: restoring from %s partition %d: %w", t, p, err)
			}
		})
		if ferr != nil {
			return ferr
		}
		for _, r := range fs.Records() {
			if r.Offset < pos || pos >= end {
				continue
			}
			pos = r.Offset + 1
			if r.Attrs.IsControl() {
				continue
			}
			if r.Value == nil {
				err = b.DeleteState(pipeline, uint32(part), r.Key)
			} else {
				err = b.PutState(pipeline, uint32(part), r.Key, r.Value)
			}
			if err != nil {
				return err
			}
			pending++
		}
		if pending >= restoreBatch || pos >= end {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	cfg.Logger.Info("partition state restored from the changelog", "pipeline", pipeline, "partition", part,
		"records", restored, "from", from, "to", end, "elapsed", time.Since(began).Round(time.Millisecond))
	return nil
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

// setChangelogNext records that partition part's committed state reaches
// changelog offset next; the partition's next offset commits carry it.
func (f *fleet) setChangelogNext(part int32, next int64) {
	f.mu.Lock()
	f.clNext[part] = max(f.clNext[part], next)
	f.mu.Unlock()
}

// offsetMetadata is the metadata of a transaction's offset commits: for
// each partition, the changelog offset its state reaches once the
// transaction commits (placed holds the changelog offsets of the
// transaction's state changes, of partitions parts).
func (f *fleet) offsetMetadata(offsets *kafka.GroupOffsets, parts []uint32, placed []int64) map[int32]string {
	for i, part := range parts {
		f.setChangelogNext(int32(part), placed[i]+1)
	}
	f.mu.Lock()
	defer f.mu.Unlock()
	md := make(map[int32]string, len(offsets.Next))
	for part := range offsets.Next {
		if next, ok := f.clNext[part]; ok {
			md[part] = strconv.FormatInt(next, 10)
		}
	}
	return md
}
