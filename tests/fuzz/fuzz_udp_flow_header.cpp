// libFuzzer target for what the peer puts in front of every UDP datagram:
// the flow header (forward/udp_flows.hpp; docs/protocol.md §7.7), and the
// listen side's flow table fed from the same bytes.
// Contract: decode_header never reads past the datagram; it fails exactly
// when the datagram is shorter than its varint says; a decoded id is below
// 2^62 and re-encodes (shortest form) to at most as many bytes, decoding to
// the same id. The flow table never holds more than its limit, and a reply
// finds only a flow that is live.
#include <array>
#include <cstddef>
#include <cstdint>
#include <span>

#include "peersock/forward/udp_flows.hpp"

using namespace peersock::forward::udp;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::span<const uint8_t> datagram(data, size);
  const auto h = decode_header(datagram);
  const size_t need = size == 0 ? 1 : size_t{1} << (data[0] >> 6);
  if (h.has_value() != (size >= need)) __builtin_trap();
  if (h) {
    if (h->length != need || h->flow_id > kMaxFlowId) __builtin_trap();
    std::array<uint8_t, kMaxHeader> out{};
    const size_t n = encode_header(h->flow_id, out);
    if (n > h->length) __builtin_trap();
    const auto back = decode_header(std::span<const uint8_t>(out.data(), n));
    if (!back || back->flow_id != h->flow_id || back->length != n) __builtin_trap();
  }

  // The same bytes as a sequence of events on a small table: each pair of
  // bytes is (source port, what to do), the clock moving by the second byte.
  ListenFlows flows({.max_flows = 8, .idle_ns = 100});
  Timestamp now = 1'000'000;
  for (size_t i = 0; i + 1 < size; i += 2) {
    now += data[i + 1] & 0x0f;
    Source s;
    s.family = 2;
    s.port = data[i];
    switch (data[i + 1] >> 6) {
      case 0:
      case 1: flows.flow_for(s, now); break;
      case 2:
        if (auto to = flows.reply_to(data[i] % 16, now); to && to->family != 2) __builtin_trap();
        break;
      default: flows.expire(now); break;
    }
    if (flows.size() > 8) __builtin_trap();
  }
  return 0;
}
