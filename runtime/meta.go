package runtime

import (
	"encoding/json"
	"fmt"

	"github.com/heliosdb/helios-wasm/storage"
)

// PipelineInfo is what the data directory remembers about a pipeline, so
// that tools (dlq, status) can find its source, sink and plugin.
type PipelineInfo struct {
	Name       string   `json:"name"`
	Input      string   `json:"input"`
	Output     string   `json:"output"`
	Plugin     string   `json:"plugin"`
	PluginHash string   `json:"plugin_hash"`
	Config     []string `json:"config,omitempty"`
	Window     string   `json:"window,omitempty"` // the window spec (--window), empty without windows
}

// SavePipelineInfo records info under its name (a synced write).
func SavePipelineInfo(db *storage.DB, info PipelineInfo) error {
	b, err := json.Marshal(info)
	if err != nil {
		return err
	}
	batch := db.NewBatch()
	if err := batch.PutMeta(info.Name, b); err != nil {
		batch.Close()
		return err
	}
	return db.Commit(batch)
}

// LoadPipelineInfo returns the recorded info of pipeline name.
func LoadPipelineInfo(db *storage.DB, name string) (PipelineInfo, error) {
	b, found, err := db.GetMeta(name)
	if err != nil {
		return PipelineInfo{}, err
	}
	if !found {
		names, _ := db.Pipelines()
		return PipelineInfo{}, fmt.Errorf("no pipeline %q in %s (pipelines: %v)", name, db.Dir(), names)
	}
	var info PipelineInfo
	if err := json.Unmarshal(b, &info); err != nil {
		return PipelineInfo{}, fmt.Errorf("pipeline %s: corrupt metadata: %w", name, err)
	}
	return info, nil
}
