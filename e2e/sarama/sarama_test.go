// Package sarama_e2e runs Sarama, the pure-Go Kafka client, against a real `ironlog broker`.
//
// The client is Debian bookworm's golang-github-shopify-sarama-dev (Sarama 1.22.1, built with
// Go 1.19 in GOPATH mode) speaking the Kafka 2.1 protocol (config.Version = V2_1_0_0):
//
//   - admin_test.go     ClusterAdmin: topics, partitions, configs, DeleteRecords, cluster
//   - produce_test.go   SyncProducer (one message per request) and batching AsyncProducer,
//     each with every codec (none, gzip, snappy, lz4, zstd), read back and compared exactly;
//     a too-large message is refused with ErrMessageSizeTooLarge
//   - consume_test.go   partition consumer from OffsetOldest, a middle offset and OffsetNewest
//   - group_test.go     consumer groups: two members share a topic, commits survive the group,
//     and the admin view of the group (ListConsumerGroups, DescribeConsumerGroups, offsets);
//     OffsetManager commits with both OffsetCommit versions Sarama 1.22 sends (v1 and v2)
//
// Sarama 1.22 doesn't negotiate versions from ApiVersions: the Version setting picks them, and
// a few calls always send old ones (DescribeConfigs v0 from ClusterAdmin.ListTopics and
// DescribeConfig, OffsetCommit v1 unless Consumer.Offsets.Retention is set). Kafka 4 no longer
// serves those; the broker does (broker/protocol/src/legacy.rs). The tests call them out by
// name in their failure messages.
//
// TestMain starts ONE broker for the whole suite (free loopback ports, a temporary data
// directory) and stops it with SIGTERM at the end; if a test failed, or the broker didn't exit
// cleanly, its log is printed. Every test uses its own topics and groups.
//
// Run it with e2e/sarama/run.sh (installs Go and Sarama if missing; extra arguments go to
// `go test`, e.g. `-run TestAdmin`). Env: IRONLOG_BIN (the broker binary, default
// <repo>/target/debug/ironlog), IRONLOG_LOG_LEVEL (the broker's log filter, e.g. debug),
// SARAMA_DEBUG=1 (Sarama's own log on stderr).
package sarama_e2e

import (
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"log"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/Shopify/sarama"
)

const (
	brokerStartTimeout = 20 * time.Second
	brokerStopTimeout  = 30 * time.Second
	// How long a test waits for a condition (messages arriving, metadata settling) at most.
	waitTimeout = 30 * time.Second
)

// brokerAddr is the bootstrap address of the suite's broker, set by TestMain.
var brokerAddr string

func TestMain(m *testing.M) {
	os.Exit(runSuite(m))
}

func runSuite(m *testing.M) int {
	if os.Getenv("SARAMA_DEBUG") != "" {
		sarama.Logger = log.New(os.Stderr, "[sarama] ", log.LstdFlags|log.Lmicroseconds)
	}
	binary := os.Getenv("IRONLOG_BIN")
	if binary == "" {
		fmt.Fprintln(os.Stderr, "IRONLOG_BIN is not set (run the suite with e2e/sarama/run.sh)")
		return 2
	}
	workdir, err := os.MkdirTemp("", "ironlog-sarama-")
	if err != nil {
		fmt.Fprintln(os.Stderr, "temp dir:", err)
		return 2
	}
	defer os.RemoveAll(workdir)

	ports, err := freePorts(2)
	if err != nil {
		fmt.Fprintln(os.Stderr, "free ports:", err)
		return 2
	}
	brokerAddr = fmt.Sprintf("127.0.0.1:%d", ports[0])
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", ports[1])
	logPath := filepath.Join(workdir, "broker.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "broker log:", err)
		return 2
	}
	defer logFile.Close()

	cmd := exec.Command(binary, "broker",
		"--listen", brokerAddr,
		"--metrics-listen", metricsAddr,
		"--data-dir", filepath.Join(workdir, "data"))
	cmd.Stdout, cmd.Stderr = logFile, logFile
	cmd.Env = append(os.Environ(), "NO_COLOR=1")
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "starting %s: %v\n", binary, err)
		return 2
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	printLog := func() {
		data, _ := os.ReadFile(logPath)
		fmt.Printf("\n===== broker %s log (%s) =====\n%s===== end of broker log =====\n", brokerAddr, logPath, data)
	}
	fmt.Printf("broker: %s broker --listen %s --metrics-listen %s (data and log in %s)\n",
		binary, brokerAddr, metricsAddr, workdir)

	if err := waitReady(metricsAddr, exited); err != nil {
		fmt.Fprintln(os.Stderr, "broker did not become ready:", err)
		_ = cmd.Process.Kill()
		printLog()
		return 1
	}

	code := m.Run()

	// Stop the broker; it must exit 0 on SIGTERM within brokerStopTimeout.
	stopProblem := ""
	select {
	case err := <-exited:
		stopProblem = fmt.Sprintf("broker exited during the tests: %v", err)
	default:
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case err := <-exited:
			if err != nil {
				stopProblem = fmt.Sprintf("broker did not exit cleanly on SIGTERM: %v", err)
			}
		case <-time.After(brokerStopTimeout):
			_ = cmd.Process.Kill()
			stopProblem = fmt.Sprintf("broker did not exit within %s of SIGTERM", brokerStopTimeout)
		}
	}
	if stopProblem != "" {
		fmt.Println("FAIL:", stopProblem)
		code = 1
	}
	if code != 0 {
		printLog()
	}
	return code
}

