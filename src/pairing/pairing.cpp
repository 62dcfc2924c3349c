#include "peersock/pairing/pairing.hpp"

#include <fmt/core.h>
#include <openssl/crypto.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>

#include <charconv>
#include <memory>
#include <vector>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::pairing {

namespace {

constexpr std::string_view kMagic = "peersock-pairing 1";
constexpr size_t kMaxFileBytes = 4096;

// HMAC-SHA-256 over the concatenation of `parts`. Errors: Error(failure).
Key hmac(std::span<const uint8_t> key, std::initializer_list<std::string_view> parts) {
  const std::unique_ptr<EVP_MAC, decltype(&EVP_MAC_free)> mac(EVP_MAC_fetch(nullptr, "HMAC", nullptr),
                                                               &EVP_MAC_free);
  // EVP_MAC_CTX_free cleanses the key schedule.
  const std::unique_ptr<EVP_MAC_CTX, decltype(&EVP_MAC_CTX_free)> ctx(mac ? EVP_MAC_CTX_new(mac.get()) : nullptr,
                                                                      &EVP_MAC_CTX_free);
  char digest[] = "SHA256";
  const OSSL_PARAM params[] = {OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST, digest, 0),
                               OSSL_PARAM_construct_end()};
  Key out{};
  size_t len = 0;
  bool ok = ctx && EVP_MAC_init(ctx.get(), key.data(), key.size(), params) == 1;
  for (std::string_view part : parts)
    ok = ok && EVP_MAC_update(ctx.get(), reinterpret_cast<const unsigned char*>(part.data()), part.size()) == 1;
  ok = ok && EVP_MAC_final(ctx.get(), out.data(), &len, out.size()) == 1 && len == out.size();
  if (!ok) throw Error(ExitCode::failure, "HMAC-SHA-256 failed");
  return out;
}

std::string hex(std::span<const uint8_t> bytes) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string s;
  s.reserve(bytes.size() * 2);
  for (uint8_t b : bytes) {
    s += kDigits[b >> 4];
    s += kDigits[b & 15];
  }
  return s;
}

std::optional<Key> parse_key(std::string_view text) {
  if (text.size() != 64) return std::nullopt;
  Key k{};
  for (size_t i = 0; i < k.size(); ++i) {
    auto digit = [](char c) -> int {
      if (c >= '0' && c <= '9') return c - '0';
      if (c >= 'a' && c <= 'f') return c - 'a' + 10;
      return -1;
    };
    int hi = digit(text[2 * i]), lo = digit(text[2 * i + 1]);
    if (hi < 0 || lo < 0) return std::nullopt;
    k[i] = static_cast<uint8_t>(hi << 4 | lo);
  }
  return k;
}

bool printable(std::string_view s) {
  for (char c : s)
    if (c < 0x20 || c > 0x7e) return false;
  return true;
}

}  // namespace

void check_name(std::string_view name) {
  auto bad = [&](std::string_view why) {
    throw UsageError(fmt::format("pairing name {}: {}", text::quote(name), why));
  };
  if (name.empty()) bad("empty");
  if (name.size() > kMaxNameBytes) bad(fmt::format("longer than {} characters", kMaxNameBytes));
  if (name[0] == '.' || name[0] == '-') bad("must not start with '.' or '-'");
  for (char c : name) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '.' || c == '_' ||
              c == '-';
    if (!ok) bad("only letters, digits, '.', '_' and '-' are allowed");
  }
}

std::string clean_label(std::string_view label) {
  std::string out;
  for (char c : label) {
    if (out.size() == kMaxLabelBytes) break;
    if (c >= 0x20 && c <= 0x7e) out += c;
  }
  return out;
}

Key pairing_secret(std::span<const uint8_t, 32> smp_secret) {
  return hmac(smp_secret, {"peersock pairing secret"});
}

Key mailbox_key(const Key& secret) { return hmac(secret, {"peersock pairing mailbox"}); }

Pairing make(std::string name, const Key& secret, std::string label, int64_t now) {
  Pairing p;
  p.name = std::move(name);
  p.secret = secret;
  p.mailbox_key = mailbox_key(secret);
  p.label = clean_label(label);
  p.created = now;
  return p;
}

Pairing forget(Pairing p, int64_t now) {
  if (p.secret) OPENSSL_cleanse(p.secret->data(), p.secret->size());
  p.secret.reset();
  if (p.forgotten == 0) p.forgotten = now;
  return p;
}

uint64_t window_of(int64_t unix_seconds, int64_t window_seconds) {
  return unix_seconds <= 0 ? 0 : static_cast<uint64_t>(unix_seconds / window_seconds);
}

