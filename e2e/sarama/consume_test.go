package sarama_e2e

import (
	"fmt"
	"testing"

	"github.com/Shopify/sarama"
)

// TestPartitionConsumer reads one partition from OffsetOldest, from an offset in the middle,
// and from OffsetNewest (then only messages produced afterwards arrive).
func TestPartitionConsumer(t *testing.T) {
	const first, more, middle = 40, 10, 17
	topic := uniqueName(t, "")
	createTopic(t, topic, 1, nil)
	values := func(from, to int) []string {
		var vs []string
		for i := from; i < to; i++ {
			vs = append(vs, fmt.Sprintf("value-%03d", i))
		}
		return vs
	}
	produceValues(t, topic, 0, values(0, first))

	client := newClient(t)
	if end := endOffset(t, client, topic, 0); end != first {
		t.Fatalf("end offset %d after producing %d messages", end, first)
	}
	if start, err := client.GetOffset(topic, 0, sarama.OffsetOldest); err != nil || start != 0 {
		t.Fatalf("GetOffset(oldest): %d, %v; want 0", start, err)
	}
	consumer, err := sarama.NewConsumerFromClient(client)
	if err != nil {
		t.Fatalf("NewConsumerFromClient: %v", err)
	}
	defer consumer.Close()

	// consume checks that pc delivers exactly offsets from..to-1 with their values, and then
	// reports the high watermark `to`.
	consume := func(pc sarama.PartitionConsumer, from, to int) {
		t.Helper()
		for i, msg := range consumeN(t, pc, to-from) {
			want := fmt.Sprintf("value-%03d", from+i)
			if msg.Offset != int64(from+i) || string(msg.Value) != want {
				t.Fatalf("message #%d: offset %d value %q, want offset %d value %q", i, msg.Offset, msg.Value, from+i, want)
			}
		}
		if hwm := pc.HighWaterMarkOffset(); hwm != int64(to) {
			t.Fatalf("HighWaterMarkOffset %d, want %d", hwm, to)
		}
	}

	t.Run("oldest", func(t *testing.T) {
		pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetOldest)
		if err != nil {
			t.Fatalf("ConsumePartition(oldest): %v", err)
		}
		defer pc.Close()
		consume(pc, 0, first)
	})

	t.Run("middle", func(t *testing.T) {
		pc, err := consumer.ConsumePartition(topic, 0, middle)
		if err != nil {
			t.Fatalf("ConsumePartition(%d): %v", middle, err)
		}
		defer pc.Close()
		consume(pc, middle, first)
	})

	t.Run("out-of-range", func(t *testing.T) {
		pc, err := consumer.ConsumePartition(topic, 0, first+100)
		if err != sarama.ErrOffsetOutOfRange {
			if pc != nil {
				pc.Close()
			}
			t.Fatalf("ConsumePartition(%d) beyond the end %d: error %v, want %v", first+100, first, err, sarama.ErrOffsetOutOfRange)
		}
	})

	t.Run("newest", func(t *testing.T) {
		// ConsumePartition resolves OffsetNewest (ListOffsets) before it returns, so what is
		// produced afterwards is all this consumer may see.
		pc, err := consumer.ConsumePartition(topic, 0, sarama.OffsetNewest)
		if err != nil {
			t.Fatalf("ConsumePartition(newest): %v", err)
		}
		defer pc.Close()
		produceValues(t, topic, 0, values(first, first+more))
		consume(pc, first, first+more)
	})
}
