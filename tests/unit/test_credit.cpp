// Per-stream credit (forward/credit.hpp) and the queue a receiving pump
// keeps behind a slow local reader (byte_queue.hpp): pure logic,
// timestamps passed in.
#include <gtest/gtest.h>

#include <cstdint>
#include <numeric>
#include <vector>

#include "peersock/byte_queue.hpp"
#include "peersock/forward/credit.hpp"

namespace peersock::forward {
namespace {

TEST(SendCredit, StartsWithInitialCreditAndOnlyRises) {
  SendCredit c;
  EXPECT_EQ(c.available(0), kInitialCredit);
  EXPECT_EQ(c.available(kInitialCredit), 0u);
  EXPECT_EQ(c.available(kInitialCredit + 5), 0u);  // never negative
  EXPECT_TRUE(c.on_grant(kInitialCredit + 100));
  EXPECT_EQ(c.available(kInitialCredit), 100u);
  EXPECT_FALSE(c.on_grant(kInitialCredit + 50));  // stale: reordered behind a larger one
  EXPECT_FALSE(c.on_grant(kInitialCredit + 100));
  EXPECT_EQ(c.limit(), kInitialCredit + 100);
}

TEST(ReceiveCredit, GrantsAFullWindowOnFirstDeliveryThenEveryHalfWindow) {
  WindowBudget budget(0);  // no growth
  ReceiveCredit c(budget);
  EXPECT_EQ(c.readable(0), kInitialCredit);
  auto first = c.on_delivered(1, 0, 1000);
  ASSERT_TRUE(first);
  EXPECT_EQ(*first, 1 + kFirstWindow);
  EXPECT_EQ(c.readable(1), kFirstWindow);
  // Nothing more until the sender is down to half a window.
  EXPECT_FALSE(c.on_delivered(kFirstWindow / 2, 1'000'000, 1000));
  auto next = c.on_delivered(kFirstWindow / 2 + 1, 2'000'000, 1000);
  ASSERT_TRUE(next);
  EXPECT_EQ(*next, kFirstWindow / 2 + 1 + kFirstWindow);
  EXPECT_EQ(c.window(), kFirstWindow);
}

TEST(ReceiveCredit, GrowsWhenTheWindowIsUsedUpWithinAFewRoundTrips) {
  WindowBudget budget;
  const uint64_t left_before = budget.left();
  {
    ReceiveCredit c(budget);
    int64_t now = 0;
    uint64_t delivered = 0;
    const int64_t rtt = 10'000;
    c.on_delivered(++delivered, now, rtt);
    // A reader that takes half a window per round trip: the window limits.
    for (int i = 0; i < 20; ++i) {
      delivered += c.window() / 2;
      now += rtt;
      ASSERT_TRUE(c.on_delivered(delivered, now, rtt));
    }
    EXPECT_EQ(c.window(), kMaxWindow);
    EXPECT_EQ(budget.left(), left_before - (kMaxWindow - kFirstWindow));
  }
  EXPECT_EQ(budget.left(), left_before);  // given back when the stream ends
}

TEST(ReceiveCredit, SlowReaderDoesNotGrowTheWindow) {
  WindowBudget budget;
  ReceiveCredit c(budget);
  int64_t now = 0;
  uint64_t delivered = 1;
  c.on_delivered(delivered, now, 10'000);
  for (int i = 0; i < 10; ++i) {
    delivered += c.window() / 2;
    now += 1'000'000;  // a second per half window: the reader limits, not the window
    ASSERT_TRUE(c.on_delivered(delivered, now, 10'000));
  }
  EXPECT_EQ(c.window(), kFirstWindow);
}

TEST(ReceiveCredit, GrowthStopsAtTheSessionBudget) {
  WindowBudget budget(kFirstWindow);  // room for one doubling
  ReceiveCredit a(budget), b(budget);
  a.on_delivered(1, 0, 1000);
  b.on_delivered(1, 0, 1000);
  a.on_delivered(1 + kFirstWindow, 1, 1000);
  b.on_delivered(1 + kFirstWindow, 1, 1000);
  EXPECT_EQ(a.window(), 2 * kFirstWindow);
  EXPECT_EQ(b.window(), kFirstWindow);
  EXPECT_EQ(budget.left(), 0u);
}

TEST(ByteQueue, KeepsOrderAcrossChunksAndFreesWhenEmpty) {
  ByteQueue q;
  EXPECT_TRUE(q.front().empty());
  std::vector<uint8_t> data(3 * ByteQueue::kChunk + 123);
  std::iota(data.begin(), data.end(), 0);
  q.append(data.data(), 1000);
  // Then straight into the tail, as a pump reads its stream.
  size_t pos = 1000;
  while (pos < data.size()) {
    auto room = q.tail_room();
    ASSERT_FALSE(room.empty());
    size_t n = std::min(room.size(), data.size() - pos);
    std::copy_n(data.begin() + static_cast<std::ptrdiff_t>(pos), n, room.begin());
    q.commit(n);
    pos += n;
  }
  EXPECT_EQ(q.size(), data.size());
  std::vector<uint8_t> out;
  while (!q.empty()) {
    auto run = q.front();
    size_t take = std::min<size_t>(run.size(), 7777);  // partial writes
    out.insert(out.end(), run.begin(), run.begin() + static_cast<std::ptrdiff_t>(take));
    q.consume(take);
  }
  EXPECT_EQ(out, data);
  EXPECT_TRUE(q.front().empty());
  EXPECT_EQ(q.size(), 0u);
}

}  // namespace
}  // namespace peersock::forward
