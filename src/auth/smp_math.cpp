// SMP arithmetic on OpenSSL's BIGNUM (see smp_math.hpp for why).

#include "smp_math.hpp"

#include <string>

#include <openssl/evp.h>

#include "peersock/auth/smp.hpp"
#include "peersock/error.hpp"

namespace peersock::auth::smp_math {

namespace {

[[noreturn]] void fail(const char* what) { throw Error(ExitCode::failure, std::string("OpenSSL: ") + what); }

Bn take(BIGNUM* raw, const char* what) {
  if (raw == nullptr) fail(what);
  return Bn(raw);
}

Bn fresh() { return take(BN_new(), "cannot allocate a number"); }

void put_u32(std::vector<uint8_t>& out, size_t v) {
  for (int shift = 24; shift >= 0; shift -= 8) out.push_back(static_cast<uint8_t>(v >> shift));
}

// The bytes a value is hashed and sent as (libgcrypt's GCRYMPI_FMT_USG).
void put_mpi(std::vector<uint8_t>& out, const BIGNUM* v) {
  const int n = BN_num_bytes(v);
  put_u32(out, static_cast<size_t>(n));
  const size_t at = out.size();
  out.resize(at + static_cast<size_t>(n));
  if (n > 0) BN_bn2bin(v, out.data() + at);
}

}  // namespace

std::vector<uint8_t> serialize(const Mpis& values) {
  std::vector<uint8_t> out;
  put_u32(out, values.size());
  for (const Bn& v : values) put_mpi(out, v.get());
  return out;
}

std::optional<Mpis> parse(std::span<const uint8_t> message, uint32_t count) {
  auto read_u32 = [&](uint32_t& v) {
    if (message.size() < 4) return false;
    v = (uint32_t{message[0]} << 24) | (uint32_t{message[1]} << 16) | (uint32_t{message[2]} << 8) | message[3];
    message = message.subspan(4);
    return true;
  };
  uint32_t n = 0;
  if (!read_u32(n) || n != count) return std::nullopt;
  Mpis values;
  values.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len = 0;
    if (!read_u32(len) || len > message.size()) return std::nullopt;
    values.push_back(take(BN_bin2bn(message.data(), static_cast<int>(len), nullptr), "cannot read a number"));
    message = message.subspan(len);
  }
  return values;
}

struct Group::Scratch {
  std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx{BN_CTX_new(), &BN_CTX_free};
  std::unique_ptr<BN_MONT_CTX, decltype(&BN_MONT_CTX_free)> mont{BN_MONT_CTX_new(), &BN_MONT_CTX_free};
};

Group::Group() : scratch_(std::make_unique<Scratch>()) {
  if (!scratch_->ctx || !scratch_->mont) fail("cannot allocate the SMP group's scratch space");
  BIGNUM* raw = nullptr;
  const std::string hex(kSmpModulusHex);
  if (BN_hex2bn(&raw, hex.c_str()) == 0) fail("cannot read the SMP modulus");
  p_ = Bn(raw);
  q_ = take(BN_dup(p_.get()), "cannot copy the modulus");
  g_ = fresh();
  p_minus_2_ = take(BN_dup(p_.get()), "cannot copy the modulus");
  if (BN_rshift1(q_.get(), q_.get()) != 1 || BN_set_word(g_.get(), 2) != 1 || BN_sub_word(p_minus_2_.get(), 2) != 1 ||
      BN_MONT_CTX_set(scratch_->mont.get(), p_.get(), scratch_->ctx.get()) != 1)
    fail("cannot set up the SMP group");
}

Group::~Group() = default;

bool Group::is_element(const BIGNUM* x) const {
  if (BN_is_negative(x) || BN_cmp(x, g_.get()) < 0 || BN_cmp(x, p_minus_2_.get()) > 0) return false;
  const int symbol = BN_kronecker(x, p_.get(), scratch_->ctx.get());
  if (symbol == -2) fail("cannot compute a Legendre symbol");
  return symbol == 1;
}

bool Group::is_exponent(const BIGNUM* x) const {
  return !BN_is_negative(x) && !BN_is_zero(x) && BN_cmp(x, q_.get()) < 0;
}

Bn Group::random_exponent() const {
  Bn r = fresh();
  do {
    if (BN_priv_rand_range(r.get(), q_.get()) != 1) fail("cannot draw a random exponent");
  } while (BN_is_zero(r.get()));
  BN_set_flags(r.get(), BN_FLG_CONSTTIME);
  return r;
}

Bn Group::pow_secret(const BIGNUM* base, const BIGNUM* e) const {
  Bn r = fresh();
  if (BN_mod_exp_mont_consttime(r.get(), base, e, p_.get(), scratch_->ctx.get(), scratch_->mont.get()) != 1)
    fail("constant-time exponentiation failed");
  return r;
}

Bn Group::pow(const BIGNUM* base, const BIGNUM* e) const {
  Bn r = fresh();
  if (BN_mod_exp_mont(r.get(), base, e, p_.get(), scratch_->ctx.get(), scratch_->mont.get()) != 1)
    fail("exponentiation failed");
  return r;
}

Bn Group::pow2(const BIGNUM* a, const BIGNUM* x, const BIGNUM* b, const BIGNUM* y) const {
  Bn r = fresh();
  if (BN_mod_exp2_mont(r.get(), a, x, b, y, p_.get(), scratch_->ctx.get(), scratch_->mont.get()) != 1)
    fail("exponentiation failed");
  return r;
}

