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

// The one sanitiser for text that came from the relay or the peer (and for
// every line peersock writes to a terminal, which may contain such text):
// each control character -- C0 (newline and tab included), DEL, C1 as a raw
// byte or UTF-8 encoded (U+0080-U+009F, which UTF-8 terminals such as xterm
// execute) -- the bidirectional overrides and isolates (U+202A-U+202E,
// U+2066-U+2069, which reorder what the reader sees), and every byte that is
// not part of well-formed UTF-8 become '?'. Printable ASCII and other
// well-formed UTF-8 pass unchanged, so the result is one line that cannot
// move the cursor, start an escape sequence or fake a line of its own.
std::string strip_controls(std::string_view s);

// True if the bracket nesting of a JSON text stays within `limit`, ignoring
// brackets inside strings. Not a validator: it runs before the real parser so
// that deep nesting from a peer cannot exhaust nlohmann's recursive parser.
bool json_depth_within(std::string_view text, int limit);

}  // namespace peersock::text
