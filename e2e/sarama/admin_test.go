package sarama_e2e

import (
	"fmt"
	"testing"

	"github.com/Shopify/sarama"
)

// topicConfig is the value and source of a topic's config `name`, read with a
// DescribeConfigs v1 request sent through Sarama's Broker API. (ClusterAdmin.DescribeConfig
// and ListTopics in Sarama 1.22 always send v0, which TestAdmin checks separately.)
func topicConfig(t *testing.T, topic, name string) (string, sarama.ConfigSource) {
	t.Helper()
	controller, err := newClient(t).Controller()
	if err != nil {
		t.Fatalf("Controller: %v", err)
	}
	resp, err := controller.DescribeConfigs(&sarama.DescribeConfigsRequest{Version: 1,
		Resources: []*sarama.ConfigResource{{Type: sarama.TopicResource, Name: topic, ConfigNames: []string{name}}}})
	if err != nil {
		t.Fatalf("DescribeConfigs v1 (%s): %v", topic, err)
	}
	if len(resp.Resources) != 1 || resp.Resources[0].ErrorCode != 0 {
		t.Fatalf("DescribeConfigs v1 (%s): %+v", topic, resp.Resources)
	}
	for _, e := range resp.Resources[0].Configs {
		if e.Name == name {
			return e.Value, e.Source
		}
	}
	t.Fatalf("DescribeConfigs v1 (%s): no %s among %d entries", topic, name, len(resp.Resources[0].Configs))
	return "", 0
}

