// The UDP flow table and flow header (forward/udp_flows.hpp).
#include <gtest/gtest.h>

#include <array>
#include <cstdint>
#include <vector>

#include "peersock/forward/udp_flows.hpp"

namespace peersock::forward::udp {
namespace {

constexpr Timestamp kSec = 1'000'000'000;
// Far from zero: nothing may assume the clock starts there.
constexpr Timestamp kStart = 5000 * kSec;

std::vector<uint8_t> header_of(uint64_t id) {
  std::array<uint8_t, kMaxHeader> out{};
  const size_t n = encode_header(id, out);
  return {out.begin(), out.begin() + static_cast<std::ptrdiff_t>(n)};
}

TEST(UdpFlowHeader, ShortestVarintAndBack) {
  struct Case {
    uint64_t id;
    std::vector<uint8_t> bytes;
  };
  // RFC 9000 §A.1's examples, and the edges of each length.
  for (const Case& c :
       {Case{0, {0x00}}, Case{37, {0x25}}, Case{63, {0x3f}}, Case{64, {0x40, 0x40}}, Case{15293, {0x7b, 0xbd}},
        Case{16383, {0x7f, 0xff}}, Case{16384, {0x80, 0x00, 0x40, 0x00}}, Case{494878333, {0x9d, 0x7f, 0x3e, 0x7d}},
        Case{151288809941952652ULL, {0xc2, 0x19, 0x7c, 0x5e, 0xff, 0x14, 0xe8, 0x8c}},
        Case{kMaxFlowId, {0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}}}) {
    EXPECT_EQ(header_of(c.id), c.bytes) << c.id;
    std::vector<uint8_t> datagram = c.bytes;
    datagram.push_back(0xaa);  // payload
    auto h = decode_header(datagram);
    ASSERT_TRUE(h) << c.id;
    EXPECT_EQ(h->flow_id, c.id);
    EXPECT_EQ(h->length, c.bytes.size());
  }
}

TEST(UdpFlowHeader, TruncatedOrEmptyIsRefusedAndLongerEncodingsAccepted) {
  EXPECT_FALSE(decode_header({}));
  const std::vector<uint8_t> two = {0x40};
  EXPECT_FALSE(decode_header(two));
  const std::vector<uint8_t> eight = {0xc0, 0, 0, 0, 0, 0, 0};
  EXPECT_FALSE(decode_header(eight));
  const std::vector<uint8_t> padded = {0x40, 0x05};  // 5 in two bytes
  auto h = decode_header(padded);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->flow_id, 5u);
  EXPECT_EQ(h->length, 2u);
  const std::vector<uint8_t> only_header = {0x07};  // an empty UDP datagram
  h = decode_header(only_header);
  ASSERT_TRUE(h);
  EXPECT_EQ(h->length, 1u);
}

TEST(UdpFlowTable, IdleFlowsExpireOldestFirstAndActivityKeepsThemAlive) {
  FlowTable t({.max_flows = 10, .idle_ns = 60 * kSec});
  EXPECT_FALSE(t.next_expiry());
  EXPECT_TRUE(t.touch(1, kStart).fresh);
  EXPECT_TRUE(t.touch(2, kStart + 10 * kSec).fresh);
  EXPECT_FALSE(t.touch(1, kStart + 20 * kSec).fresh);  // 1 is active again
  EXPECT_EQ(*t.next_expiry(), kStart + 70 * kSec);     // 2 is now the oldest
  EXPECT_TRUE(t.expire(kStart + 69 * kSec).empty());
  EXPECT_EQ(t.expire(kStart + 70 * kSec), std::vector<uint64_t>{2});
  EXPECT_TRUE(t.contains(1));
  EXPECT_EQ(t.expire(kStart + 200 * kSec), std::vector<uint64_t>{1});
  EXPECT_EQ(t.size(), 0u);
  EXPECT_TRUE(t.expire(kStart).empty());  // a clock that went back expires nothing
}

TEST(UdpFlowTable, AtTheLimitTheLeastRecentlyActiveFlowIsEvicted) {
  FlowTable t({.max_flows = 3, .idle_ns = 60 * kSec});
  t.touch(1, kStart);
  t.touch(2, kStart + 1);
  t.touch(3, kStart + 2);
  t.touch(1, kStart + 3);  // 2 is now the least recently active
  auto r = t.touch(4, kStart + 4);
  EXPECT_TRUE(r.fresh);
  ASSERT_TRUE(r.evicted);
  EXPECT_EQ(*r.evicted, 2u);
  EXPECT_EQ(t.size(), 3u);
  EXPECT_FALSE(t.contains(2));
  EXPECT_FALSE(t.touch(4, kStart + 5).evicted);  // a live flow evicts nobody
  t.erase(3);
  EXPECT_FALSE(t.touch(5, kStart + 6).evicted);
}

TEST(UdpFlowTable, ManyFlowsStayBounded) {
  FlowTable t({.max_flows = 4096, .idle_ns = 60 * kSec});
  size_t evicted = 0;
  for (uint64_t i = 0; i < 100000; ++i) evicted += t.touch(i, kStart + i).evicted ? 1 : 0;
  EXPECT_EQ(t.size(), 4096u);
  EXPECT_EQ(evicted, 100000u - 4096u);
  EXPECT_TRUE(t.contains(99999));
  EXPECT_FALSE(t.contains(100000 - 4097));
}

Source source(uint8_t last_octet, uint16_t port) {
  Source s;
  s.family = 2;  // AF_INET
  s.address = {127, 0, 0, last_octet};
  s.port = port;
  return s;
}

TEST(UdpListenFlows, EachSourceIsOneFlowAndRepliesFindTheirClient) {
  ListenFlows f({.max_flows = 100, .idle_ns = 60 * kSec});
  auto a = f.flow_for(source(1, 1000), kStart);
  auto b = f.flow_for(source(1, 1001), kStart);
  auto c = f.flow_for(source(2, 1000), kStart);
  EXPECT_TRUE(a.fresh && b.fresh && c.fresh);
  EXPECT_NE(a.id, b.id);
  EXPECT_NE(a.id, c.id);
  EXPECT_NE(b.id, c.id);
  auto again = f.flow_for(source(1, 1000), kStart + kSec);
  EXPECT_FALSE(again.fresh);
  EXPECT_EQ(again.id, a.id);
  EXPECT_EQ(f.reply_to(b.id, kStart + kSec), source(1, 1001));
  EXPECT_FALSE(f.reply_to(12345, kStart + kSec));
  EXPECT_EQ(f.size(), 3u);
}

TEST(UdpListenFlows, AnExpiredFlowsNumberIsNeverReused) {
  ListenFlows f({.max_flows = 100, .idle_ns = 10 * kSec});
  auto a = f.flow_for(source(1, 1000), kStart);
  EXPECT_EQ(f.expire(kStart + 10 * kSec), std::vector<Source>{source(1, 1000)});
  EXPECT_FALSE(f.reply_to(a.id, kStart + 11 * kSec));  // a late reply for the old flow: dropped
  auto b = f.flow_for(source(1, 1000), kStart + 12 * kSec);
  EXPECT_TRUE(b.fresh);
  EXPECT_NE(b.id, a.id);
}

TEST(UdpListenFlows, TheLimitEvictsTheLeastRecentlyActiveClient) {
  ListenFlows f({.max_flows = 2, .idle_ns = 60 * kSec});
  auto a = f.flow_for(source(1, 1), kStart);
  f.flow_for(source(1, 2), kStart + 1);
  f.reply_to(a.id, kStart + 2);  // a reply makes flow a active
  auto c = f.flow_for(source(1, 3), kStart + 3);
  ASSERT_TRUE(c.evicted);
  EXPECT_EQ(*c.evicted, source(1, 2));
  EXPECT_EQ(f.size(), 2u);
  EXPECT_TRUE(f.reply_to(a.id, kStart + 4));
}

}  // namespace
}  // namespace peersock::forward::udp
