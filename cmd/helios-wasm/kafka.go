package main

import (
	"errors"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/heliosdb/helios-wasm/runtime"
)

// kafkaFlags configure the Kafka cluster of kafka:TOPIC inputs and outputs.
func kafkaFlags() []cli.Flag {
	const cat = "Kafka"
	return []cli.Flag{
		&cli.StringFlag{Name: "kafka-brokers", Category: cat, Usage: "seed brokers of kafka:TOPIC inputs and outputs, host:port, comma-separated", EnvVars: []string{"HELIOS_KAFKA_BROKERS"}},
		&cli.BoolFlag{Name: "kafka-tls", Category: cat, Usage: "connect with TLS (implied by --kafka-tls-ca or --kafka-tls-cert)", EnvVars: []string{"HELIOS_KAFKA_TLS"}},
		&cli.StringFlag{Name: "kafka-tls-ca", Category: cat, Usage: "PEM file of the CAs to trust (default: the system's)", EnvVars: []string{"HELIOS_KAFKA_TLS_CA"}},
		&cli.StringFlag{Name: "kafka-tls-cert", Category: cat, Usage: "PEM client certificate (with --kafka-tls-key)", EnvVars: []string{"HELIOS_KAFKA_TLS_CERT"}},
		&cli.StringFlag{Name: "kafka-tls-key", Category: cat, Usage: "PEM client key (with --kafka-tls-cert)", EnvVars: []string{"HELIOS_KAFKA_TLS_KEY"}},
		&cli.StringFlag{Name: "kafka-sasl-mechanism", Category: cat, Usage: "plain, scram-sha-256 or scram-sha-512 (default: no SASL)", EnvVars: []string{"HELIOS_KAFKA_SASL_MECHANISM"}},
		&cli.StringFlag{Name: "kafka-sasl-user", Category: cat, Usage: "SASL user", EnvVars: []string{"HELIOS_KAFKA_SASL_USER"}},
		&cli.StringFlag{Name: "kafka-sasl-password", Category: cat, Usage: "SASL password (prefer the environment variable)", EnvVars: []string{"HELIOS_KAFKA_SASL_PASSWORD"}},
		&cli.BoolFlag{Name: "kafka-create-topics", Category: cat, Usage: "create a missing kafka: output topic (default: a missing topic is an error that names it)", EnvVars: []string{"HELIOS_KAFKA_CREATE_TOPICS"}},
		&cli.IntFlag{Name: "kafka-partitions", Category: cat, Usage: "partitions of a topic --kafka-create-topics creates (default: the input's partition count)", EnvVars: []string{"HELIOS_KAFKA_PARTITIONS"}},
		&cli.StringFlag{Name: "kafka-group", Category: cat, Usage: "consumer group of a kafka: input: with a kafka: output, the instances of the pipeline share the input's partitions through it; " +
			"with another output, its offsets are reported to it for Kafka's tools (default: the pipeline name)", EnvVars: []string{"HELIOS_KAFKA_GROUP"}},
		&cli.StringFlag{Name: "kafka-instance-id", Category: cat, Usage: "this instance's id among the instances of a kafka: -> kafka: pipeline, unique and stable across restarts " +
			"(a StatefulSet pod name): static group membership and the transactional id (default: an id kept in the data directory)", EnvVars: []string{"HELIOS_KAFKA_INSTANCE_ID"}},
		&cli.DurationFlag{Name: "kafka-session-timeout", Category: cat, Value: 10 * time.Second, Usage: "how long the consumer group waits for a silent instance before moving its partitions", EnvVars: []string{"HELIOS_KAFKA_SESSION_TIMEOUT"}},
	}
}

// kafkaConfig reads the Kafka flags; nil when no brokers are given.
func kafkaConfig(c *cli.Context) *runtime.KafkaConfig {
	brokers := c.String("kafka-brokers")
	if brokers == "" {
		return nil
	}
	var list []string
	for _, b := range strings.Split(brokers, ",") {
		if b = strings.TrimSpace(b); b != "" {
			list = append(list, b)
		}
	}
	return &runtime.KafkaConfig{
		Brokers: list, TLS: c.Bool("kafka-tls"), TLSCA: c.String("kafka-tls-ca"), TLSCert: c.String("kafka-tls-cert"), TLSKey: c.String("kafka-tls-key"),
		SASLMechanism: c.String("kafka-sasl-mechanism"), SASLUser: c.String("kafka-sasl-user"), SASLPassword: c.String("kafka-sasl-password"),
		Group: c.String("kafka-group"), CreateTopics: c.Bool("kafka-create-topics"), Partitions: int32(c.Int("kafka-partitions")),
		InstanceID: c.String("kafka-instance-id"), SessionTimeout: c.Duration("kafka-session-timeout"),
	}
}

// sourceError classifies an error opening an input or output: an
// unreachable or refusing cluster is an operational failure (exit 1), the
// rest a mistake in the command line (exit 2).
func sourceError(err error) error {
	if errors.Is(err, runtime.ErrKafkaUnreachable) || errors.Is(err, runtime.ErrKafkaAuth) {
		return err
	}
	return usageError{err}
}
