// Small text helpers shared by the parsers.
#pragma once

#include <string>
#include <string_view>

namespace peersock::text {

bool is_ascii_space(char c);
std::string_view trim_ascii_space(std::string_view s);

// 'value' in single quotes for error messages. Control bytes, non-ASCII bytes
// and backslashes become \xNN, so bad input cannot garble the user's terminal.
std::string quote(std::string_view s);

// True if the bracket nesting of a JSON text stays within `limit`, ignoring
// brackets inside strings. Not a validator: it runs before the real parser so
// that deep nesting from a peer cannot exhaust nlohmann's recursive parser.
bool json_depth_within(std::string_view text, int limit);

}  // namespace peersock::text
