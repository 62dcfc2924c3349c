// The stream headers a peer sends after auth (session/stream_header.hpp).
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/session/stream_header.hpp"

namespace peersock::session {
namespace {

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

TEST(StreamHeader, DoneMarkersAreCountedOthersIgnored) {
  const std::vector<uint8_t> none;
  EXPECT_EQ(count_done_markers(none), 0u);
  const std::vector<uint8_t> mixed = {'D', 'x', 0, 'D', 'd', 0xff, 'D'};
  EXPECT_EQ(count_done_markers(mixed), 3u);
}

}  // namespace
}  // namespace peersock::session