// freePorts returns n distinct loopback ports that were free a moment ago.
func freePorts(n int) ([]int, error) {
	var ports []int
	for i := 0; i < n; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			return nil, err
		}
		defer l.Close()
		ports = append(ports, l.Addr().(*net.TCPAddr).Port)
	}
	return ports, nil
}

// waitReady polls GET /health until it answers 200 and then until a Sarama client can fetch
// metadata, failing early if the broker process exits.
func waitReady(metricsAddr string, exited <-chan error) error {
	deadline := time.Now().Add(brokerStartTimeout)
	var last error
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			return fmt.Errorf("broker exited while starting: %v", err)
		default:
		}
		last = probe(metricsAddr)
		if last == nil {
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("not ready after %s: %v", brokerStartTimeout, last)
}

func probe(metricsAddr string) error {
	httpClient := http.Client{Timeout: time.Second}
	resp, err := httpClient.Get("http://" + metricsAddr + "/health")
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("/health: %s", resp.Status)
	}
	conf := newConfig()
	conf.Metadata.Retry.Max = 0
	client, err := sarama.NewClient([]string{brokerAddr}, conf)
	if err != nil {
		return err
	}
	defer client.Close()
	if len(client.Brokers()) != 1 {
		return fmt.Errorf("metadata lists %d brokers, want 1", len(client.Brokers()))
	}
	return nil
}

// ---- helpers shared by the tests ----

// newConfig is the base client configuration of every test: the Kafka 2.1 protocol.
func newConfig() *sarama.Config {
	conf := sarama.NewConfig()
	conf.Version = sarama.V2_1_0_0
	conf.ClientID = "ironlog-e2e-sarama"
	conf.Net.DialTimeout = 10 * time.Second
	conf.Net.ReadTimeout = 20 * time.Second
	conf.Net.WriteTimeout = 10 * time.Second
	conf.Metadata.Retry.Max = 5
	conf.Metadata.Retry.Backoff = 100 * time.Millisecond
	conf.Admin.Timeout = 10 * time.Second
	conf.Consumer.Return.Errors = true
	conf.Consumer.MaxWaitTime = 100 * time.Millisecond
	return conf
}

func newClient(t *testing.T) sarama.Client {
	t.Helper()
	client, err := sarama.NewClient([]string{brokerAddr}, newConfig())
	if err != nil {
		t.Fatalf("NewClient: %v", err)
	}
	t.Cleanup(func() { client.Close() })
	return client
}

func newAdmin(t *testing.T) sarama.ClusterAdmin {
	t.Helper()
	admin, err := sarama.NewClusterAdmin([]string{brokerAddr}, newConfig())
	if err != nil {
		t.Fatalf("NewClusterAdmin: %v", err)
	}
	t.Cleanup(func() { admin.Close() })
	return admin
}

var unsafeNameChars = regexp.MustCompile(`[^a-zA-Z0-9._-]+`)

// uniqueName is a topic or group name derived from the test's name, unique to this run.
func uniqueName(t *testing.T, suffix string) string {
	base := strings.Trim(unsafeNameChars.ReplaceAllString(t.Name()+"-"+suffix, "-"), "-")
	if len(base) > 80 {
		base = base[:80]
	}
	return base + "-" + randomHex(4)
}

