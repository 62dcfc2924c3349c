// CPace (draft-irtf-cfrg-cpace) with the cipher suite CPACE-RISTR255-SHA512:
// the group ristretto255 and SHA-512, in the initiator-responder setting,
// with the draft's explicit key confirmation (its "Key confirmation"
// section). Every group operation is libsodium's (crypto_core_ristretto255_*,
// crypto_scalarmult_ristretto255); this file only strings the draft's byte
// formats together. Pure functions, so the draft's published test vectors
// pin them (tests/unit/test_pake.cpp).
//
// Why CPace: a balanced PAKE (both sides know the same short code) with one
// message per side that either may send first, which fits a mailbox where
// both sides add their message as soon as it is open; ristretto255 is a
// prime-order group, so there is no cofactor to clear and "decodes and is not
// the identity" is the whole validity check of a received share.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace peersock::pake::cpace {

using Bytes = std::vector<uint8_t>;
inline constexpr size_t kElementBytes = 32;  // encoded ristretto255 element
inline constexpr size_t kScalarBytes = 32;
inline constexpr size_t kIskBytes = 64;  // SHA-512
using Element = std::array<uint8_t, kElementBytes>;
using Scalar = std::array<uint8_t, kScalarBytes>;
using Isk = std::array<uint8_t, kIskBytes>;

// The draft's string helpers: LEB128 length prefix, and lv_cat of several
// strings (each with its length prepended).
Bytes prepend_len(std::string_view s);
Bytes lv_cat(std::initializer_list<std::string_view> parts);
inline std::string_view view(const uint8_t* p, size_t n) { return {reinterpret_cast<const char*>(p), n}; }
template <typename C>
std::string_view view(const C& c) {
  return view(c.data(), c.size());
}

// generator_string(DSI, PRS, CI, sid, 128) with DSI "CPaceRistretto255".
Bytes generator_string(std::string_view prs, std::string_view ci, std::string_view sid);
// The encoded generator: ristretto255's element derivation of
// SHA-512(generator_string(...)).
Element calculate_generator(std::string_view prs, std::string_view ci, std::string_view sid);

// A fresh scalar from libsodium's CSPRNG (uniform in 1..order-1).
Scalar sample_scalar();

// y * g for the generator above. Never fails for a scalar from
// sample_scalar (nonzero, below the group order).
Element scalar_mult(const Scalar& y, const Element& g);
// y * X for a received X; nullopt when X does not decode or the product is
// the identity (the draft's "G.I": the protocol must then abort).
std::optional<Element> scalar_mult_vfy(const Scalar& y, const Element& x);

// transcript_ir(Ya, ADa, Yb, ADb) = lv_cat(Ya, ADa) || lv_cat(Yb, ADb).
Bytes transcript_ir(const Element& ya, std::string_view ada, const Element& yb, std::string_view adb);
// ISK = SHA-512(lv_cat(DSI || "_ISK", sid, K) || transcript_ir(...)).
Isk isk_ir(std::string_view sid, const Element& k, const Element& ya, std::string_view ada, const Element& yb,
           std::string_view adb);

// Explicit key confirmation: mac_key = SHA-512("CPaceMac" || sid || ISK);
// a party's tag = HMAC-SHA-512(mac_key, lv_cat(Y, AD)) over the message it
// sent itself.
using Tag = std::array<uint8_t, 64>;
Tag confirmation_tag(std::string_view sid, const Isk& isk, const Element& y, std::string_view ad);

}  // namespace peersock::pake::cpace
