package sarama_e2e

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/Shopify/sarama"
)

// delivery is one message handed to a group member's ConsumeClaim.
type delivery struct {
	member    string
	partition int32
	offset    int64
	value     string
}

// memberSession is what a member's latest Setup saw.
type memberSession struct {
	generation int32
	claims     []int32
}

// groupRecorder collects what the members of a consumer group saw, across goroutines.
type groupRecorder struct {
	mu         sync.Mutex
	topic      string
	deliveries []delivery
	sessions   map[string]memberSession
	errs       []error
}

func newGroupRecorder(topic string) *groupRecorder {
	return &groupRecorder{topic: topic, sessions: map[string]memberSession{}}
}

func (r *groupRecorder) addError(err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.errs = append(r.errs, err)
}

func (r *groupRecorder) snapshot() ([]delivery, map[string]memberSession, []error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	sessions := map[string]memberSession{}
	for k, v := range r.sessions {
		sessions[k] = v
	}
	return append([]delivery(nil), r.deliveries...), sessions, append([]error(nil), r.errs...)
}

// groupHandler is one member's sarama.ConsumerGroupHandler: it records and marks every
// message it is given (Sarama commits marked offsets every Offsets.CommitInterval and when
// the session ends).
type groupHandler struct {
	member string
	rec    *groupRecorder
}

func (h groupHandler) Setup(sess sarama.ConsumerGroupSession) error {
	claims := append([]int32(nil), sess.Claims()[h.rec.topic]...)
	h.rec.mu.Lock()
	h.rec.sessions[h.member] = memberSession{sess.GenerationID(), claims}
	h.rec.mu.Unlock()
	return nil
}

func (h groupHandler) Cleanup(sarama.ConsumerGroupSession) error { return nil }

func (h groupHandler) ConsumeClaim(sess sarama.ConsumerGroupSession, claim sarama.ConsumerGroupClaim) error {
	for msg := range claim.Messages() {
		h.rec.mu.Lock()
		h.rec.deliveries = append(h.rec.deliveries, delivery{h.member, msg.Partition, msg.Offset, string(msg.Value)})
		h.rec.mu.Unlock()
		sess.MarkMessage(msg, "")
	}
	return nil
}

// groupMember is a running sarama.ConsumerGroup member consuming one topic.
type groupMember struct {
	group  sarama.ConsumerGroup
	cancel context.CancelFunc
	done   chan struct{}
	rec    *groupRecorder
}

func groupConfig() *sarama.Config {
	conf := newConfig()
	conf.Consumer.Offsets.Initial = sarama.OffsetOldest
	// Offsets.Retention stays at its default (0), so Sarama 1.22 commits with OffsetCommit v1,
	// which the broker reads as v2 (broker/protocol/src/legacy.rs); TestOffsetManagerCommit
	// covers v1 and v2 on their own.
	conf.Consumer.Group.Session.Timeout = 10 * time.Second
	conf.Consumer.Group.Heartbeat.Interval = 500 * time.Millisecond
	conf.Consumer.Group.Rebalance.Retry.Backoff = 500 * time.Millisecond
	return conf
}

