// libFuzzer target for rendezvous::Protocol::on_text: the whole input drives
// one session. Byte 0 picks the role (and whether/when send_ice and
// list_nameplates are called);
// the rest is split at '\n' into server frames. Error/CounterpartyError are
// the documented outcome for bad input; anything else escaping, a crash, or
// an outgoing frame that is not a JSON object is a bug.
#include <cstddef>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string_view>
#include <variant>

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
  // Bits 0-1: role (generator, consumer, lister -- the prompt's nameplate
  // completion; 3 = consumer that also lists); bits 2-3: when send_ice runs.
  const unsigned role_bits = flags & 3;
  const Role role = role_bits == 0 ? Role::generator : role_bits == 2 ? Role::lister : Role::consumer;
  Protocol p(role, "aaaaaaaaaa", "42");
  bool lists = role == Role::lister || role_bits == 3;
  bool ice_early = role != Role::lister && (flags & 4);
  bool ice_late = role != Role::lister && !ice_early && (flags & 8);
  if (lists) check(p.list_nameplates());
  if (ice_early) check(p.send_ice("{\"c\":[]}"));
  try {
    size_t frames = 0;
    while (!rest.empty()) {
      size_t nl = rest.find('\n');
      std::string_view frame = rest.substr(0, nl);
      rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
      Output out = p.on_text(frame);
      check(out);
      for (const auto& ev : out.events) {
        // Listed nameplates are offered for completion: digits only, bounded.
        if (auto* n = std::get_if<peersock::rendezvous::event::Nameplates>(&ev)) {
          if (n->ids.size() > peersock::rendezvous::kMaxListedNameplates) __builtin_trap();
        }
      }
      if (ice_late && ++frames == 3) check(p.send_ice("{\"c\":[]}"));
    }
  } catch (const peersock::Error&) {
  }
  check(p.finish("errory"));
  check(p.finish("happy"));
  return 0;
}