std::string mailbox_id(const Key& mailbox_key, uint64_t window) {
  static constexpr char kBase32[] = "abcdefghijklmnopqrstuvwxyz234567";
  Key mac = hmac(mailbox_key, {"window", std::to_string(window)});
  // 26 characters of 5 bits: 130 bits, of the MAC's first 17 bytes.
  std::string id;
  uint32_t acc = 0;
  int bits = 0;
  for (size_t i = 0; id.size() < 26; ++i) {
    acc = (acc << 8) | mac[i];
    bits += 8;
    while (bits >= 5 && id.size() < 26) {
      bits -= 5;
      id += kBase32[(acc >> bits) & 31];
    }
  }
  return id;
}

Key mac(const Key& key, std::string_view label, std::string_view message) {
  return hmac(key, {label, std::string_view("\0", 1), message});
}

std::string mac_hex(const Key& key, std::string_view label, std::string_view message) {
  return hex(mac(key, label, message));
}

bool mac_equal(std::string_view a, std::string_view b) {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string session_code(const Key& secret, std::string_view client_nonce, std::string_view server_nonce) {
  Key k = hmac(secret, {"peersock pairing code", std::string_view("\0", 1), client_nonce, std::string_view("\0", 1),
                        server_nonce});
  std::string code = hex(k);
  OPENSSL_cleanse(k.data(), k.size());
  return code;
}

std::string format(const Pairing& p) {
  std::string s = fmt::format("{}\n", kMagic);
  if (p.secret) s += fmt::format("secret {}\n", hex(*p.secret));
  s += fmt::format("mailbox-key {}\nlabel {}\ncreated {}\nlast-used {}\n", hex(p.mailbox_key), clean_label(p.label),
                   p.created, p.last_used);
  if (p.forgotten != 0) s += fmt::format("forgotten {}\n", p.forgotten);
  return s;
}

Pairing parse(std::string_view text, std::string_view name) {
  int line_no = 0;
  auto bad = [&](std::string_view what) -> Error {
    return Error(ExitCode::local, fmt::format("pairing {}: line {}: {}", text::quote(name), line_no, what));
  };
  if (text.size() > kMaxFileBytes) {
    line_no = 0;
    throw bad(fmt::format("the file is larger than {} bytes", kMaxFileBytes));
  }
  Pairing p;
  p.name = std::string(name);
  std::vector<std::string_view> seen;
  bool have_mailbox_key = false, have_created = false, have_last_used = false, have_label = false;
  size_t at = 0;
  while (at < text.size()) {
    ++line_no;
    size_t nl = text.find('\n', at);
    if (nl == std::string_view::npos) throw bad("the last line has no newline (a cut-off file?)");
    std::string_view line = text.substr(at, nl - at);
    at = nl + 1;
    if (line_no == 1) {
      if (line != kMagic) throw bad(fmt::format("expected {}, found {}", text::quote(kMagic), text::quote(line)));
      continue;
    }
    size_t sp = line.find(' ');
    std::string_view key = line.substr(0, sp), value = sp == std::string_view::npos ? "" : line.substr(sp + 1);
    if (sp == std::string_view::npos && key != "label") throw bad(fmt::format("no value in {}", text::quote(line)));
    for (std::string_view k : seen)
      if (k == key) throw bad(fmt::format("{} given twice", text::quote(key)));
    seen.push_back(key);
    auto number = [&]() {
      int64_t v = 0;
      auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), v);
      if (ec != std::errc() || end != value.data() + value.size() || v < 0)
        throw bad(fmt::format("{} is not a time in seconds: {}", key, text::quote(value)));
      return v;
    };
    if (key == "secret" || key == "mailbox-key") {
      auto k = parse_key(value);
      if (!k) throw bad(fmt::format("{} is not 64 lowercase hex digits", key));
      if (key == "secret") p.secret = *k;
      else {
        p.mailbox_key = *k;
        have_mailbox_key = true;
      }
    } else if (key == "label") {
      if (!printable(value) || value.size() > kMaxLabelBytes)
        throw bad(fmt::format("label {} is not up to {} printable characters", text::quote(value), kMaxLabelBytes));
      p.label = std::string(value);
      have_label = true;
    } else if (key == "created") {
      p.created = number();
      have_created = true;
    } else if (key == "last-used") {
      p.last_used = number();
      have_last_used = true;
    } else if (key == "forgotten") {
      p.forgotten = number();
      if (p.forgotten == 0) throw bad("forgotten must be a time after 1970");
    } else {
      throw bad(fmt::format("unknown key {}", text::quote(key)));
    }
  }
  ++line_no;
  if (line_no == 1) throw bad("the file is empty");
  if (!have_mailbox_key || !have_created || !have_last_used || !have_label)
    throw bad("incomplete: mailbox-key, label, created and last-used are all required");
  if (p.secret.has_value() == (p.forgotten != 0))
    throw bad(p.secret ? "a forgotten pairing must not keep its secret" : "neither a secret nor forgotten");
  if (p.secret && mailbox_key(*p.secret) != p.mailbox_key) throw bad("mailbox-key does not belong to this secret");
  return p;
}

}  // namespace peersock::pairing