// startMember joins groupID and consumes topic until stop is called; Consume is called in a
// loop, as Sarama requires after every rebalance.
func startMember(t *testing.T, groupID, name, topic string, rec *groupRecorder) *groupMember {
	t.Helper()
	group, err := sarama.NewConsumerGroup([]string{brokerAddr}, groupID, groupConfig())
	if err != nil {
		t.Fatalf("NewConsumerGroup(%s) for %s: %v", groupID, name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &groupMember{group: group, cancel: cancel, done: make(chan struct{}), rec: rec}
	go func() {
		for err := range group.Errors() {
			rec.addError(fmt.Errorf("%s: %v", name, err))
		}
	}()
	go func() {
		defer close(m.done)
		for ctx.Err() == nil {
			if err := group.Consume(ctx, []string{topic}, groupHandler{name, rec}); err != nil {
				rec.addError(fmt.Errorf("%s: Consume: %v", name, err))
				return
			}
		}
	}()
	t.Cleanup(m.stop)
	return m
}

// stop ends the member's session (committing its marked offsets) and leaves the group.
func (m *groupMember) stop() {
	m.cancel()
	<-m.done
	if err := m.group.Close(); err != nil {
		m.rec.addError(fmt.Errorf("Close: %v", err))
	}
}

// produceToPartitions writes perPartition values named <prefix>-p<partition>-<i> to each of
// the partitions and returns them all.
func produceToPartitions(t *testing.T, topic string, partitions int32, perPartition int, prefix string) map[string]bool {
	t.Helper()
	all := map[string]bool{}
	for p := int32(0); p < partitions; p++ {
		var values []string
		for i := 0; i < perPartition; i++ {
			v := fmt.Sprintf("%s-p%d-%03d", prefix, p, i)
			values = append(values, v)
			all[v] = true
		}
		produceValues(t, topic, p, values)
	}
	return all
}

// waitForDeliveries waits until the recorder holds n deliveries, failing early on a group
// error.
func waitForDeliveries(t *testing.T, rec *groupRecorder, n int) []delivery {
	t.Helper()
	var got []delivery
	waitFor(t, fmt.Sprintf("%d deliveries", n), func() error {
		deliveries, _, errs := rec.snapshot()
		if len(errs) > 0 {
			t.Fatalf("consumer group errors: %v", errs)
		}
		got = deliveries
		if len(deliveries) < n {
			return fmt.Errorf("%d deliveries so far", len(deliveries))
		}
		return nil
	})
	return got
}

// checkCommitted asserts that the group's committed offset of every partition is the
// partition's end offset.
func checkCommitted(t *testing.T, admin sarama.ClusterAdmin, client sarama.Client, groupID, topic string, partitions int32) {
	t.Helper()
	var ps []int32
	for p := int32(0); p < partitions; p++ {
		ps = append(ps, p)
	}
	resp, err := admin.ListConsumerGroupOffsets(groupID, map[string][]int32{topic: ps})
	if err != nil {
		t.Fatalf("ListConsumerGroupOffsets: %v", err)
	}
	for _, p := range ps {
		block := resp.GetBlock(topic, p)
		end := endOffset(t, client, topic, p)
		if block == nil || block.Err != sarama.ErrNoError || block.Offset != end {
			t.Fatalf("partition %d: committed %+v, want offset %d (the end offset)", p, block, end)
		}
	}
}

// TestConsumerGroup: two members share a 3-partition topic and consume every message exactly
// once between them; the admin view of the running and the stopped group is checked; the
// committed offsets survive the group, so a new member with the same group id consumes only
// what was produced after.
func TestConsumerGroup(t *testing.T) {
	const partitions = 3
	topic := uniqueName(t, "topic")
	groupID := uniqueName(t, "group")
	createTopic(t, topic, partitions, nil)
	admin := newAdmin(t)
	client := newClient(t)

	// Half the messages exist before the group does (Offsets.Initial = OffsetOldest must pick
	// them up), half are produced once both members own partitions.
	want := produceToPartitions(t, topic, partitions, 30, "before")
	rec := newGroupRecorder(topic)
	a := startMember(t, groupID, "member-a", topic, rec)
	b := startMember(t, groupID, "member-b", topic, rec)

	waitFor(t, "both members in one generation sharing all partitions", func() error {
		_, sessions, errs := rec.snapshot()
		if len(errs) > 0 {
			t.Fatalf("consumer group errors: %v", errs)
		}
		sa, sb := sessions["member-a"], sessions["member-b"]
		if sa.generation == 0 || sa.generation != sb.generation || len(sa.claims) == 0 || len(sb.claims) == 0 {
			return fmt.Errorf("sessions %+v", sessions)
		}
		all := append(append([]int32(nil), sa.claims...), sb.claims...)
		sort.Slice(all, func(i, j int) bool { return all[i] < all[j] })
		if fmt.Sprint(all) != "[0 1 2]" {
			return fmt.Errorf("claims %v and %v don't split partitions 0..2", sa.claims, sb.claims)
		}
		return nil
	})
	for v := range produceToPartitions(t, topic, partitions, 30, "during") {
		want[v] = true
	}

	deliveries := waitForDeliveries(t, rec, len(want))
	byMember := map[string]int{}
	got := map[string]bool{}
	for _, d := range deliveries {
		if got[d.value] {
			t.Fatalf("%q (partition %d offset %d) delivered twice", d.value, d.partition, d.offset)
		}
		if !want[d.value] {
			t.Fatalf("unexpected delivery %+v", d)
		}
		got[d.value] = true
		byMember[d.member]++
	}
	if len(got) != len(want) || byMember["member-a"] == 0 || byMember["member-b"] == 0 {
		t.Fatalf("%d distinct deliveries of %d messages, per member %v", len(got), len(want), byMember)
	}
	t.Logf("%d messages consumed exactly once: %v", len(want), byMember)

	t.Run("describe-running-group", func(t *testing.T) {
		groups, err := admin.ListConsumerGroups()
		if err != nil {
			t.Fatalf("ListConsumerGroups: %v", err)
		}
		if groups[groupID] != "consumer" {
			t.Fatalf("ListConsumerGroups: %q -> %q, want protocol type \"consumer\" (all: %v)", groupID, groups[groupID], groups)
		}
		descs, err := admin.DescribeConsumerGroups([]string{groupID})
		if err != nil || len(descs) != 1 {
			t.Fatalf("DescribeConsumerGroups: %d groups, %v", len(descs), err)
		}
		d := descs[0]
		if d.Err != sarama.ErrNoError || d.GroupId != groupID || d.State != "Stable" ||
			d.ProtocolType != "consumer" || d.Protocol != "range" || len(d.Members) != 2 {
			t.Fatalf("DescribeConsumerGroups: %+v", d)
		}
		var assigned []int32
		for id, m := range d.Members {
			if m.ClientId != "ironlog-e2e-sarama" {
				t.Errorf("member %s: client id %q", id, m.ClientId)
			}
			assignment, err := m.GetMemberAssignment()
			if err != nil {
				t.Fatalf("member %s: assignment: %v", id, err)
			}
			assigned = append(assigned, assignment.Topics[topic]...)
		}
		sort.Slice(assigned, func(i, j int) bool { return assigned[i] < assigned[j] })
		if fmt.Sprint(assigned) != "[0 1 2]" {
			t.Fatalf("members' assignments cover partitions %v, want [0 1 2]", assigned)
		}
	})

	a.stop()
	b.stop()
	if _, _, errs := rec.snapshot(); len(errs) > 0 {
		t.Fatalf("consumer group errors: %v", errs)
	}

	t.Run("committed-offsets", func(t *testing.T) {
		checkCommitted(t, admin, client, groupID, topic, partitions)
		waitFor(t, "the group to be Empty", func() error {
			descs, err := admin.DescribeConsumerGroups([]string{groupID})
			if err != nil || len(descs) != 1 {
				return fmt.Errorf("%d groups, %v", len(descs), err)
			}
			if d := descs[0]; d.State != "Empty" || len(d.Members) != 0 {
				return fmt.Errorf("state %q with %d members", d.State, len(d.Members))
			}
			return nil
		})
	})

	t.Run("resume-from-commits", func(t *testing.T) {
		fresh := produceToPartitions(t, topic, partitions, 10, "after")
		rec := newGroupRecorder(topic)
		c := startMember(t, groupID, "member-c", topic, rec)
		// Anything consumed twice would come before the new messages of its partition, so
		// once all new ones are in, nothing old can be on its way.
		for _, d := range waitForDeliveries(t, rec, len(fresh)) {
			if !fresh[d.value] {
				t.Fatalf("new member got %q (partition %d offset %d), which the group had committed", d.value, d.partition, d.offset)
			}
		}
		c.stop()
		deliveries, _, errs := rec.snapshot()
		if len(errs) > 0 {
			t.Fatalf("consumer group errors: %v", errs)
		}
		distinct := map[string]bool{}
		for _, d := range deliveries {
			distinct[d.value] = true
		}
		if len(deliveries) != len(fresh) || len(distinct) != len(fresh) {
			t.Fatalf("new member consumed %d messages (%d distinct), want the %d new ones once each",
				len(deliveries), len(distinct), len(fresh))
		}
		checkCommitted(t, admin, client, groupID, topic, partitions)
	})
}

// TestOffsetManagerCommit commits an offset with Sarama's OffsetManager outside any group
// generation (as a "simple consumer" does) and reads it back with ListConsumerGroupOffsets.
// Sarama 1.22 sends OffsetCommit v1 with its default config and v2 once Offsets.Retention is
// set.
func TestOffsetManagerCommit(t *testing.T) {
	topic := uniqueName(t, "topic")
	createTopic(t, topic, 1, nil)
	produceValues(t, topic, 0, []string{"a", "b", "c", "d", "e", "f", "g"})
	for _, tc := range []struct {
		name      string
		retention time.Duration
	}{
		{"OffsetCommit-v1-default-config", 0},
		{"OffsetCommit-v2-with-retention", 7 * 24 * time.Hour},
	} {
		tc := tc
		t.Run(tc.name, func(t *testing.T) {
			groupID := uniqueName(t, "group")
			conf := newConfig()
			conf.Consumer.Offsets.Retention = tc.retention
			client, err := sarama.NewClient([]string{brokerAddr}, conf)
			if err != nil {
				t.Fatalf("NewClient: %v", err)
			}
			defer client.Close()
			om, err := sarama.NewOffsetManagerFromClient(groupID, client)
			if err != nil {
				t.Fatalf("NewOffsetManagerFromClient: %v", err)
			}
			pom, err := om.ManagePartition(topic, 0)
			if err != nil {
				om.Close()
				t.Fatalf("ManagePartition: %v", err)
			}
			if next, _ := pom.NextOffset(); next != sarama.OffsetNewest {
				t.Errorf("a new group's NextOffset is %d, want OffsetNewest (%d): nothing committed yet", next, sarama.OffsetNewest)
			}
			pom.MarkOffset(5, "meta-"+tc.name)
			om.Close() // commits what was marked
			var errs []string
			if err := pom.Close(); err != nil {
				for _, e := range err.(sarama.ConsumerErrors) {
					errs = append(errs, e.Err.Error())
				}
			}

			resp, err := newAdmin(t).ListConsumerGroupOffsets(groupID, map[string][]int32{topic: {0}})
			if err != nil {
				t.Fatalf("ListConsumerGroupOffsets: %v", err)
			}
			block := resp.GetBlock(topic, 0)
			if block == nil || block.Err != sarama.ErrNoError || block.Offset != 5 || block.Metadata != "meta-"+tc.name {
				t.Fatalf("committed %+v, want offset 5 with metadata %q (offset manager errors: %v)", block, "meta-"+tc.name, errs)
			}
			if len(errs) > 0 {
				t.Fatalf("offset manager errors: %v", errs)
			}
		})
	}
}
