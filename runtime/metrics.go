package runtime

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Metrics are the Prometheus collectors of the pipelines of one process.
// Create one with NewMetrics and pass it to every pipeline's Config.
type Metrics struct {
	TxnResults      *prometheus.CounterVec   // helios_transactions_total{pipeline,result}
	PrepareFailures *prometheus.CounterVec   // helios_transactions_prepare_failures_total{pipeline}
	CommitDuration  *prometheus.HistogramVec // helios_commit_duration_seconds{pipeline}
	RecordsIn       *prometheus.CounterVec   // helios_records_in_total{pipeline,partition}
	RecordsOut      *prometheus.CounterVec   // helios_records_out_total{pipeline,partition}
	RecordsFailed   *prometheus.CounterVec   // helios_records_failed_total{pipeline,partition}
	PluginCalls     *prometheus.CounterVec   // helios_plugin_calls_total{pipeline,plugin}
	PluginTraps     *prometheus.CounterVec   // helios_plugin_call_failures_total{pipeline,plugin,kind}
	// TransientFailures counts isolated suspects that passed when run
	// again alone on a fresh instance, and were processed.
	TransientFailures *prometheus.CounterVec   // helios_transient_failures_total{pipeline}
	CallDuration      *prometheus.HistogramVec // helios_plugin_call_duration_seconds{pipeline}
	QueueDepth        *prometheus.GaugeVec     // helios_queue_depth{pipeline}
	QueueDepthMax     *prometheus.GaugeVec     // helios_queue_depth_max{pipeline}
	BatchSize         *prometheus.GaugeVec     // helios_batch_size{pipeline,partition}
	Credits           *prometheus.GaugeVec     // helios_flow_credits_available_bytes{pipeline}
	ConsumerLag       *prometheus.GaugeVec     // helios_consumer_lag{pipeline,partition}
	LagVelocity       *prometheus.GaugeVec     // helios_consumer_lag_velocity{pipeline,partition}
	DLQSize           *prometheus.GaugeVec     // helios_dlq_size{pipeline}
	DLQAdded          *prometheus.CounterVec   // helios_dlq_added_total{pipeline}
	DLQFull           *prometheus.GaugeVec     // helios_dlq_full{pipeline}
	DedupHits         *prometheus.CounterVec   // helios_dedup_hits_total{pipeline}
	Swaps             *prometheus.CounterVec   // helios_plugin_swaps_total{pipeline,reason}
	// Event time (Config.EventTime), as committed.
	Watermark    *prometheus.GaugeVec   // helios_watermark_seconds{pipeline}
	WatermarkLag *prometheus.GaugeVec   // helios_watermark_lag_seconds{pipeline,partition}
	LateRecords  *prometheus.CounterVec // helios_late_records_total{pipeline,decision}
	// A kafka: -> kafka: pipeline in a consumer group.
	Rebalances         *prometheus.CounterVec // helios_rebalances_total{pipeline,change}
	AssignedPartitions *prometheus.GaugeVec   // helios_assigned_partitions{pipeline}
	RestoredRecords    *prometheus.CounterVec // helios_state_restored_records_total{pipeline,partition}
	RestoreLag         *prometheus.GaugeVec   // helios_state_restore_remaining_records{pipeline,partition}
}

