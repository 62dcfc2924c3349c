// libFuzzer target for rendezvous::Protocol::on_text: the whole input drives
// one session. Byte 0 picks the role (and whether/when send_ice is called);
// the rest is split at '\n' into server frames. Error/CounterpartyError are
// the documented outcome for bad input; anything else escaping, a crash, or
// an outgoing frame that is not a JSON object is a bug.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>

#include "peersock/error.hpp"
#include "peersock/rendezvous/protocol.hpp"

namespace {

using peersock::rendezvous::Output;

void check(const Output& out) {
  for (const auto& frame : out.to_send) {
    auto j = nlohmann::json::parse(frame, nullptr, false);
    if (!j.is_object() || !j.contains("type")) __builtin_trap();
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::rendezvous;
  if (size == 0) return 0;
  const uint8_t flags = data[0];
  std::string_view rest(reinterpret_cast<const char*>(data + 1), size - 1);
  Protocol p((flags & 1) ? Role::consumer : Role::generator, "aaaaaaaaaa", "42");
  bool ice_early = flags & 2;
  bool ice_late = !ice_early && (flags & 4);
  if (ice_early) check(p.send_ice("{\"c\":[]}"));
  try {
    size_t frames = 0;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view frame = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      check(p.on_text(frame));
      if (ice_late && ++frames == 3) check(p.send_ice("{\"c\":[]}"));
    }
  } catch (const peersock::Error&) {
  }
  check(p.finish("errory"));
  check(p.finish("happy"));
  return 0;
}
