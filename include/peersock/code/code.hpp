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

// What people put between the parts of a code when they read it out or
// retype it: ASCII whitespace, '-', ',', '.', ';', ':', '_' and '/'.
bool is_separator(char c);

// The canonical form of a typed code, before validation: ASCII letters
// lowercased, every run of separators (is_separator, and the UTF-8 no-break
// space and dashes that chat programs put in place of ' ' and '-') one '-',
// none at either end. "3 eight, Dinosaur toward-demise." becomes
// "3-eight-dinosaur-toward-demise". Other bytes are kept as they are.
std::string normalize(std::string_view typed);

// The list's words nearest to `word` (not in the list): at the smallest
// edit distance (insert, delete, substitute, swap two neighbours) when that
// is 1 (words up to 4 letters) or 2 (longer ones), else the one word that
// `word` (4 letters or more) begins. At most 3, in list order; empty when
// nothing is close or too many are equally close.
std::vector<std::string_view> nearest_words(std::string_view word);

// Validates a typed code after normalize(). Errors: UsageError naming the
// bad part, e.g. "nameplate 'x7' is not a number", "'zebraa' is not a code
// word (word 2)", or with a near word "'excses' is not a code word; did you
// mean 'excess'?".
Code parse(std::string_view typed);

}  // namespace peersock::code
