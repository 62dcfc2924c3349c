// libFuzzer target for the pairing parsers: the pairing file
// (pairing::parse; local, but it may have been edited or cut off: a clear
// Error(local), never a crash) and the hello bodies any writer to the relay
// can put into a pair's mailbox (pairing::Hello, both roles). Contract: only
// peersock::Error escapes parse; an accepted pairing formats back to text
// that parses to the same pairing, and its label is printable; Hello never
// throws and never pairs on a body it did not MAC itself.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/error.hpp"
#include "peersock/pairing/hello.hpp"
#include "peersock/pairing/pairing.hpp"

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::pairing;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  // Hello: the first byte picks the phase, the rest is the body.
  if (size > 0) {
    static const char* kPhases[] = {"pair-hello", "pair-welcome", "pair-forgotten", "ice"};
    Key k{};
    k.fill(1);
    Pairing p = make("fuzz", k, "", 1);
    for (auto role : {Hello::Role::client, Hello::Role::server}) {
      Hello h(role, p, 7, std::string(32, 'a'));
      auto out = h.on_message(kPhases[data[0] % 4], text.substr(1), 4200, std::string(32, 'b'));
      // A body made without the key cannot pair or tell us anything.
      require(out.events.empty());
    }
  }
  try {
    Pairing p = parse(text, "fuzz");
    for (char c : p.label) require(c >= 0x20 && c <= 0x7e);
    require(p.secret.has_value() == (p.forgotten == 0));
    Pairing q = parse(format(p), "fuzz");
    require(q.secret == p.secret && q.mailbox_key == p.mailbox_key && q.label == p.label &&
            q.created == p.created && q.last_used == p.last_used && q.forgotten == p.forgotten);
  } catch (const peersock::Error&) {
  }
  return 0;
}
