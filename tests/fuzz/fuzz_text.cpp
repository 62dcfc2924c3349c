// libFuzzer target for text::strip_controls, the sanitiser every line to the
// terminal passes (log.cpp) and that relay/peer text goes through. Contract
// checked beyond "no crash": the output holds no C0 byte, no DEL, no C1
// (neither a raw byte outside a well-formed sequence nor U+0080-U+009F
// encoded), no bidi override or isolate, and is well-formed UTF-8; printable
// ASCII input comes out unchanged; sanitising twice changes nothing.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/text.hpp"

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}

// Checks `s` is well-formed UTF-8 without unsafe code points (written
// independently of text.cpp's decoder, by bit patterns).
void check_output(std::string_view s) {
  size_t i = 0;
  while (i < s.size()) {
    const auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x80) {
      require(b >= 0x20 && b != 0x7f);
      ++i;
      continue;
    }
    size_t len = b >= 0xf0 ? 4 : b >= 0xe0 ? 3 : b >= 0xc0 ? 2 : 0;
    require(len != 0 && i + len <= s.size());
    uint32_t cp = b & (0x7f >> len);
    for (size_t k = 1; k < len; ++k) {
      const auto c = static_cast<unsigned char>(s[i + k]);
      require((c & 0xc0) == 0x80);
      cp = (cp << 6) | (c & 0x3f);
    }
    const uint32_t min = len == 2 ? 0x80 : len == 3 ? 0x800 : 0x10000;
    require(cp >= min && cp <= 0x10ffff && !(cp >= 0xd800 && cp <= 0xdfff));
    require(!(cp <= 0x9f) && !(cp >= 0x202a && cp <= 0x202e) && !(cp >= 0x2066 && cp <= 0x2069));
    i += len;
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const std::string out = peersock::text::strip_controls(in);
  check_output(out);
  require(peersock::text::strip_controls(out) == out);
  bool printable_ascii = true;
  for (char c : in) printable_ascii = printable_ascii && c >= 0x20 && c < 0x7f;
  if (printable_ascii) require(out == in);
  return 0;
}
