// libFuzzer target for the encrypted signaling channel (pake::Channel) and
// its sealed-message parser. Byte 0 picks the role, --no-original, acting
// like the original (PEERSOCK_PROTOCOL=1), whether our body is given first
// and whether the consumer's wait for the original expires midway; the rest
// is split at '\n' into mailbox messages "PHASE\tBODY" from the other side.
// Bit 7 of byte 0 makes every BODY an attempt at open_sealed instead, with a
// fixed key (bit 6: in phase "restart-1", an ICE restart's, not
// "sealed-ice"). Phases "restart-N" reach the generation parser. Error/CounterpartyError are the documented outcome for bad
// input; anything else escaping, a crash, or an outgoing message of an
// unknown phase is a bug.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/error.hpp"
#include "peersock/pake/channel.hpp"

namespace {

using namespace peersock::pake;

void check(const Output& out) {
  for (const auto& m : out.to_send) {
    if (m.phase != kPakePhase && m.phase != kConfirmPhase && m.phase != kSealedIcePhase && m.phase != kPlainIcePhase)
      __builtin_trap();
    if (m.body.size() > 64 * 1024) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  if (flags & 0x80) {
    cpace::Isk isk{};
    isk[0] = 1;
    try {
      std::string plain = Channel::open_sealed(isk, (flags & 1) ? Role::generator : Role::consumer,
                                               (flags & 0x40) ? std::string_view("restart-1") : kSealedIcePhase, rest);
      if (plain.size() > kMaxSealedPlaintext) __builtin_trap();
    } catch (const peersock::Error&) {
    }
    return 0;
  }
  Params p;
  p.role = (flags & 1) ? Role::consumer : Role::generator;
  p.code = "7-alpha-beta-gamma-delta";
  p.nameplate = "7";
  p.side = "aaaaaaaaaa";
  p.allow_original = !(flags & 2);
  p.speak_pake = !(flags & 4);
  // A fixed scalar keeps runs reproducible.
  cpace::Scalar scalar{};
  scalar[0] = 7;
  Channel c(p, scalar);
  try {
    check(c.open());
    if (flags & 8) check(c.send_ice("{\"c\":[]}"));
    size_t n = 0;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view line = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      size_t tab = line.find('\t');
      std::string_view phase = line.substr(0, tab);
      std::string_view body = tab == std::string_view::npos ? std::string_view() : line.substr(tab + 1);
      check(c.on_message("bbbbbbbbbb", phase, body));
      if ((flags & 16) && ++n == 2) check(c.original_wait_expired());
      if (!(flags & 8) && n == 3) check(c.send_ice("{\"c\":[]}"));
    }
  } catch (const peersock::Error&) {
  }
  return 0;
}
