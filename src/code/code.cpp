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

Code parse(std::string_view typed) {
  size_t begin = 0;
  size_t end = typed.size();
  while (begin < end && is_ascii_space(typed[begin])) ++begin;
  while (end > begin && is_ascii_space(typed[end - 1])) --end;

  std::string normal(typed.substr(begin, end - begin));
  for (char& c : normal) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }

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
  for (size_t i = 1; i < parts.size(); ++i) {
    if (parts[i].empty()) throw UsageError("word " + std::to_string(i) + " of the code is empty");
  }
  check_word_count(parts.size() - 1);

  code.text = code.nameplate;
  for (size_t i = 1; i < parts.size(); ++i) {
    if (word_index(parts[i]) < 0) {
      throw UsageError(quote(parts[i]) + " is not a code word (word " + std::to_string(i) + ")");
    }
    code.text += '-';
    code.text += parts[i];
    code.words.push_back(std::move(parts[i]));
  }
  return code;
}

}  // namespace peersock::code
