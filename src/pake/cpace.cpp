// CPace on ristretto255/SHA-512 (cpace.hpp). The byte layouts follow the
// draft's appendix; libsodium does all group arithmetic and hashing.
#include "peersock/pake/cpace.hpp"

#include <sodium.h>

#include <cassert>

#include "peersock/error.hpp"

namespace peersock::pake::cpace {
namespace {

constexpr std::string_view kDsi = "CPaceRistretto255";
constexpr std::string_view kDsiIsk = "CPaceRistretto255_ISK";
constexpr size_t kSha512BlockBytes = 128;  // H.s_in_bytes

// libsodium must be initialised before its random generator is used; the
// call is idempotent and thread-safe.
void ensure_sodium() {
  if (sodium_init() < 0) throw Error(ExitCode::failure, "libsodium could not be initialised");
}

void append(Bytes& out, std::string_view s) { out.insert(out.end(), s.begin(), s.end()); }

// The LEB128 encoding of a length: 7 bits at a time, least significant
// first.
Bytes leb128(size_t n) {
  Bytes out;
  do {
    uint8_t byte = n & 0x7f;
    n >>= 7;
    if (n != 0) byte |= 0x80;
    out.push_back(byte);
  } while (n != 0);
  return out;
}

std::array<uint8_t, 64> sha512(const Bytes& in) {
  std::array<uint8_t, 64> out;
  crypto_hash_sha512(out.data(), in.data(), in.size());
  return out;
}

}  // namespace

Bytes prepend_len(std::string_view s) { return lv_cat({s}); }

// The code passes through here (PRS): the result is built in one
// allocation of the right size, so that no reallocation leaves a copy of it
// in freed memory; the caller wipes the result.
Bytes lv_cat(std::initializer_list<std::string_view> parts) {
  size_t total = 0;
  for (std::string_view p : parts) total += leb128(p.size()).size() + p.size();
  Bytes out;
  out.reserve(total);
  for (std::string_view p : parts) {
    Bytes len = leb128(p.size());
    out.insert(out.end(), len.begin(), len.end());
    append(out, p);
  }
  return out;
}

Bytes generator_string(std::string_view prs, std::string_view ci, std::string_view sid) {
  // The zero padding makes DSI, PRS and the padding fill the first hash
  // block, so that a short code's length does not change the work done.
  const size_t used = leb128(prs.size()).size() + prs.size() + leb128(kDsi.size()).size() + kDsi.size() + 1;
  const std::string zpad(used < kSha512BlockBytes ? kSha512BlockBytes - used : 0, '\0');
  return lv_cat({kDsi, prs, zpad, ci, sid});
}

Element calculate_generator(std::string_view prs, std::string_view ci, std::string_view sid) {
  ensure_sodium();
  Bytes gen_str = generator_string(prs, ci, sid);
  auto hash = sha512(gen_str);
  sodium_memzero(gen_str.data(), gen_str.size());
  Element g;
  crypto_core_ristretto255_from_hash(g.data(), hash.data());
  sodium_memzero(hash.data(), hash.size());
  return g;
}

Scalar sample_scalar() {
  ensure_sodium();
  Scalar y;
  crypto_core_ristretto255_scalar_random(y.data());
  return y;
}

Element scalar_mult(const Scalar& y, const Element& g) {
  auto out = scalar_mult_vfy(y, g);
  // The generator is a valid non-identity element of a prime-order group
  // and y is in 1..order-1, so the product is never the identity.
  if (!out) throw Error(ExitCode::failure, "CPace: the generator times our scalar is the identity");
  return *out;
}

std::optional<Element> scalar_mult_vfy(const Scalar& y, const Element& x) {
  ensure_sodium();
  Element out;
  // Fails (-1) when x is not a canonical ristretto255 encoding or the
  // product is the identity element.
  if (crypto_scalarmult_ristretto255(out.data(), y.data(), x.data()) != 0) return std::nullopt;
  return out;
}

Bytes transcript_ir(const Element& ya, std::string_view ada, const Element& yb, std::string_view adb) {
  Bytes out = lv_cat({view(ya), ada});
  Bytes b = lv_cat({view(yb), adb});
  out.insert(out.end(), b.begin(), b.end());
  return out;
}

Isk isk_ir(std::string_view sid, const Element& k, const Element& ya, std::string_view ada, const Element& yb,
           std::string_view adb) {
  Bytes t = transcript_ir(ya, ada, yb, adb);
  Bytes in = lv_cat({kDsiIsk, sid, view(k)});
  in.reserve(in.size() + t.size());  // K is secret: no copy left behind by a reallocation
  in.insert(in.end(), t.begin(), t.end());
  Isk isk = sha512(in);
  sodium_memzero(in.data(), in.size());
  return isk;
}

Tag confirmation_tag(std::string_view sid, const Isk& isk, const Element& y, std::string_view ad) {
  Bytes key_in;
  key_in.reserve(8 + sid.size() + isk.size());
  append(key_in, "CPaceMac");
  append(key_in, sid);
  append(key_in, view(isk));
  auto mac_key = sha512(key_in);
  sodium_memzero(key_in.data(), key_in.size());
  Bytes msg = lv_cat({view(y), ad});
  Tag tag;
  crypto_auth_hmacsha512_state st;
  crypto_auth_hmacsha512_init(&st, mac_key.data(), mac_key.size());
  crypto_auth_hmacsha512_update(&st, msg.data(), msg.size());
  crypto_auth_hmacsha512_final(&st, tag.data());
  sodium_memzero(mac_key.data(), mac_key.size());
  sodium_memzero(&st, sizeof st);
  return tag;
}

}  // namespace peersock::pake::cpace
