package localkafka

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// writeConfig writes node n's server.properties (listeners, KRaft voters,
// replication sized to the cluster, quick group rebalances) and its log4j2
// configuration (the broker logs to broker.log in its folder).
func (c *Cluster) writeConfig(n *node) error {
	if err := os.MkdirAll(n.dir, 0o755); err != nil {
		return err
	}
	var voters []string
	for _, o := range c.nodes {
		voters = append(voters, fmt.Sprintf("%d@127.0.0.1:%d", o.id, o.ctrlPort))
	}
	// Replication sized to the cluster: with 3 nodes or more, topics
	// (internal ones too) have 3 replicas and an acks=all write needs 2 of
	// them, so one node can be down without stopping writes or losing any.
	rf := min(len(c.nodes), 3)
	minISR := 1
	if rf >= 3 {
		minISR = 2
	}
	listeners := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d,CONTROLLER://127.0.0.1:%d", n.port, n.ctrlPort)
	advertised := fmt.Sprintf("PLAINTEXT://127.0.0.1:%d", n.port)
	protoMap := "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT"
	var sasl string
	if n.saslPort != 0 {
		listeners += fmt.Sprintf(",SASL_PLAINTEXT://127.0.0.1:%d", n.saslPort)
		advertised += fmt.Sprintf(",SASL_PLAINTEXT://127.0.0.1:%d", n.saslPort)
		protoMap += ",SASL_PLAINTEXT:SASL_PLAINTEXT"
		var users strings.Builder
		for u, p := range c.opts.SASLUsers {
			fmt.Fprintf(&users, " user_%s=%q", u, p)
		}
		sasl = "sasl.enabled.mechanisms=PLAIN\n" +
			"listener.name.sasl_plaintext.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required" + users.String() + ";\n"
	}
	props := fmt.Sprintf(`process.roles=broker,controller
node.id=%d
controller.quorum.voters=%s
listeners=%s
advertised.listeners=%s
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
listener.security.protocol.map=%s
log.dirs=%s
auto.create.topics.enable=false
num.partitions=1
default.replication.factor=%d
min.insync.replicas=%d
offsets.topic.replication.factor=%d
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=%d
transaction.state.log.min.isr=%d
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
num.network.threads=2
num.io.threads=2
%s`, n.id, strings.Join(voters, ","), listeners, advertised, protoMap, filepath.Join(n.dir, "data"), rf, minISR, rf, rf, minISR, sasl)
	n.propsPath = filepath.Join(n.dir, "server.properties")
	if err := os.WriteFile(n.propsPath, []byte(props), 0o644); err != nil {
		return err
	}
	log4j := `status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = ` + filepath.Join(n.dir, "broker.log") + `
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = info
rootLogger.appenderRef.file.ref = file
logger.kafka.name = kafka
logger.kafka.level = info
logger.org.name = org.apache.kafka
logger.org.level = warn
`
	return os.WriteFile(filepath.Join(n.dir, "log4j2.properties"), []byte(log4j), 0o644)
}
