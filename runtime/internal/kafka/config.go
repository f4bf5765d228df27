// Package kafka connects pipelines to Apache Kafka (or any broker speaking
// its protocol, such as Redpanda) through franz-go: client configuration
// (brokers, TLS, SASL), a start-up check that turns the client's silent
// retries into clear errors, and topic checks.
package kafka

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/sasl/plain"
	"github.com/twmb/franz-go/pkg/sasl/scram"
)

// SASL mechanisms.
const (
	SASLPlain       = "plain"
	SASLSCRAMSHA256 = "scram-sha-256"
	SASLSCRAMSHA512 = "scram-sha-512"
)

// Config is how to reach a Kafka cluster. Brokers is required; every other
// field is optional.
type Config struct {
	// Brokers are the seed brokers, host:port each.
	Brokers []string
	// TLS turns on TLS. TLSCA is a PEM file of the CAs to trust (default:
	// the system's); TLSCert and TLSKey a client certificate, both or
	// neither. Setting any of the three implies TLS.
	TLS                    bool
	TLSCA, TLSCert, TLSKey string
	// SASLMechanism is "" (no SASL), "plain", "scram-sha-256" or
	// "scram-sha-512", with SASLUser and SASLPassword.
	SASLMechanism          string
	SASLUser, SASLPassword string
	// ConnectTimeout bounds the start-up check (Connect). Default 10s.
	ConnectTimeout time.Duration
	// ClientID names the client in the brokers' logs and quotas. Default
	// "helios-wasm".
	ClientID string
	// Group is a kafka: input's consumer group. With a kafka: output the
	// pipeline's instances share the input's partitions through it, and
	// the offsets committed in its Kafka transactions are the truth. With
	// another output the committed offsets are reported to it (advisory,
	// for Kafka's tools: a restart resumes from the data directory).
	// Default: the pipeline's name.
	Group string
	// CreateTopics creates a missing output topic with Partitions
	// partitions (default: the input's partition count) and the brokers'
	// default replication factor. Default false: a missing topic is an
	// error (ErrTopicMissing) that names it.
	CreateTopics bool
	Partitions   int32
	// InstanceID names this instance of a pipeline whose instances share
	// a kafka: input through the consumer group (a kafka: output): its
	// static group membership (KIP-345: a restart within SessionTimeout
	// takes its partitions back without a rebalance) and its
	// transactional id "helios-wasm:PIPELINE:INSTANCE". It must be unique
	// among the pipeline's instances and stable across restarts (a
	// StatefulSet pod's name). Default: an id made up on the first run and
	// kept in the data directory.
	InstanceID string
	// SessionTimeout is how long the group waits for a silent instance
	// before moving its partitions. Default 10s.
	SessionTimeout time.Duration
}

// validate fills defaults and reports every problem at once.
func (c *Config) validate() error {
	var errs []error
	if len(c.Brokers) == 0 {
		errs = append(errs, errors.New("kafka: no brokers given"))
	}
	for _, b := range c.Brokers {
		if b = strings.TrimSpace(b); b == "" || !strings.Contains(b, ":") {
			errs = append(errs, fmt.Errorf("kafka: broker %q: want host:port", b))
		}
	}
	switch c.SASLMechanism {
	case "":
		if c.SASLUser != "" || c.SASLPassword != "" {
			errs = append(errs, errors.New("kafka: a SASL user or password is set but no SASL mechanism"))
		}
	case SASLPlain, SASLSCRAMSHA256, SASLSCRAMSHA512:
		if c.SASLUser == "" {
			errs = append(errs, fmt.Errorf("kafka: SASL mechanism %s needs a user", c.SASLMechanism))
		}
	default:
		errs = append(errs, fmt.Errorf("kafka: SASL mechanism %q: want plain, scram-sha-256 or scram-sha-512", c.SASLMechanism))
	}
	if (c.TLSCert == "") != (c.TLSKey == "") {
		errs = append(errs, errors.New("kafka: a TLS client certificate needs both the certificate and the key"))
	}
	if c.TLSCA != "" || c.TLSCert != "" {
		c.TLS = true
	}
	if c.ConnectTimeout == 0 {
		c.ConnectTimeout = 10 * time.Second
	}
	if c.ConnectTimeout < 0 {
		errs = append(errs, fmt.Errorf("kafka: connect timeout %s is negative", c.ConnectTimeout))
	}
	if c.ClientID == "" {
		c.ClientID = "helios-wasm"
	}
	return errors.Join(errs...)
}

// clientOpts turns a validated Config into franz-go options.
func (c *Config) clientOpts() ([]kgo.Opt, error) {
	opts := []kgo.Opt{kgo.SeedBrokers(c.Brokers...), kgo.ClientID(c.ClientID)}
	if c.TLS {
		tc, err := c.tlsConfig()
		if err != nil {
			return nil, err
		}
		opts = append(opts, kgo.DialTLSConfig(tc))
	}
	switch c.SASLMechanism {
	case SASLPlain:
		opts = append(opts, kgo.SASL(plain.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsMechanism()))
	case SASLSCRAMSHA256:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha256Mechanism()))
	case SASLSCRAMSHA512:
		opts = append(opts, kgo.SASL(scram.Auth{User: c.SASLUser, Pass: c.SASLPassword}.AsSha512Mechanism()))
	}
	return opts, nil
}

func (c *Config) tlsConfig() (*tls.Config, error) {
	tc := &tls.Config{MinVersion: tls.VersionTLS12}
	if c.TLSCA != "" {
		pem, err := os.ReadFile(c.TLSCA)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS CA: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("kafka: TLS CA %s holds no PEM certificate", c.TLSCA)
		}
		tc.RootCAs = pool
	}
	if c.TLSCert != "" {
		cert, err := tls.LoadX509KeyPair(c.TLSCert, c.TLSKey)
		if err != nil {
			return nil, fmt.Errorf("kafka: TLS client certificate: %w", err)
		}
		tc.Certificates = []tls.Certificate{cert}
	}
	return tc, nil
}
