// libFuzzer target for ice::decode. Besides "no crash, only
// CounterpartyError", it checks that whatever decodes re-encodes to a body
// that decodes to the same encoding (encode is a fixed point after one trip).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/error.hpp"
#include "peersock/ice/body.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::ice;
  std::string_view body(reinterpret_cast<const char*>(data), size);
  Description d;
  try {
    d = decode(body);
  } catch (const peersock::CounterpartyError&) {
    return 0;
  }
  std::string once = encode(d);
  std::string twice = encode(decode(once));
  if (once != twice) __builtin_trap();
  return 0;
}
