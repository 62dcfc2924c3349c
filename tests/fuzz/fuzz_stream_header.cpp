// libFuzzer target for what a peer sends after auth outside the data:
// byte 0 is checked as a data stream's first byte (forward/stream_header.hpp),
// byte 1 picks a protocol version (1..4) and a chunk size, and the rest is
// fed to a ControlReader (session/control.hpp) whole and in chunks.
// Contract: only CounterpartyError escapes; for the first byte, exactly when
// it is not 'X'; for the control bytes, the events and the error (if any)
// do not depend on how the bytes are split, counts are bounded by the input,
// every credit is in QUIC's range, and every 'F' text is printable ASCII
// of 1..kMaxFailureText bytes.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <span>

#include "peersock/error.hpp"
#include "peersock/forward/stream_header.hpp"
#include "peersock/session/control.hpp"

namespace {
using namespace peersock::session;
using namespace peersock::forward;

struct Outcome {
  ControlEvents events;
  bool threw = false;
};

Outcome run(int version, std::span<const uint8_t> bytes, size_t chunk) {
  Outcome out;
  ControlReader reader(version);
  try {
    for (size_t pos = 0; pos < bytes.size(); pos += chunk) {
      auto e = reader.feed(bytes.subspan(pos, std::min(chunk, bytes.size() - pos)));
      out.events.done += e.done;
      out.events.pings += e.pings;
      out.events.pongs += e.pongs;
      out.events.credits.insert(out.events.credits.end(), e.credits.begin(), e.credits.end());
      out.events.failures.insert(out.events.failures.end(), e.failures.begin(), e.failures.end());
    }
  } catch (const peersock::CounterpartyError&) {
    out.threw = true;
  }
  return out;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  bool threw = false;
  try {
    check_data_stream_magic(data[0]);
  } catch (const peersock::CounterpartyError&) {
    threw = true;
  }
  if (threw != (data[0] != kDataStreamMagic)) __builtin_trap();
  if (size < 2) return 0;

  const int version = 1 + data[1] % 4;
  const size_t chunk = (data[1] / 4) % 19 + 1;
  const std::span<const uint8_t> control(data + 2, size - 2);
  const Outcome whole = run(version, control, control.size() + 1);
  const Outcome split = run(version, control, chunk);
  if (whole.threw != split.threw) __builtin_trap();
  if (whole.threw && version < 3) __builtin_trap();  // v1/v2 never reject
  if (!whole.threw) {
    const auto& a = whole.events;
    const auto& b = split.events;
    if (a.done != b.done || a.pings != b.pings || a.pongs != b.pongs || a.credits != b.credits ||
        a.failures != b.failures)
      __builtin_trap();
    size_t failure_bytes = 0;
    for (const auto& f : a.failures) {
      if (f.text.empty() || f.text.size() > kMaxFailureText || f.stream_id > kMaxQuicValue) __builtin_trap();
      for (char c : f.text)
        if (c < 0x20 || c > 0x7e) __builtin_trap();
      failure_bytes += 10 + f.text.size();
    }
    if (version < 4 && !a.failures.empty()) __builtin_trap();
    if (a.done + a.pings + a.pongs + a.credits.size() * kCreditFrameBytes + failure_bytes > control.size())
      __builtin_trap();
    for (const auto& c : a.credits) {
      if (c.stream_id > kMaxQuicValue || c.limit > kMaxQuicValue) __builtin_trap();
    }
  }
  return 0;
}
