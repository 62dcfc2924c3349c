// libFuzzer target for the stream headers a peer sends after auth
// (session/stream_header.hpp): byte 0 is checked as a data stream's first
// byte, the rest is read as control-stream bytes in chunks. Contract: only
// CounterpartyError escapes, exactly for a first byte other than 'X', and the
// marker count is independent of how the control bytes are split.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "peersock/error.hpp"
#include "peersock/session/stream_header.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::session;
  if (size == 0) return 0;
  bool threw = false;
  try {
    check_data_stream_magic(data[0]);
  } catch (const peersock::CounterpartyError&) {
    threw = true;
  }
  if (threw != (data[0] != kDataStreamMagic)) __builtin_trap();

  const std::span<const uint8_t> control(data + 1, size - 1);
  const size_t whole = count_done_markers(control);
  const size_t chunk = size > 1 ? (data[1] % 7) + 1 : 1;
  size_t split = 0;
  for (size_t pos = 0; pos < control.size(); pos += chunk) {
    split += count_done_markers(control.subspan(pos, std::min(chunk, control.size() - pos)));
  }
  if (split != whole || whole > control.size()) __builtin_trap();
  return 0;
}