Bn Group::mul_p(const BIGNUM* a, const BIGNUM* b) const {
  Bn r = fresh();
  if (BN_mod_mul(r.get(), a, b, p_.get(), scratch_->ctx.get()) != 1) fail("multiplication failed");
  return r;
}

Bn Group::div_p(const BIGNUM* a, const BIGNUM* b) const {
  const Bn inverse = take(BN_mod_inverse(nullptr, b, p_.get(), scratch_->ctx.get()), "inversion failed");
  return mul_p(a, inverse.get());
}

Bn Group::response(const BIGNUM* r, const BIGNUM* x, const BIGNUM* c) const {
  Bn xc = fresh();
  Bn d = fresh();
  if (BN_mod_mul(xc.get(), x, c, q_.get(), scratch_->ctx.get()) != 1 ||
      BN_mod_sub(d.get(), r, xc.get(), q_.get(), scratch_->ctx.get()) != 1)
    fail("arithmetic mod q failed");
  return d;
}

Bn Group::hash(uint8_t version, const BIGNUM* a, const BIGNUM* b) const {
  std::vector<uint8_t> input{version};
  put_mpi(input, a);
  if (b != nullptr) put_mpi(input, b);
  unsigned char digest[32];
  unsigned int len = 0;
  if (EVP_Digest(input.data(), input.size(), digest, &len, EVP_sha256(), nullptr) != 1 || len != sizeof digest)
    fail("SHA-256 failed");
  return take(BN_bin2bn(digest, static_cast<int>(len), nullptr), "cannot read a hash");
}

namespace {

// A c the peer sent that no SHA-256 output can equal; rejected before it
// costs an exponentiation (a frame may carry a 4 KB "c").
bool hash_sized(const BIGNUM* c) { return !BN_is_negative(c) && BN_num_bits(c) <= 256; }

}  // namespace

KnowLog prove_know_log(const Group& group, const BIGNUM* x, uint8_t version) {
  const Bn r = group.random_exponent();
  const Bn gr = group.pow_secret(group.g(), r.get());
  KnowLog proof{group.hash(version, gr.get()), nullptr};
  proof.d = group.response(r.get(), x, proof.c.get());
  return proof;
}

bool check_know_log(const Group& group, const BIGNUM* c, const BIGNUM* d, const BIGNUM* y, uint8_t version) {
  if (!hash_sized(c)) return false;
  const Bn gdyc = group.pow2(group.g(), d, y, c);
  return BN_cmp(group.hash(version, gdyc.get()).get(), c) == 0;
}

EqualCoords prove_equal_coords(const Group& group, const BIGNUM* g2, const BIGNUM* g3, const BIGNUM* r,
                               const BIGNUM* s, uint8_t version) {
  const Bn r1 = group.random_exponent();
  const Bn r2 = group.random_exponent();
  const Bn t1 = group.pow_secret(g3, r1.get());
  const Bn g_r1 = group.pow_secret(group.g(), r1.get());
  const Bn g2_r2 = group.pow_secret(g2, r2.get());
  const Bn t2 = group.mul_p(g_r1.get(), g2_r2.get());
  EqualCoords proof{group.hash(version, t1.get(), t2.get()), nullptr, nullptr};
  proof.d1 = group.response(r1.get(), r, proof.c.get());
  proof.d2 = group.response(r2.get(), s, proof.c.get());
  return proof;
}

bool check_equal_coords(const Group& group, const BIGNUM* g2, const BIGNUM* g3, const EqualCoords& proof,
                        const BIGNUM* p, const BIGNUM* q, uint8_t version) {
  const BIGNUM* c = proof.c.get();
  if (!hash_sized(c)) return false;
  // g3^d1 p^c and g^d1 g2^d2 q^c.
  const Bn t1 = group.pow2(g3, proof.d1.get(), p, c);
  const Bn t2a = group.pow2(group.g(), proof.d1.get(), g2, proof.d2.get());
  const Bn qc = group.pow(q, c);
  const Bn t2 = group.mul_p(t2a.get(), qc.get());
  return BN_cmp(group.hash(version, t1.get(), t2.get()).get(), c) == 0;
}

EqualLogs prove_equal_logs(const Group& group, const BIGNUM* qab, const BIGNUM* x, uint8_t version) {
  const Bn r = group.random_exponent();
  const Bn t1 = group.pow_secret(group.g(), r.get());
  const Bn t2 = group.pow_secret(qab, r.get());
  EqualLogs proof{group.hash(version, t1.get(), t2.get()), nullptr};
  proof.d = group.response(r.get(), x, proof.c.get());
  return proof;
}

bool check_equal_logs(const Group& group, const BIGNUM* qab, const BIGNUM* g3other, const EqualLogs& proof,
                      const BIGNUM* r, uint8_t version) {
  const BIGNUM* c = proof.c.get();
  if (!hash_sized(c)) return false;
  // g^d g3other^c and qab^d r^c.
  const Bn t1 = group.pow2(group.g(), proof.d.get(), g3other, c);
  const Bn t2 = group.pow2(qab, proof.d.get(), r, c);
  return BN_cmp(group.hash(version, t1.get(), t2.get()).get(), c) == 0;
}

}  // namespace peersock::auth::smp_math
