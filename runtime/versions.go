package runtime

import (
	"encoding/json"
	"fmt"
	"sync"

	"github.com/heliosdb/helios-wasm/storage"
)

// versionMu serialises recording versions across the pipelines of a
// process: pruning decides that no version of any pipeline still needs a
// module, and a concurrent swap elsewhere must not start reusing that
// module (it skips writing modules it finds stored) in between.
var versionMu sync.Mutex

// pruneVersions stages, in b (the batch that records version seq running
// module hash), the deletion of the pipeline's oldest version records
// beyond KeepVersions, and of their modules where no remaining version of
// any pipeline uses them. The running version and the rollback target (the
// latest earlier version with another module) are always kept.
func (p *Pipeline) pruneVersions(b *storage.Batch, seq uint64, hash string) error {
	versions, err := pluginVersions(p.cfg.DB, p.cfg.Name)
	if err != nil {
		return fmt.Errorf("pipeline %s: plugin history: %w", p.cfg.Name, err)
	}
	versions = append(versions, pluginVersion{Seq: seq, Hash: hash})
	keep := p.cfg.KeepVersions
	if len(versions) <= keep {
		return nil
	}
	kept := map[uint64]bool{seq: true}
	for i := len(versions) - 2; i >= 0; i-- {
		if versions[i].Hash != hash {
			kept[versions[i].Seq] = true // the rollback target
			break
		}
	}
	for i := len(versions) - 1; i >= 0 && len(kept) < keep; i-- {
		kept[versions[i].Seq] = true
	}
	used := map[string]bool{hash: true}
	var dropped []pluginVersion
	for _, v := range versions {
		if kept[v.Seq] {
			used[v.Hash] = true
			continue
		}
		dropped = append(dropped, v)
		if err := b.DeleteSeq(storage.SeqVersion, p.cfg.Name, v.Seq); err != nil {
			return err
		}
	}
	// Other pipelines' versions may share a module (modules are stored once
	// per content hash).
	if err := p.cfg.DB.ListSeqAll(storage.SeqVersion, func(pipeline string, _ uint64, data []byte) error {
		if pipeline == p.cfg.Name {
			return nil
		}
		var v pluginVersion
		if err := json.Unmarshal(data, &v); err != nil {
			return fmt.Errorf("pipeline %s: plugin history: %w", pipeline, err)
		}
		used[v.Hash] = true
		return nil
	}); err != nil {
		return err
	}
	for _, v := range dropped {
		if !used[v.Hash] {
			used[v.Hash] = true // delete once
			if err := b.DeleteBlob(v.Hash); err != nil {
				return err
			}
		}
	}
	return nil
}
