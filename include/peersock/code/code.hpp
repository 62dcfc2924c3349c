// Connection codes: NAMEPLATE-w1-...-wN with words from the BIP-39 English list.
//
// The whole code string (nameplate and dashes included) is the password that
// enters authentication, exactly as the original peersock uses it.
#pragma once

#include <array>
#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace peersock::code {

inline constexpr int kDefaultWords = 4;
inline constexpr int kMinWords = 2;
inline constexpr int kMaxWords = 8;
inline constexpr size_t kWordCount = 2048;

// The compiled-in BIP-39 English list, sorted, 2048 entries.
const std::array<std::string_view, kWordCount>& wordlist();

// Index of `word` in the list, or -1.
int word_index(std::string_view word);

// Draws `words` words uniformly and independently from OpenSSL's CSPRNG
// (11 bits each, so no modulo bias) and joins them after `nameplate`.
// Errors: UsageError if `words` is outside [kMinWords, kMaxWords] or the
// nameplate is not decimal digits; Error(failure) if the CSPRNG fails.
std::string generate(std::string_view nameplate, int words = kDefaultWords);

struct Code {
  std::string nameplate;           // decimal digits, as the mailbox server requires
  std::vector<std::string> words;  // each from the list
  std::string text;                // the normalised code: what enters auth
};

// Validates a typed code. Surrounding whitespace is trimmed and ASCII letters
// are lowercased; nothing else is changed. Errors: UsageError naming the bad
// part, e.g. "nameplate 'x7' is not a number" or "'zebraa' is not a code word".
Code parse(std::string_view typed);

}  // namespace peersock::code
