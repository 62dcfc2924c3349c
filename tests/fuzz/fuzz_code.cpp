// libFuzzer target for code::parse, which reads what the user typed (or what
// PEERSOCK_CODE / a code file holds). Contract checked beyond "no crash":
// only UsageError escapes; an accepted code is normalised (parse of its own
// text gives the same text, nameplate and words) and every word is in the
// list; the text never contains whitespace or upper-case letters.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "peersock/code/code.hpp"
#include "peersock/error.hpp"

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::code;
  const std::string_view typed(reinterpret_cast<const char*>(data), size);
  Code code;
  try {
    code = parse(typed);
  } catch (const peersock::UsageError&) {
    return 0;
  }
  require(!code.nameplate.empty() && code.words.size() >= static_cast<size_t>(kMinWords) &&
          code.words.size() <= static_cast<size_t>(kMaxWords));
  for (const auto& w : code.words) require(word_index(w) >= 0);
  for (char c : code.text) require(c == '-' || (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z'));
  const Code again = parse(code.text);
  require(again.text == code.text && again.nameplate == code.nameplate && again.words == code.words);
  return 0;
}
