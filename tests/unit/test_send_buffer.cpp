// quic::SendBuffer: runs across chunk boundaries, the sent/acknowledged
// cursors, and that acknowledged chunks are freed (counted through the
// global operator new[], which only this executable replaces).
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <new>
#include <numeric>
#include <vector>

#include "peersock/quic/send_buffer.hpp"

namespace {
// Live allocations of exactly one chunk: SendBuffer's chunks (nothing else in
// these tests allocates 64 KiB arrays).
std::atomic<long> live_chunks{0};
}  // namespace

void* operator new[](size_t n) {
  if (n == peersock::quic::SendBuffer::kChunk) ++live_chunks;
  // A size header in front, so that delete[] knows what it frees.
  void* p = std::malloc(n + alignof(std::max_align_t));
  if (p == nullptr) throw std::bad_alloc();
  *static_cast<size_t*>(p) = n;
  return static_cast<char*>(p) + alignof(std::max_align_t);
}
void operator delete[](void* q) noexcept {
  if (q == nullptr) return;
  void* p = static_cast<char*>(q) - alignof(std::max_align_t);
  if (*static_cast<size_t*>(p) == peersock::quic::SendBuffer::kChunk) --live_chunks;
  std::free(p);
}
void operator delete[](void* q, size_t) noexcept { operator delete[](q); }

