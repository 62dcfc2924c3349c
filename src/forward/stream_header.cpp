#include "peersock/forward/stream_header.hpp"

#include <string_view>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::forward {

void check_data_stream_magic(uint8_t first) {
  if (first == kDataStreamMagic) return;
  const char c = static_cast<char>(first);
  throw CounterpartyError("data stream starts with " + text::quote(std::string_view(&c, 1)) + ", expected 'X'");
}

}  // namespace peersock::forward
