// libFuzzer target for quic::alpn::select and protocol_list, which read the
// ClientHello's ALPN extension: bytes from the peer, before anything is
// authenticated. Contract
// beyond "no crash": a choice lies inside the offer, is a name we speak,
// carries a version within [1, cap], and is the same whatever the body said
// unless the offer is plain-only; the client's conclusion about it never
// exceeds its cap.
#include <cstddef>
#include <cstdint>
#include <span>
#include <string_view>

#include "peersock/quic/alpn.hpp"

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::quic::alpn;
  if (size < 2) return 0;
  // The first two bytes pick the cap and the body's version.
  const int cap = 1 + data[0] % 8, body = 1 + data[1] % 8;
  const std::span<const uint8_t> offer(data + 2, size - 2);
  // The same bytes as a raw ClientHello extension (what the ClientHello
  // callback reads): a list comes back only if the length matches, and it
  // is the bytes after the length.
  const auto list = protocol_list(offer);
  if (!list.empty()) require(list.size() + 2 == offer.size() && list.data() == offer.data() + 2);
  if (!list.empty()) (void)select(list, cap, body);
  const Selection s = select(offer, cap, body);
  if (!s.ok) return 0;
  require(s.offset >= 1 && s.length >= 1 && s.offset + s.length <= offer.size());
  require(offer[s.offset - 1] == s.length);
  const std::string_view name(reinterpret_cast<const char*>(offer.data() + s.offset), s.length);
  const int v = version_of(name);
  require(v >= 0);
  require(s.version >= 1 && s.version <= cap);
  if (v > 0) require(s.version == v && !s.original_identity);
  if (s.client_max > 0) require(select(offer, cap, body % 8 + 1).version == s.version);
  if (s.original_identity) require(body == 1 && s.client_max == 0);
  const Outcome server = server_outcome(s, body);
  require(server.version == s.version);
  const Outcome client = client_outcome(name, (data[0] & 0x80) != 0, cap, body);
  require(client.version >= 1 && client.version <= cap);
  return 0;
}