// TestAdmin walks a topic through ClusterAdmin: create (with a config), list, describe, grow,
// read and alter its config, delete records, delete it. Each step uses its own ClusterAdmin,
// so a connection the broker closes fails only that step.
func TestAdmin(t *testing.T) {
	client := newClient(t)
	topic := uniqueName(t, "")
	retention := "3600000"

	t.Run("DescribeCluster", func(t *testing.T) {
		admin := newAdmin(t)
		// Sarama 1.22 sends Metadata v0 here, which carries no controller id (it reports -1);
		// the controller comes from the client's Metadata v5 instead.
		brokers, _, err := admin.DescribeCluster()
		if err != nil {
			t.Fatalf("DescribeCluster: %v", err)
		}
		controller, err := client.Controller()
		if err != nil {
			t.Fatalf("Controller: %v", err)
		}
		if len(brokers) != 1 || brokers[0].Addr() != brokerAddr || brokers[0].ID() != controller.ID() {
			t.Fatalf("DescribeCluster: %d brokers, controller %d %s; want the one broker %s as the controller",
				len(brokers), controller.ID(), controller.Addr(), brokerAddr)
		}
	})

	t.Run("CreateTopic", func(t *testing.T) {
		admin := newAdmin(t)
		detail := &sarama.TopicDetail{NumPartitions: 2, ReplicationFactor: 1,
			ConfigEntries: map[string]*string{"retention.ms": &retention}}
		if err := admin.CreateTopic(topic, detail, false); err != nil {
			t.Fatalf("CreateTopic: %v", err)
		}
		waitFor(t, "2 partitions in metadata", func() error { return checkTopicMetadata(admin, topic, 2) })
		err := admin.CreateTopic(topic, detail, false)
		if te, ok := err.(*sarama.TopicError); !ok || te.Err != sarama.ErrTopicAlreadyExists {
			t.Fatalf("creating %s again: %v, want %v", topic, err, sarama.ErrTopicAlreadyExists)
		}
		if v, source := topicConfig(t, topic, "retention.ms"); v != retention || source != sarama.SourceTopic {
			t.Fatalf("retention.ms = %q (%v), want %q set on the topic", v, source, retention)
		}
	})

	t.Run("ListTopics", func(t *testing.T) {
		topics, err := newAdmin(t).ListTopics() // Metadata v0, then DescribeConfigs v0
		if err != nil {
			t.Fatalf("ListTopics (Metadata v0, DescribeConfigs v0): %v", err)
		}
		detail, ok := topics[topic]
		if !ok {
			t.Fatalf("ListTopics: %s not among %d topics", topic, len(topics))
		}
		if detail.NumPartitions != 2 || detail.ReplicationFactor != 1 {
			t.Fatalf("ListTopics: %d partitions, replication factor %d; want 2 and 1", detail.NumPartitions, detail.ReplicationFactor)
		}
		if v := detail.ConfigEntries["retention.ms"]; v == nil || *v != retention {
			t.Fatalf("ListTopics: non-default configs %v lack retention.ms=%s", stringMap(detail.ConfigEntries), retention)
		}
	})

	t.Run("DescribeTopics", func(t *testing.T) {
		admin := newAdmin(t)
		metas, err := admin.DescribeTopics([]string{topic})
		if err != nil || len(metas) != 1 {
			t.Fatalf("DescribeTopics: %d topics, %v", len(metas), err)
		}
		if err := checkTopicMetadata(admin, topic, 2); err != nil {
			t.Fatalf("DescribeTopics: %v", err)
		}
		for _, p := range metas[0].Partitions {
			if len(p.Replicas) != 1 || len(p.Isr) != 1 || p.Replicas[0] != p.Leader || p.Isr[0] != p.Leader {
				t.Fatalf("partition %d: leader %d, replicas %v, isr %v", p.ID, p.Leader, p.Replicas, p.Isr)
			}
		}
		missing := uniqueName(t, "missing")
		metas, err = admin.DescribeTopics([]string{missing})
		if err != nil || len(metas) != 1 || metas[0].Err != sarama.ErrUnknownTopicOrPartition {
			t.Fatalf("DescribeTopics of a missing topic: %+v, %v; want %v (and no auto-creation)", metas, err, sarama.ErrUnknownTopicOrPartition)
		}
	})

	t.Run("CreatePartitions", func(t *testing.T) {
		admin := newAdmin(t)
		if err := admin.CreatePartitions(topic, 4, nil, false); err != nil {
			t.Fatalf("CreatePartitions(4): %v", err)
		}
		waitFor(t, "4 partitions in metadata", func() error { return checkTopicMetadata(admin, topic, 4) })
		err := admin.CreatePartitions(topic, 3, nil, false)
		if te, ok := err.(*sarama.TopicPartitionError); !ok || te.Err != sarama.ErrInvalidPartitions {
			t.Fatalf("shrinking to 3 partitions: %v, want %v", err, sarama.ErrInvalidPartitions)
		}
	})

	t.Run("DescribeConfig", func(t *testing.T) {
		entries, err := newAdmin(t).DescribeConfig(sarama.ConfigResource{Type: sarama.TopicResource, Name: topic}) // DescribeConfigs v0
		if err != nil {
			t.Fatalf("DescribeConfig (DescribeConfigs v0): %v", err)
		}
		for _, e := range entries {
			if e.Name == "retention.ms" {
				if e.Value != retention || e.Default {
					t.Fatalf("DescribeConfig: retention.ms = %q (default %v), want %q set on the topic", e.Value, e.Default, retention)
				}
				return
			}
		}
		t.Fatalf("DescribeConfig: no retention.ms among %d entries", len(entries))
	})

	t.Run("AlterConfig", func(t *testing.T) {
		admin := newAdmin(t)
		altered := "7200000"
		if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": &altered}, false); err != nil {
			t.Fatalf("AlterConfig: %v", err)
		}
		if v, source := topicConfig(t, topic, "retention.ms"); v != altered || source != sarama.SourceTopic {
			t.Fatalf("retention.ms = %q (%v) after AlterConfig, want %q", v, source, altered)
		}
		validateOnly := "1000"
		if err := admin.AlterConfig(sarama.TopicResource, topic, map[string]*string{"retention.ms": &validateOnly}, true); err != nil {
			t.Fatalf("AlterConfig(validateOnly): %v", err)
		}
		if v, _ := topicConfig(t, topic, "retention.ms"); v != altered {
			t.Fatalf("retention.ms = %q after a validate-only AlterConfig, want it unchanged (%q)", v, altered)
		}
	})

	t.Run("DeleteRecords", func(t *testing.T) {
		var values []string
		for i := 0; i < 10; i++ {
			values = append(values, fmt.Sprintf("record-%d", i))
		}
		produceValues(t, topic, 1, values)
		// Sarama 1.22's DeleteRecords ignores per-partition errors, so the effect is checked
		// through ListOffsets and a fetch.
		if err := newAdmin(t).DeleteRecords(topic, map[int32]int64{1: 4}); err != nil {
			t.Fatalf("DeleteRecords: %v", err)
		}
		if start, err := client.GetOffset(topic, 1, sarama.OffsetOldest); err != nil || start != 4 {
			t.Fatalf("log start offset after DeleteRecords(before 4): %d, %v; want 4", start, err)
		}
		if end := endOffset(t, client, topic, 1); end != 10 {
			t.Fatalf("end offset %d after DeleteRecords, want 10", end)
		}
		consumer, err := sarama.NewConsumerFromClient(client)
		if err != nil {
			t.Fatalf("NewConsumerFromClient: %v", err)
		}
		defer consumer.Close()
		pc, err := consumer.ConsumePartition(topic, 1, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(oldest): %v", err)
		}
		defer pc.Close()
		for i, msg := range consumeN(t, pc, 6) {
			if msg.Offset != int64(4+i) || string(msg.Value) != values[4+i] {
				t.Fatalf("after DeleteRecords: message #%d is offset %d %q, want offset %d %q", i, msg.Offset, msg.Value, 4+i, values[4+i])
			}
		}
	})

	t.Run("DeleteTopic", func(t *testing.T) {
		admin := newAdmin(t)
		if err := admin.DeleteTopic(topic); err != nil {
			t.Fatalf("DeleteTopic: %v", err)
		}
		waitFor(t, "metadata to drop the topic", func() error {
			metas, err := admin.DescribeTopics([]string{topic})
			if err != nil {
				return err
			}
			if len(metas) != 1 || metas[0].Err != sarama.ErrUnknownTopicOrPartition {
				return fmt.Errorf("DescribeTopics: %+v", metas)
			}
			return nil
		})
		err := admin.DeleteTopic(topic)
		if err != sarama.ErrUnknownTopicOrPartition {
			t.Fatalf("deleting %s again: %v, want %v", topic, err, sarama.ErrUnknownTopicOrPartition)
		}
	})
}

func stringMap(m map[string]*string) map[string]string {
	out := map[string]string{}
	for k, v := range m {
		if v != nil {
			out[k] = *v
		}
	}
	return out
}
