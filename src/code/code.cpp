#include "peersock/code/code.hpp"

#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/rand.h>

#include <algorithm>
#include <cstdint>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::code {

using text::is_ascii_space;
using text::quote;

// Defined in the bip39_wordlist.cpp that gen_wordlist.py generates at build
// time; the generator guarantees 2048 sorted lowercase entries.
extern const std::array<std::string_view, kWordCount> kBip39English;

namespace {

// The mailbox server treats nameplates as short decimal strings; nine digits
// keeps them well inside any integer type a server might use.
constexpr size_t kMaxNameplateDigits = 9;

bool all_digits(std::string_view s) {
  return std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

void check_nameplate(std::string_view nameplate) {
  if (nameplate.empty() || !all_digits(nameplate)) {
    throw UsageError("nameplate " + quote(nameplate) + " is not a number");
  }
  if (nameplate.size() > kMaxNameplateDigits) {
    throw UsageError("nameplate " + quote(nameplate) + " is too long: at most " + std::to_string(kMaxNameplateDigits) +
                     " digits");
  }
}

// The count is reported without quoting the code: its words are the secret.
void check_word_count(size_t words) {
  if (words < static_cast<size_t>(kMinWords) || words > static_cast<size_t>(kMaxWords)) {
    throw UsageError("code has " + std::to_string(words) + (words == 1 ? " word" : " words") + ": expected " +
                     std::to_string(kMinWords) + " to " + std::to_string(kMaxWords));
  }
}

}  // namespace

const std::array<std::string_view, kWordCount>& wordlist() { return kBip39English; }

int word_index(std::string_view word) {
  const auto it = std::lower_bound(kBip39English.begin(), kBip39English.end(), word);
  if (it == kBip39English.end() || *it != word) return -1;
  return static_cast<int>(it - kBip39English.begin());
}

std::string generate(std::string_view nameplate, int words) {
  check_nameplate(nameplate);
  if (words < kMinWords || words > kMaxWords) {
    throw UsageError("word count " + std::to_string(words) + " is out of range: expected " + std::to_string(kMinWords) +
                     " to " + std::to_string(kMaxWords));
  }

  // Two bytes per word, of which the low 11 bits are kept: 2^16 is a multiple
  // of 2048, so every index is exactly equally likely.
  std::array<unsigned char, 2 * kMaxWords> random{};
  const int needed = 2 * words;
  if (RAND_bytes(random.data(), needed) != 1) {
    const unsigned long err = ERR_get_error();
    char reason[256] = "unknown error";
    if (err != 0) ERR_error_string_n(err, reason, sizeof reason);
    ERR_clear_error();
    throw Error(ExitCode::failure, std::string("cannot draw random code words: ") + reason);
  }

  std::string code(nameplate);
  for (int i = 0; i < words; ++i) {
    const unsigned bits = (static_cast<unsigned>(random[2 * i]) << 8 | random[2 * i + 1]) & 0x7ffu;
    code += '-';
    code += kBip39English[bits];
  }
  // The raw draw determines the password; don't leave it on the stack.
  OPENSSL_cleanse(random.data(), random.size());
  return code;
}

bool is_separator(char c) {
  switch (c) {
    case '-':
    case ',':
    case '.':
    case ';':
    case ':':
    case '_':
    case '/': return true;
    default: return is_ascii_space(c);
  }
}

namespace {

// UTF-8 sequences that stand for a separator: NO-BREAK SPACE, HYPHEN,
// NON-BREAKING HYPHEN, FIGURE DASH, EN DASH, EM DASH, HORIZONTAL BAR, MINUS
// SIGN. (Chat programs turn "--" into a dash, and copied text has no-break
// spaces.) Returns the sequence's length at the start of `s`, or 0.
size_t separator_sequence(std::string_view s) {
  if (s.size() >= 2 && s[0] == '\xc2' && s[1] == '\xa0') return 2;
  if (s.size() >= 3 && s[0] == '\xe2' && s[1] == '\x80' && s[2] >= '\x90' && s[2] <= '\x95') return 3;
  if (s.size() >= 3 && s[0] == '\xe2' && s[1] == '\x88' && s[2] == '\x92') return 3;
  return 0;
}

// Optimal string alignment distance (Levenshtein plus swaps of neighbours),
// or a value above `limit` once it is certain to exceed it.
size_t edit_distance(std::string_view a, std::string_view b, size_t limit) {
  if ((a.size() > b.size() ? a.size() - b.size() : b.size() - a.size()) > limit) return limit + 1;
  constexpr size_t kMax = 32;
  if (a.size() >= kMax || b.size() >= kMax) return limit + 1;
  std::array<std::array<size_t, kMax>, kMax> d;  // only [0, a.size()] x [0, b.size()] is used
  for (size_t i = 0; i <= a.size(); ++i) d[i][0] = i;
  for (size_t j = 0; j <= b.size(); ++j) d[0][j] = j;
  for (size_t i = 1; i <= a.size(); ++i) {
    for (size_t j = 1; j <= b.size(); ++j) {
      const size_t cost = a[i - 1] == b[j - 1] ? 0 : 1;
      d[i][j] = std::min({d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost});
      if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i][j] = std::min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.size()][b.size()];
}

std::string did_you_mean(const std::vector<std::string_view>& words) {
  std::string out = "did you mean ";
  for (size_t i = 0; i < words.size(); ++i) {
    if (i > 0) out += i + 1 == words.size() ? " or " : ", ";
    out += quote(words[i]);
  }
  return out + "?";
}

}  // namespace

std::string normalize(std::string_view typed) {
  std::string out;
  // Never longer than the input: reserved once, so that no reallocation
  // leaves a copy of the secret in freed heap.
  out.reserve(typed.size());
  bool pending_separator = false;
  size_t i = 0;
  while (i < typed.size()) {
    size_t n = separator_sequence(typed.substr(i));
    if (n == 0 && is_separator(typed[i])) n = 1;
    if (n > 0) {
      pending_separator = true;
      i += n;
      continue;
    }
    if (pending_separator && !out.empty()) out += '-';
    pending_separator = false;
    char c = typed[i++];
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
    out += c;
  }
  return out;
}

std::vector<std::string_view> nearest_words(std::string_view word) {
  std::vector<std::string_view> best;
  if (word.empty() || word_index(word) >= 0) return best;
  const size_t limit = word.size() <= 4 ? 1 : 2;
  size_t best_distance = limit + 1;
  for (std::string_view candidate : kBip39English) {
    const size_t d = edit_distance(word, candidate, limit);
    if (d > limit || d > best_distance) continue;
    if (d < best_distance) {
      best_distance = d;
      best.clear();
    }
    best.push_back(candidate);
  }
  if (best.size() > 3) best.clear();
  if (best.empty() && word.size() >= 4) {
    // The first four letters identify every word of the list.
    auto it = std::lower_bound(kBip39English.begin(), kBip39English.end(), word);
    if (it != kBip39English.end() && it->substr(0, word.size()) == word) best.push_back(*it);
  }
  return best;
}

Code parse(std::string_view typed) {
  std::string normal = normalize(typed);
  std::vector<std::string> parts;
  // The typed code is a secret: our working copies are overwritten when
  // parse returns (also on errors), so that no freed heap block keeps it.
  // (A moved-from short string keeps its characters in place, hence parts
  // too.) The caller's own copies are the caller's business.
  struct Wipe {
    std::string& normal;
    std::vector<std::string>& parts;
    ~Wipe() {
      OPENSSL_cleanse(normal.data(), normal.capacity());
      for (auto& p : parts) OPENSSL_cleanse(p.data(), p.capacity());
    }
  } wipe{normal, parts};
  size_t start = 0;
  for (;;) {
    const size_t dash = normal.find('-', start);
    parts.emplace_back(normal.substr(start, dash == std::string::npos ? std::string::npos : dash - start));
    if (dash == std::string::npos) break;
    start = dash + 1;
  }

  Code code;
  code.nameplate = std::move(parts.front());
  check_nameplate(code.nameplate);
  if (parts.size() == 1) {
    throw UsageError("code " + quote(normal) + " has no words: expected NAMEPLATE-WORD-WORD...");
  }
  check_word_count(parts.size() - 1);

  code.text = code.nameplate;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (word_index(parts[i]) < 0) {
      const auto near = nearest_words(parts[i]);
      if (!near.empty()) throw UsageError(quote(parts[i]) + " is not a code word; " + did_you_mean(near));
      throw UsageError(quote(parts[i]) + " is not a code word (word " + std::to_string(i) + ")");
    }
    code.text += '-';
    code.text += parts[i];
    code.words.push_back(std::move(parts[i]));
  }
  return code;
}

}  // namespace peersock::code
