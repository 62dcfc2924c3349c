// The stream headers and control-stream messages a peer sends after auth
// (forward/stream_header.hpp, session/control.hpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/forward/stream_header.hpp"
#include "peersock/session/control.hpp"

namespace peersock::session {
namespace {
using forward::check_data_stream_magic;
using forward::kDataStreamMagic;

TEST(StreamHeader, OnlyXStartsADataStream) {
  EXPECT_NO_THROW(check_data_stream_magic('X'));
  for (int b = 0; b < 256; ++b) {
    if (b == 'X') continue;
    EXPECT_THROW(check_data_stream_magic(static_cast<uint8_t>(b)), CounterpartyError) << b;
  }
}

TEST(StreamHeader, ErrorQuotesTheByteSafely) {
  try {
    check_data_stream_magic(0x1b);  // ESC must not reach the terminal raw
    FAIL() << "no error";
  } catch (const CounterpartyError& e) {
    EXPECT_EQ(std::string(e.what()), "data stream starts with '\\x1b', expected 'X'");
    EXPECT_EQ(e.code(), ExitCode::protocol);
  }
}

std::vector<uint8_t> bytes(std::string_view s) { return {s.begin(), s.end()}; }

TEST(ControlReader, V1ReadsNothing) {
  ControlReader reader(1);
  auto e = reader.feed(bytes("DDPQC\xff"));
  EXPECT_EQ(e.done + e.pings + e.pongs + e.credits.size(), 0u);
}

TEST(ControlReader, V2CountsMarkersAndIgnoresUnknownBytes) {
  ControlReader reader(2);
  const std::vector<uint8_t> mixed = {'D', 'x', 0, 'D', 'P', 0xff, 'Q', 'C', 'D'};
  auto e = reader.feed(mixed);
  EXPECT_EQ(e.done, 3u);
  EXPECT_EQ(e.pings, 1u);
  EXPECT_EQ(e.pongs, 1u);
  EXPECT_TRUE(e.credits.empty());  // 'C' means nothing to v2
}

TEST(ControlReader, V3CreditFramesSurviveAnySplit) {
  std::vector<uint8_t> wire = bytes("DP");
  const CreditGrant a{4, 1 << 20}, b{kMaxQuicValue, kMaxQuicValue};
  for (auto& g : {a, b}) {
    auto f = encode_credit(g);
    ASSERT_EQ(f.size(), kCreditFrameBytes);
    wire.insert(wire.end(), f.begin(), f.end());
    wire.push_back('Q');
  }
  // A payload full of 'D'/'P' bytes must not count as markers.
  const CreditGrant tricky{0x4444444444444444 & kMaxQuicValue, 0x0050505050505050};
  auto f = encode_credit(tricky);
  wire.insert(wire.end(), f.begin(), f.end());
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    ControlReader reader(3);
    ControlEvents all;
    for (size_t pos = 0; pos < wire.size(); pos += chunk) {
      auto e = reader.feed(std::span(wire).subspan(pos, std::min(chunk, wire.size() - pos)));
      all.done += e.done;
      all.pings += e.pings;
      all.pongs += e.pongs;
      all.credits.insert(all.credits.end(), e.credits.begin(), e.credits.end());
    }
    EXPECT_EQ(all.done, 1u) << chunk;
    EXPECT_EQ(all.pings, 1u) << chunk;
    EXPECT_EQ(all.pongs, 2u) << chunk;
    ASSERT_EQ(all.credits.size(), 3u) << chunk;
    EXPECT_EQ(all.credits[0], a);
    EXPECT_EQ(all.credits[1], b);
    EXPECT_EQ(all.credits[2], tricky);
  }
}

TEST(ControlReader, V3RejectsUnknownBytesAndOutOfRangeValues) {
  {
    ControlReader reader(3);
    try {
      reader.feed(bytes("DD\x1b"));
      FAIL() << "no error";
    } catch (const CounterpartyError& e) {
      EXPECT_EQ(std::string(e.what()), "control stream: unknown message type '\\x1b'");
      EXPECT_EQ(e.code(), ExitCode::protocol);
    }
  }
  {
    ControlReader reader(3);
    auto f = encode_credit({kMaxQuicValue + 1, 5});
    EXPECT_THROW(reader.feed(f), CounterpartyError);
  }
  {
    ControlReader reader(3);
    auto f = encode_credit({8, ~uint64_t{0}});
    EXPECT_THROW(reader.feed(f), CounterpartyError);
  }
}

TEST(ControlReader, V4ConnectFailuresSurviveAnySplitAndAreValidated) {
  std::vector<uint8_t> wire = bytes("D");
  auto f1 = encode_connect_failure(8, "127.0.0.1:5000: Connection refused");
  auto f2 = encode_connect_failure(12, "h\xc3\xb6st: \x1b[2J");  // localised, hostile
  wire.insert(wire.end(), f1.begin(), f1.end());
  wire.insert(wire.end(), f2.begin(), f2.end());
  auto credit = encode_credit({4, 1 << 20});
  wire.insert(wire.end(), credit.begin(), credit.end());
  for (size_t chunk = 1; chunk <= wire.size(); ++chunk) {
    ControlReader reader(4);
    std::vector<ConnectFailure> failures;
    size_t credits = 0, done = 0;
    for (size_t pos = 0; pos < wire.size(); pos += chunk) {
      auto e = reader.feed(std::span(wire).subspan(pos, std::min(chunk, wire.size() - pos)));
      failures.insert(failures.end(), e.failures.begin(), e.failures.end());
      credits += e.credits.size();
      done += e.done;
    }
    ASSERT_EQ(failures.size(), 2u) << chunk;
    EXPECT_EQ(failures[0], (ConnectFailure{8, "127.0.0.1:5000: Connection refused"}));
    EXPECT_EQ(failures[1], (ConnectFailure{12, "h??st: ?[2J"}));
    EXPECT_EQ(credits, 1u);
    EXPECT_EQ(done, 1u);
  }
  EXPECT_EQ(encode_connect_failure(4, "").size(), 10u + 6u) << "an empty text is sent as 'failed'";
  EXPECT_EQ(encode_connect_failure(4, std::string(500, 'a')).size(), 10u + kMaxFailureText);
  // A v3 peer never gets one: to a v3 reader it is an unknown byte.
  EXPECT_THROW(ControlReader(3).feed(f1), CounterpartyError);
  // Hostile: zero length, too long, control characters.
  std::vector<uint8_t> zero = {'F', 0, 0, 0, 0, 0, 0, 0, 8, 0};
  EXPECT_THROW(ControlReader(4).feed(zero), CounterpartyError);
  std::vector<uint8_t> long_text = {'F', 0, 0, 0, 0, 0, 0, 0, 8, 255};
  EXPECT_THROW(ControlReader(4).feed(long_text), CounterpartyError);
  std::vector<uint8_t> escape = {'F', 0, 0, 0, 0, 0, 0, 0, 8, 2, 0x1b, 'x'};
  EXPECT_THROW(ControlReader(4).feed(escape), CounterpartyError);
}

}  // namespace
}  // namespace peersock::session
