package kafka

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/heliosdb/helios-wasm/internal/kafkatest"
)

// The package's clients start goroutines (franz-go's): each must be gone
// when its test ends.
func TestMain(m *testing.M) { goleak.VerifyTestMain(kafkatest.Wrap(m)) }

func TestConfigReportsEveryProblem(t *testing.T) {
	cfg := Config{Brokers: []string{"nohostport"}, SASLMechanism: "gssapi", TLSCert: "c.pem", ConnectTimeout: -time.Second}
	err := cfg.validate()
	for _, want := range []string{`broker "nohostport"`, `mechanism "gssapi"`, "both the certificate and the key", "negative"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("validate() = %v, want it to mention %q", err, want)
		}
	}
	if err := (&Config{}).validate(); err == nil || !strings.Contains(err.Error(), "no brokers") {
		t.Errorf("empty config: %v", err)
	}
}

// closedAddr is a loopback address nothing listens on.
func closedAddr(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	return addr
}

func TestConnect(t *testing.T) {
	plainCluster := kafkatest.Shared(t)
	sasl := kafkatest.Start(t, kafkatest.Options{SASLUsers: map[string]string{"helios": "s3cret"}})
	dead := closedAddr(t)
	for _, tc := range []struct {
		name    string
		cfg     Config
		wantErr error
		mention string
	}{
		{"plain", Config{Brokers: plainCluster.Addrs()}, nil, ""},
		{"unreachable", Config{Brokers: []string{dead}, ConnectTimeout: 2 * time.Second}, ErrUnreachable, dead},
		{"sasl ok", Config{Brokers: sasl.SASLAddrs(), SASLMechanism: SASLPlain, SASLUser: "helios", SASLPassword: "s3cret"}, nil, ""},
		{"sasl wrong password", Config{Brokers: sasl.SASLAddrs(), SASLMechanism: SASLPlain, SASLUser: "helios", SASLPassword: "nope"}, ErrAuth, `user "helios"`},
		{"sasl listener without sasl", Config{Brokers: sasl.SASLAddrs(), ConnectTimeout: 3 * time.Second}, ErrUnreachable, "SASL"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			start := time.Now()
			cl, err := Connect(context.Background(), tc.cfg)
			if cl != nil {
				cl.Close()
			}
			if !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
				t.Fatalf("Connect: %v, want %v", err, tc.wantErr)
			}
			t.Logf("Connect: %v (%s)", err, time.Since(start).Round(time.Millisecond))
			if err != nil && !strings.Contains(err.Error(), tc.mention) {
				t.Fatalf("error %q does not mention %q", err, tc.mention)
			}
			if limit := tc.cfg.ConnectTimeout + 5*time.Second; tc.cfg.ConnectTimeout > 0 && time.Since(start) > limit {
				t.Fatalf("took %s, more than %s", time.Since(start), limit)
			}
		})
	}
}

func TestEnsureTopic(t *testing.T) {
	c := kafkatest.Shared(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cl, err := Connect(ctx, Config{Brokers: c.Addrs()})
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	existing := c.Topic(t, 3)
	missing := fmt.Sprintf("missing-%d", time.Now().UnixNano())
	created := fmt.Sprintf("created-%d", time.Now().UnixNano())
	for _, tc := range []struct {
		topic   string
		opts    TopicOptions
		want    int32
		wantErr error
	}{
		{existing, TopicOptions{}, 3, nil},
		{missing, TopicOptions{}, 0, ErrTopicMissing},
		{created, TopicOptions{Create: true, Partitions: 4}, 4, nil},
		{created, TopicOptions{Create: true, Partitions: 8}, 4, nil}, // exists now: left as it is
	} {
		n, err := EnsureTopic(ctx, cl, tc.topic, tc.opts)
		if n != tc.want || !errors.Is(err, tc.wantErr) || (tc.wantErr == nil) != (err == nil) {
			t.Errorf("EnsureTopic(%s, %+v) = %d, %v; want %d, %v", tc.topic, tc.opts, n, err, tc.want, tc.wantErr)
		}
		if err != nil && !strings.Contains(err.Error(), tc.topic) {
			t.Errorf("error %q does not name the topic", err)
		}
	}
}
