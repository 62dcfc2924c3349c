// The v2 control-stream ping (RTT for the path line): pure logic.
#include <gtest/gtest.h>

#include <cstring>

#include "peersock/session/ping.hpp"

using peersock::session::ControlPing;

namespace {
std::vector<uint8_t> bytes(const char* s) { return {s, s + strlen(s)}; }
}  // namespace

TEST(ControlPing, PingPongGivesRtt) {
  ControlPing a, b;
  auto p = a.ping(1'000'000);
  ASSERT_EQ(p, bytes("P"));
  EXPECT_TRUE(a.ping(1'000'100).empty());  // one outstanding at a time
  auto rb = b.on_control(1, 0, 1'005'000);
  EXPECT_EQ(rb.reply, bytes("Q"));
  EXPECT_FALSE(rb.rtt_ms);
  EXPECT_TRUE(b.pinged_by_peer());
  auto ra = a.on_control(0, rb.reply.size(), 1'012'000);
  ASSERT_TRUE(ra.rtt_ms);
  EXPECT_DOUBLE_EQ(*ra.rtt_ms, 12.0);
  EXPECT_TRUE(a.ping(1'013'000).size() == 1);  // may measure again
}

TEST(ControlPing, UnaskedPongsGiveNoRttAndEachPingOnePong) {
  ControlPing a;
  auto r = a.on_control(0, 2, 5);
  EXPECT_TRUE(r.reply.empty());
  EXPECT_FALSE(r.rtt_ms);
  EXPECT_FALSE(a.pinged_by_peer());
  auto r2 = a.on_control(2, 0, 6);
  EXPECT_EQ(r2.reply, bytes("QQ"));
}
