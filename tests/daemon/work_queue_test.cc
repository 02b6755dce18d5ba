// WorkQueue: bounds, batching by records, idleness and closing.
#include <thread>

#include "daemon/work.h"
#include "tests/test_util.h"

namespace anomalyd {
namespace {

using std::chrono::microseconds;
using std::chrono::milliseconds;

WorkItem Item(size_t rows) {
  WorkItem w;
  w.reply = std::make_shared<PendingReply>();
  w.part.index.resize(rows);
  return w;
}

TEST(WorkQueueTest, CapacityCountsRecords) {
  struct Case {
    uint64_t capacity;
    std::vector<size_t> pushes;
    std::vector<bool> taken;
  };
  const Case cases[] = {
      {10, {4, 6, 1}, {true, true, false}},
      {10, {11}, {false}},
      {10, {3, 8, 7}, {true, false, true}},
  };
  for (const Case& c : cases) {
    WorkQueue q(c.capacity);
    for (size_t i = 0; i < c.pushes.size(); ++i) {
      EXPECT_EQ(q.TryPush(Item(c.pushes[i])), c.taken[i]) << i;
    }
  }
}

TEST(WorkQueueTest, PopBatchTakesWholeItemsUpToMaxRecords) {
  struct Case {
    std::vector<size_t> items;
    uint64_t max_records;
    size_t want_items;
  };
  const Case cases[] = {
      {{2, 2, 2}, 4, 2},
      {{2, 2, 2}, 100, 3},
      {{9, 1}, 4, 1},  // the first item is taken whatever its size
      {{1, 9}, 4, 1},
  };
  for (const Case& c : cases) {
    WorkQueue q(1000);
    for (size_t n : c.items) ASSERT_TRUE(q.TryPush(Item(n)));
    auto got = q.PopBatch(c.max_records, milliseconds(10), microseconds(0));
    EXPECT_EQ(got.size(), c.want_items);
  }
}

TEST(WorkQueueTest, IdleUntilDone) {
  WorkQueue q(100);
  EXPECT_TRUE(q.idle());
  ASSERT_TRUE(q.TryPush(Item(3)));
  EXPECT_FALSE(q.idle());
  EXPECT_EQ(q.records(), 3u);
  auto got = q.PopBatch(10, milliseconds(10), microseconds(0));
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(q.records(), 0u);
  EXPECT_FALSE(q.idle());  // popped, not yet scored
  q.Done(got.size());
  EXPECT_TRUE(q.idle());
}

TEST(WorkQueueTest, EmptyPopTimesOut) {
  WorkQueue q(100);
  EXPECT_TRUE(q.PopBatch(10, milliseconds(1), microseconds(0)).empty());
}

TEST(WorkQueueTest, CloseRefusesNewWorkAndDrains) {
  WorkQueue q(100);
  ASSERT_TRUE(q.TryPush(Item(1)));
  q.Close();
  EXPECT_FALSE(q.TryPush(Item(1)));
  EXPECT_FALSE(q.closed_and_empty());
  EXPECT_EQ(q.PopBatch(10, milliseconds(1), microseconds(0)).size(), 1u);
  EXPECT_TRUE(q.closed_and_empty());
  EXPECT_TRUE(q.PopBatch(10, milliseconds(1000), microseconds(0)).empty());
}

TEST(WorkQueueTest, LingerWaitsForAFullBatch) {
  WorkQueue q(100);
  ASSERT_TRUE(q.TryPush(Item(1)));
  std::thread producer([&] {
    std::this_thread::sleep_for(milliseconds(20));
    q.TryPush(Item(3));
  });
  auto got = q.PopBatch(4, milliseconds(100), microseconds(5'000'000));
  producer.join();
  EXPECT_EQ(got.size(), 2u);  // the linger ended when the batch was full
}

}  // namespace
}  // namespace anomalyd