// NewMetrics creates the collectors and registers them with reg (nil: they
// are not registered, for embedders that do not export metrics).
func NewMetrics(reg prometheus.Registerer) *Metrics {
	pl := []string{"pipeline"}
	pp := []string{"pipeline", "partition"}
	m := &Metrics{
		TxnResults: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_transactions_total",
			Help: "Transactions by result: committed, aborted or timed_out."}, []string{"pipeline", "result"}),
		PrepareFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_transactions_prepare_failures_total",
			Help: "Transactions whose prepare phase failed."}, pl),
		CommitDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "helios_commit_duration_seconds",
			Help: "Time from a transaction's begin to its commit.", Buckets: prometheus.ExponentialBuckets(0.0005, 2, 16)}, pl),
		RecordsIn: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_records_in_total",
			Help: "Input records committed (processed, dead-lettered or skipped as duplicates)."}, pp),
		RecordsOut: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_records_out_total",
			Help: "Output records committed."}, pp),
		RecordsFailed: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_records_failed_total",
			Help: "Input records sent to the dead-letter queue."}, pp),
		PluginCalls: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_plugin_calls_total",
			Help: "Operator calls (one per batch, plus bisection and retry calls)."}, []string{"pipeline", "plugin"}),
		PluginTraps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_plugin_call_failures_total",
			Help: "Operator calls that failed, by kind: trap, deadline, memory_limit, bad_output, batch_failed."}, []string{"pipeline", "plugin", "kind"}),
		TransientFailures: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_transient_failures_total",
			Help: "Records blamed for a plugin failure that passed alone on a fresh instance, and were processed instead of dead-lettered."}, pl),
		CallDuration: prometheus.NewHistogramVec(prometheus.HistogramOpts{Name: "helios_plugin_call_duration_seconds",
			Help: "Duration of operator calls.", Buckets: prometheus.ExponentialBuckets(0.00005, 2, 18)}, pl),
		QueueDepth: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_queue_depth",
			Help: "Processed batches waiting for the committer."}, pl),
		QueueDepthMax: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_queue_depth_max",
			Help: "Capacity of the commit queue (processed batches waiting for the committer)."}, pl),
		BatchSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_batch_size",
			Help: "Current batch size (records) per partition."}, pp),
		Credits: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_flow_credits_available_bytes",
			Help: "Bytes that may still be in flight between reading and commit."}, pl),
		ConsumerLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_consumer_lag",
			Help: "Records between the committed position and the end of the input (log inputs)."}, pp),
		LagVelocity: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_consumer_lag_velocity",
			Help: "Change of the consumer lag per second (positive: falling behind)."}, pp),
		DLQSize: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_dlq_size",
			Help: "Entries in the dead-letter queue."}, pl),
		DLQAdded: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_dlq_added_total",
			Help: "Entries added to the dead-letter queue."}, pl),
		DLQFull: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_dlq_full",
			Help: "1 while the pipeline is paused on a full dead-letter queue."}, pl),
		DedupHits: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_dedup_hits_total",
			Help: "Input records skipped as duplicates."}, pl),
		Swaps: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_plugin_swaps_total",
			Help: "Hot swaps of the plugin, by reason: swap or rollback."}, []string{"pipeline", "reason"}),
		Watermark: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_watermark_seconds",
			Help: "The pipeline's committed event-time watermark (Unix seconds; -Inf before any record, +Inf after the end of a bounded input)."}, pl),
		WatermarkLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_watermark_lag_seconds",
			Help: "Processing time minus the partition's committed watermark, at its last commit."}, pp),
		LateRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_late_records_total",
			Help: "Records behind the watermark, by decision: accept (within the allowed lateness, processed) or drop (sent to the late output)."}, []string{"pipeline", "decision"}),
		Rebalances: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_rebalances_total",
			Help: "Consumer group partition changes of this instance, by change: assigned, revoked or lost."}, []string{"pipeline", "change"}),
		AssignedPartitions: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_assigned_partitions",
			Help: "Input partitions the consumer group has assigned to this instance."}, pl),
		RestoredRecords: prometheus.NewCounterVec(prometheus.CounterOpts{Name: "helios_state_restored_records_total",
			Help: "State changelog records applied to the data directory when a partition was assigned."}, pp),
		RestoreLag: prometheus.NewGaugeVec(prometheus.GaugeOpts{Name: "helios_state_restore_remaining_records",
			Help: "Changelog offsets left to restore before the partition is processed (0 once restored)."}, pp),
	}
	if reg != nil {
		for _, c := range m.collectors() {
			reg.MustRegister(c)
		}
	}
	return m
}

func (m *Metrics) collectors() []prometheus.Collector {
	return []prometheus.Collector{m.TxnResults, m.PrepareFailures, m.CommitDuration, m.RecordsIn, m.RecordsOut, m.RecordsFailed,
		m.PluginCalls, m.PluginTraps, m.TransientFailures, m.CallDuration, m.QueueDepth, m.QueueDepthMax, m.BatchSize, m.Credits, m.ConsumerLag, m.LagVelocity,
		m.DLQSize, m.DLQAdded, m.DLQFull, m.DedupHits, m.Swaps, m.Watermark, m.WatermarkLag, m.LateRecords,
		m.Rebalances, m.AssignedPartitions, m.RestoredRecords, m.RestoreLag}
}