func randomHex(nBytes int) string {
	b := make([]byte, nBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return hex.EncodeToString(b)
}

// createTopic creates a topic through ClusterAdmin and waits until metadata lists all its
// partitions with a leader.
func createTopic(t *testing.T, name string, partitions int32, configs map[string]string) {
	t.Helper()
	admin := newAdmin(t)
	entries := map[string]*string{}
	for k, v := range configs {
		v := v
		entries[k] = &v
	}
	detail := &sarama.TopicDetail{NumPartitions: partitions, ReplicationFactor: 1, ConfigEntries: entries}
	if err := admin.CreateTopic(name, detail, false); err != nil {
		t.Fatalf("CreateTopic %s: %v", name, err)
	}
	waitFor(t, fmt.Sprintf("topic %s with %d partitions in metadata", name, partitions), func() error {
		return checkTopicMetadata(admin, name, partitions)
	})
}

// checkTopicMetadata returns nil when DescribeTopics lists `name` with exactly `partitions`
// partitions 0..partitions-1, each led by a broker.
func checkTopicMetadata(admin sarama.ClusterAdmin, name string, partitions int32) error {
	metas, err := admin.DescribeTopics([]string{name})
	if err != nil {
		return err
	}
	if len(metas) != 1 || metas[0].Name != name {
		return fmt.Errorf("DescribeTopics returned %d topics", len(metas))
	}
	meta := metas[0]
	if meta.Err != sarama.ErrNoError {
		return fmt.Errorf("topic error %v", meta.Err)
	}
	if int32(len(meta.Partitions)) != partitions {
		return fmt.Errorf("%d partitions, want %d", len(meta.Partitions), partitions)
	}
	seen := map[int32]bool{}
	for _, p := range meta.Partitions {
		if p.Err != sarama.ErrNoError || p.Leader < 0 {
			return fmt.Errorf("partition %d: error %v, leader %d", p.ID, p.Err, p.Leader)
		}
		seen[p.ID] = true
	}
	for p := int32(0); p < partitions; p++ {
		if !seen[p] {
			return fmt.Errorf("partition %d missing", p)
		}
	}
	return nil
}

// waitFor polls cond until it returns nil, failing the test with cond's last error after
// waitTimeout.
func waitFor(t *testing.T, what string, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(waitTimeout)
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out after %s waiting for %s: %v", waitTimeout, what, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// consumeN reads exactly n messages from pc, failing on a consumer error or when they don't
// all arrive within waitTimeout.
func consumeN(t *testing.T, pc sarama.PartitionConsumer, n int) []*sarama.ConsumerMessage {
	t.Helper()
	msgs := make([]*sarama.ConsumerMessage, 0, n)
	timeout := time.After(waitTimeout)
	for len(msgs) < n {
		select {
		case msg := <-pc.Messages():
			msgs = append(msgs, msg)
		case err := <-pc.Errors():
			t.Fatalf("consumer error after %d of %d messages: %v", len(msgs), n, err)
		case <-timeout:
			t.Fatalf("received %d of %d messages within %s", len(msgs), n, waitTimeout)
		}
	}
	return msgs
}

// endOffset is the partition's high watermark as ListOffsets reports it.
func endOffset(t *testing.T, client sarama.Client, topic string, partition int32) int64 {
	t.Helper()
	offset, err := client.GetOffset(topic, partition, sarama.OffsetNewest)
	if err != nil {
		t.Fatalf("GetOffset(%s/%d, newest): %v", topic, partition, err)
	}
	return offset
}

// produceValues sends values to one partition of topic in a single SendMessages call (Sarama
// groups them into batches) and returns nothing; any failure fails the test.
func produceValues(t *testing.T, topic string, partition int32, values []string) {
	t.Helper()
	conf := newConfig()
	conf.Producer.RequiredAcks = sarama.WaitForAll
	conf.Producer.Return.Successes = true
	conf.Producer.Partitioner = sarama.NewManualPartitioner
	producer, err := sarama.NewSyncProducer([]string{brokerAddr}, conf)
	if err != nil {
		t.Fatalf("NewSyncProducer: %v", err)
	}
	defer producer.Close()
	msgs := make([]*sarama.ProducerMessage, len(values))
	for i, v := range values {
		msgs[i] = &sarama.ProducerMessage{Topic: topic, Partition: partition, Value: sarama.StringEncoder(v)}
	}
	if err := producer.SendMessages(msgs); err != nil {
		t.Fatalf("SendMessages of %d messages to %s/%d: %v", len(values), topic, partition, describeProducerErrors(err))
	}
}

// describeProducerErrors spells out a ProducerErrors (whose Error() only counts them).
func describeProducerErrors(err error) string {
	perrs, ok := err.(sarama.ProducerErrors)
	if !ok {
		return err.Error()
	}
	counts := map[string]int{}
	for _, e := range perrs {
		counts[e.Err.Error()]++
	}
	return fmt.Sprintf("%d failed: %v", len(perrs), counts)
}
