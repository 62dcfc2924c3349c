// The arithmetic of the Socialist Millionaires' Protocol, computed with
// OpenSSL's BIGNUM, in the exact form libotr 4.x sends and checks it
// (docs/protocol.md §5.3): the same group, the same MPI arrays, the same
// hashes and proofs, so a peer running libotr (the original, our releases up
// to protocol 7) and we verify each other's messages.
//
// Why not libotr itself: its exponentiations (libgcrypt) are on the setup's
// critical path four times, one step after the other. A 1536-bit modular
// exponentiation took 3.5 ms with libgcrypt and 0.96 ms with OpenSSL here
// (2 cores, idle). In a relayed setup at 200 ms RTT (1.50 s), steps 2 to 5
// took 45 + 44 + 28 + 11 = 128 ms with libotr and take 15 + 13 + 10 + 5 =
// 43 ms with this code (tests/bench/setup_timeline.py --keep-logs, the gaps
// around each "auth: SMP message" line). libotr stays as the unit tests'
// reference implementation (test_auth: every step against it, both roles).
//
// Pure computation: no I/O, no clock, no global state (the group lives in
// each Group). Secret exponents go through OpenSSL's constant-time
// exponentiation; exponents the peer sent are public and do not.
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include <openssl/bn.h>

namespace peersock::auth::smp_math {

struct BnFree {
  void operator()(BIGNUM* b) const noexcept { BN_clear_free(b); }
};
using Bn = std::unique_ptr<BIGNUM, BnFree>;

// One value of a message: a group element mod p or an exponent mod q.
using Mpis = std::vector<Bn>;

// libotr's MPI array: a 4-byte big-endian count, then per value a 4-byte
// big-endian length and that many bytes, unsigned big-endian, no leading
// zeros (0 is the empty string).
std::vector<uint8_t> serialize(const Mpis& values);
// The values of `message` if it is an array of exactly `count` values whose
// lengths fit; trailing bytes are ignored, as libotr does. Nothing otherwise.
// Errors: Error(failure) when OpenSSL cannot allocate.
std::optional<Mpis> parse(std::span<const uint8_t> message, uint32_t count);

// The 1536-bit MODP group of RFC 3526 (group 5), p = 2q + 1, generator 2 of
// the subgroup of order q, with the scratch space for computing in it.
// Not thread-safe (the scratch space); one per SMP run.
// Every function's errors: Error(failure) when OpenSSL fails (allocation).
class Group {
 public:
  Group();
  ~Group();
  Group(const Group&) = delete;
  Group& operator=(const Group&) = delete;

  const BIGNUM* g() const { return g_.get(); }

  // 2 <= x <= p - 2 and x lies in the subgroup of order q. libotr checks
  // only the range; an element of order 2q lets a peer learn the parity of
  // our exponents from our reply. p is a safe prime, so the subgroup is the
  // quadratic residues and the Legendre symbol decides (0.09 ms, where
  // x^q = 1 is an exponentiation).
  bool is_element(const BIGNUM* x) const;
  // 1 <= x <= q - 1 (libotr's check_expon).
  bool is_exponent(const BIGNUM* x) const;

  // Uniform in [1, q - 1], from OpenSSL's private DRBG.
  Bn random_exponent() const;
  // base^e mod p for a secret e (constant time in e).
  Bn pow_secret(const BIGNUM* base, const BIGNUM* e) const;
  // base^e mod p, and a^x * b^y mod p, for public exponents (the peer's).
  Bn pow(const BIGNUM* base, const BIGNUM* e) const;
  Bn pow2(const BIGNUM* a, const BIGNUM* x, const BIGNUM* b, const BIGNUM* y) const;
  Bn mul_p(const BIGNUM* a, const BIGNUM* b) const;
  // a / b mod p; b is a checked element, so never 0.
  Bn div_p(const BIGNUM* a, const BIGNUM* b) const;
  // (r - x c) mod q: the response of every proof.
  Bn response(const BIGNUM* r, const BIGNUM* x, const BIGNUM* c) const;

  // SHA-256 of the version byte and one or two values, each as a 4-byte
  // length and its bytes (libotr's otrl_sm_hash), as a number.
  Bn hash(uint8_t version, const BIGNUM* a, const BIGNUM* b = nullptr) const;

 private:
  struct Scratch;
  Bn p_, q_, g_, p_minus_2_;
  std::unique_ptr<Scratch> scratch_;
};

// Proof of knowledge of x with y = g^x: (c, d). Verified by
// g^d y^c hashing to c.
struct KnowLog {
  Bn c, d;
};
KnowLog prove_know_log(const Group& group, const BIGNUM* x, uint8_t version);
bool check_know_log(const Group& group, const BIGNUM* c, const BIGNUM* d, const BIGNUM* y, uint8_t version);

// Proof that P = g3^r and Q = g^r g2^s use the same r (and some s): (c, d1, d2).
struct EqualCoords {
  Bn c, d1, d2;
};
EqualCoords prove_equal_coords(const Group& group, const BIGNUM* g2, const BIGNUM* g3, const BIGNUM* r,
                               const BIGNUM* s, uint8_t version);
bool check_equal_coords(const Group& group, const BIGNUM* g2, const BIGNUM* g3, const EqualCoords& proof,
                        const BIGNUM* p, const BIGNUM* q, uint8_t version);

// Proof that R = qab^x for the x of g3own = g^x: (c, d).
struct EqualLogs {
  Bn c, d;
};
EqualLogs prove_equal_logs(const Group& group, const BIGNUM* qab, const BIGNUM* x, uint8_t version);
bool check_equal_logs(const Group& group, const BIGNUM* qab, const BIGNUM* g3other, const EqualLogs& proof,
                      const BIGNUM* r, uint8_t version);

}  // namespace peersock::auth::smp_math