namespace peersock::quic {
namespace {

constexpr size_t kChunk = SendBuffer::kChunk;
using Piece = std::span<const uint8_t>;

std::vector<uint8_t> pattern(size_t n, size_t from = 0) {
  std::vector<uint8_t> out(n);
  for (size_t i = 0; i < n; ++i) out[i] = static_cast<uint8_t>((from + i) * 7 + ((from + i) >> 16));
  return out;
}

// All unsent bytes, gathered run by run; also checks that no run crosses a
// chunk boundary (ngtcp2 gets them as separate iovecs).
std::vector<uint8_t> unsent_bytes(const SendBuffer& b, size_t max_runs = 64) {
  std::vector<Piece> runs(max_runs);
  size_t n = b.unsent(runs);
  std::vector<uint8_t> out;
  for (size_t i = 0; i < n; ++i) {
    EXPECT_GT(runs[i].size(), 0u);
    EXPECT_LE(runs[i].size(), kChunk);
    out.insert(out.end(), runs[i].begin(), runs[i].end());
  }
  return out;
}

TEST(SendBuffer, EmptyHoldsNothing) {
  long before = live_chunks;
  SendBuffer b;
  std::vector<Piece> runs(4);
  EXPECT_EQ(b.unsent(runs), 0u);
  EXPECT_EQ(b.unsent_bytes(), 0u);
  b.append({});
  EXPECT_EQ(b.written(), 0u);
  EXPECT_EQ(live_chunks - before, 0);
}

TEST(SendBuffer, RunsSplitExactlyAtChunkBoundaries) {
  SendBuffer b;
  auto data = pattern(kChunk - 10);
  b.append(data);
  auto more = pattern(30, data.size());
  b.append(more);  // 10 bytes finish the first chunk, 20 start the second
  EXPECT_EQ(b.written(), kChunk + 20);
  std::vector<Piece> runs(4);
  ASSERT_EQ(b.unsent(runs), 2u);
  EXPECT_EQ(runs[0].size(), kChunk);
  EXPECT_EQ(runs[1].size(), 20u);
  auto all = pattern(kChunk + 20);
  EXPECT_TRUE(std::equal(runs[0].begin(), runs[0].end(), all.begin()));
  EXPECT_TRUE(std::equal(runs[1].begin(), runs[1].end(), all.begin() + kChunk));

  // From the middle of a chunk: the first run ends at the boundary.
  b.mark_sent(kChunk - 5);
  ASSERT_EQ(b.unsent(runs), 2u);
  EXPECT_EQ(runs[0].size(), 5u);
  EXPECT_EQ(runs[1].size(), 20u);
  EXPECT_EQ(runs[0].data()[0], all[kChunk - 5]);
  // Exactly at the boundary: one run.
  b.mark_sent(5);
  ASSERT_EQ(b.unsent(runs), 1u);
  EXPECT_EQ(runs[0].size(), 20u);
  EXPECT_EQ(b.unsent_bytes(), 20u);
}

TEST(SendBuffer, UnsentStopsAtTheRunsItIsGiven) {
  SendBuffer b;
  auto data = pattern(3 * kChunk + 1);
  b.append(data);
  std::vector<Piece> two(2);
  ASSERT_EQ(b.unsent(two), 2u);
  EXPECT_EQ(two[0].size() + two[1].size(), 2 * kChunk);
  EXPECT_EQ(unsent_bytes(b), data);
  EXPECT_EQ(b.unsent(std::span<Piece>()), 0u);
}

TEST(SendBuffer, ChunksNeverMove) {
  // ngtcp2 keeps pointers into the buffer until the bytes are acknowledged.
  SendBuffer b;
  b.append(pattern(100));
  std::vector<Piece> runs(1);
  ASSERT_EQ(b.unsent(runs), 1u);
  const uint8_t* first = runs[0].data();
  b.mark_sent(100);
  for (int i = 0; i < 20; ++i) b.append(pattern(kChunk / 3, 100 + i * (kChunk / 3)));
  b.acked_to(50);  // partly acknowledged: the chunk stays
  EXPECT_EQ(first[0], pattern(1)[0]);
  EXPECT_TRUE(std::equal(first + 50, first + 100, pattern(100).begin() + 50));
}

TEST(SendBuffer, AcknowledgedChunksAreFreed) {
  long base = live_chunks;
  {
    SendBuffer b;
    b.append(pattern(3 * kChunk + 5));
    EXPECT_EQ(live_chunks - base, 4);
    b.mark_sent(3 * kChunk + 5);
    b.acked_to(kChunk - 1);
    EXPECT_EQ(live_chunks - base, 4) << "the first chunk still holds an unacknowledged byte";
    b.acked_to(kChunk);
    EXPECT_EQ(live_chunks - base, 3);
    b.acked_to(2 * kChunk + 7);
    EXPECT_EQ(live_chunks - base, 2);
    EXPECT_EQ(b.acked(), 2 * kChunk + 7);
    b.acked_to(3 * kChunk + 5);  // everything
    EXPECT_EQ(live_chunks - base, 0) << "a fully acknowledged buffer holds no memory";
    EXPECT_EQ(b.acked(), b.written());

    // And starts afresh at the same offsets.
    auto more = pattern(kChunk + 3, 3 * kChunk + 5);
    b.append(more);
    EXPECT_EQ(b.written(), 4 * kChunk + 8);
    EXPECT_EQ(live_chunks - base, 2);
    EXPECT_EQ(unsent_bytes(b), more);
  }
  EXPECT_EQ(live_chunks - base, 0) << "the destructor frees what is left";
}

TEST(SendBuffer, AcknowledgementsNeverPassWhatWasSentNorGoBack) {
  SendBuffer b;
  b.append(pattern(1000));
  b.mark_sent(400);
  b.acked_to(900);  // cannot be: clamp to what was sent
  EXPECT_EQ(b.acked(), 400u);
  b.acked_to(100);  // stale, out of order
  EXPECT_EQ(b.acked(), 400u);
  EXPECT_EQ(b.sent(), 400u);
  EXPECT_EQ(unsent_bytes(b), pattern(600, 400));
}

TEST(SendBuffer, ClearDropsEverythingAndKeepsOffsets) {
  long base = live_chunks;
  SendBuffer b;
  b.append(pattern(2 * kChunk));
  b.mark_sent(kChunk);
  b.clear();
  EXPECT_EQ(live_chunks - base, 0);
  EXPECT_EQ(b.unsent_bytes(), 0u);
  EXPECT_EQ(b.written(), 2 * kChunk);
  EXPECT_EQ(b.sent(), b.written());
  EXPECT_EQ(b.acked(), b.written());
  b.append(pattern(10));
  EXPECT_EQ(unsent_bytes(b), pattern(10));
}

TEST(SendBuffer, ManySmallAppendsReadBackExactly) {
  SendBuffer b;
  std::vector<uint8_t> all;
  size_t sent_total = 0;
  for (size_t i = 0; i < 500; ++i) {
    auto piece = pattern(1 + (i * 977) % 3000, all.size());
    b.append(piece);
    all.insert(all.end(), piece.begin(), piece.end());
    if (i % 7 == 0) {
      // Send a bit (not run-aligned) and acknowledge half of what was sent.
      size_t n = std::min<size_t>(b.unsent_bytes(), 5000);
      b.mark_sent(n);
      sent_total += n;
      b.acked_to(sent_total / 2);
    }
  }
  EXPECT_EQ(b.written(), all.size());
  std::vector<uint8_t> rest(all.begin() + static_cast<std::ptrdiff_t>(sent_total), all.end());
  EXPECT_EQ(unsent_bytes(b, 1000), rest);
}

}  // namespace
}  // namespace peersock::quic
