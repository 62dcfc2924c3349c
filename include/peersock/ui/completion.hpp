// Tab completion of a connection code being typed, like magic-wormhole's:
// before the first separator ('-', a space, ...: code::is_separator) the nameplate (from the mailbox server's list of
// claimed nameplates), after it the words (the compiled-in BIP-39 list, in
// which the first four letters already identify every word). Pure.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace peersock::ui {

struct Completion {
  bool nameplate = false;            // completing the nameplate (not a word)
  std::string insert;                // to insert at the cursor; a unique match ends with '-'
  std::vector<std::string> choices;  // all candidates when there is more than one
};

// `before_cursor` is the typed text up to the cursor (letters in any case).
Completion complete_code(std::string_view before_cursor, const std::vector<std::string>& nameplates);

// Candidates laid out in columns for a terminal `width` wide, at most
// `max_lines` lines ("... and N more" after that). Lines end with "\r\n"
// (the terminal is in raw mode).
std::string format_choices(const std::vector<std::string>& choices, size_t width, size_t max_lines = 8);

}  // namespace peersock::ui
