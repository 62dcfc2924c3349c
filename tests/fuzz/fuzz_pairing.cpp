// libFuzzer target for the pairing file parser (pairing::parse). The file is
// local, but it may have been edited or cut off: a clear Error(local), never a
// crash. Contract: only peersock::Error escapes; an accepted pairing formats
// back to text that parses to the same pairing, and its label is printable.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/error.hpp"
#include "peersock/pairing/pairing.hpp"

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::pairing;
  const std::string_view text(reinterpret_cast<const char*>(data), size);
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
