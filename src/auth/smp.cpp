// Authentication layer (docs/protocol.md §5): secret derivation, auth-stream
// framing and one SMP run, message for message the run libotr's
// otrl_sm_step1..5 compute (the arithmetic is in smp_math.cpp).
//
// The message order is enforced here: anything that cannot happen in a
// well-formed run is a CounterpartyError, and anything wrong in the values
// of a message (what libotr rejects) is a failed comparison (mismatch).

#include "peersock/auth/smp.hpp"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <memory>
#include <string>
#include <utility>

#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "peersock/error.hpp"
#include "smp_math.hpp"

namespace peersock::auth {

namespace {

// "CONNAUTH" without its NUL terminator (docs/protocol.md §5.1).
constexpr std::string_view kSecretSuffix = "CONNAUTH";

using smp_math::Bn;
using smp_math::Mpis;
using smp_math::parse;
using smp_math::serialize;

Bn take(BIGNUM* raw, const char* what) {
  if (raw == nullptr) throw Error(ExitCode::failure, std::string("OpenSSL: ") + what);
  return Bn(raw);
}

}  // namespace

Secret derive_secret(std::span<const uint8_t> exporter, std::string_view code) {
  // Fed in three updates rather than one concatenated buffer, so no extra
  // copy of the exporter/code material exists. EVP_MD_CTX_free cleanses the
  // hash state, which was derived from them.
  const std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx) throw Error(ExitCode::failure, "EVP_MD_CTX_new failed");
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_len = 0;
  const bool ok = EVP_DigestInit_ex(ctx.get(), EVP_sha256(), nullptr) == 1 &&
                  EVP_DigestUpdate(ctx.get(), exporter.data(), exporter.size()) == 1 &&
                  EVP_DigestUpdate(ctx.get(), code.data(), code.size()) == 1 &&
                  EVP_DigestUpdate(ctx.get(), kSecretSuffix.data(), kSecretSuffix.size()) == 1 &&
                  EVP_DigestFinal_ex(ctx.get(), digest, &digest_len) == 1;
  if (!ok || digest_len != std::tuple_size_v<Secret>) {
    OPENSSL_cleanse(digest, sizeof digest);
    throw Error(ExitCode::failure, "SHA-256 of the auth secret failed");
  }
  Secret secret;
  std::copy(digest, digest + digest_len, secret.begin());
  // The local digest buffer is the secret too: do not leave it on the stack.
  OPENSSL_cleanse(digest, sizeof digest);
  return secret;
}

void wipe(std::string& s) {
  if (!s.empty()) OPENSSL_cleanse(s.data(), s.size());
  s.clear();
}

std::vector<uint8_t> encode_frame(std::span<const uint8_t> payload) {
  // Our own messages are at most ~1.7 KB; anything else is a bug here.
  assert(!payload.empty() && payload.size() <= kMaxFramePayload);
  std::vector<uint8_t> frame;
  frame.reserve(2 + payload.size());
  frame.push_back(static_cast<uint8_t>(payload.size() >> 8));
  frame.push_back(static_cast<uint8_t>(payload.size() & 0xff));
  frame.insert(frame.end(), payload.begin(), payload.end());
  return frame;
}

void FrameReader::feed(std::span<const uint8_t> bytes) {
  buffer_.insert(buffer_.end(), bytes.begin(), bytes.end());
  // Validate every length prefix that is now complete, including those of
  // frames behind the first one, so a bad length is reported on the feed
  // that completes it rather than only when the caller gets to that frame.
  size_t pos = 0;
  while (buffer_.size() - pos >= 2) {
    const size_t len = (size_t{buffer_[pos]} << 8) | buffer_[pos + 1];
    if (len == 0) throw CounterpartyError("auth frame with length 0");
    if (len > kMaxFramePayload) {
      throw CounterpartyError("auth frame of " + std::to_string(len) + " bytes exceeds the limit of " +
                              std::to_string(kMaxFramePayload));
    }
    if (buffer_.size() - pos < 2 + len) break;  // frame still incomplete
    pos += 2 + len;
  }
  // SMP is strictly lock-step: a correct peer never has more than one frame
  // outstanding. Bounding the buffer to one maximal frame keeps a peer from
  // making us hold an unbounded amount of data.
  if (buffer_.size() > 2 + kMaxFramePayload) {
    throw CounterpartyError("more than one auth frame of unread data (" + std::to_string(buffer_.size()) + " bytes)");
  }
}

std::optional<std::vector<uint8_t>> FrameReader::next() {
  if (buffer_.size() < 2) return std::nullopt;
  // feed() already rejected bad lengths, so len is in [1, kMaxFramePayload].
  const size_t len = (size_t{buffer_[0]} << 8) | buffer_[1];
  if (buffer_.size() < 2 + len) return std::nullopt;
  std::vector<uint8_t> payload(buffer_.begin() + 2, buffer_.begin() + 2 + static_cast<ptrdiff_t>(len));
  buffer_.erase(buffer_.begin(), buffer_.begin() + 2 + static_cast<ptrdiff_t>(len));
  return payload;
}

// Our side of the run: the values libotr keeps in its OtrlSMState, named as
// there (x2, x3 our exponents; g2, g3 the shared generators; g3o the peer's
// g^x3; p, q our P and Q; pab = Pa/Pb, qab = Qa/Qb).
struct Smp::State {
  smp_math::Group group;
  Bn secret, x2, x3, g2, g3, g3o, p, q, pab, qab;
  // Set once on_message threw: the session is being torn down and no later
  // message may drive the run on, even though status() stays in_progress.
  bool aborted = false;
};

// Steps of a run, counted in messages this side has sent or consumed:
//   Alice: 0 = not started, 1 = msg1 sent / msg2 expected,
//          2 = msg3 sent / msg4 expected, 3 = done.
//   Bob:   0 = msg1 expected, 1 = msg2 sent / msg3 expected, 2 = done.

Smp::Smp(Role role, const Secret& secret) : role_(role), secret_(secret), state_(std::make_unique<State>()) {
  state_->secret = take(BN_bin2bn(secret_.data(), static_cast<int>(secret_.size()), nullptr), "cannot read the secret");
  BN_set_flags(state_->secret.get(), BN_FLG_CONSTTIME);
}

// state_'s numbers are cleared as they are freed (BN_clear_free).
Smp::~Smp() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

std::vector<uint8_t> Smp::start() {
  if (role_ == Role::bob) return {};  // Bob only answers.
  assert(step_ == 0 && "Smp::start called twice");
  State& st = *state_;
  const smp_math::Group& group = st.group;
  // msg1: g2a, c2, D2, g3a, c3, D3.
  st.x2 = group.random_exponent();
  st.x3 = group.random_exponent();
  Mpis msg1;
  msg1.push_back(group.pow_secret(group.g(), st.x2.get()));
  auto [c2, d2] = prove_know_log(group, st.x2.get(), 1);
  msg1.push_back(std::move(c2));
  msg1.push_back(std::move(d2));
  msg1.push_back(group.pow_secret(group.g(), st.x3.get()));
  auto [c3, d3] = prove_know_log(group, st.x3.get(), 2);
  msg1.push_back(std::move(c3));
  msg1.push_back(std::move(d3));
  step_ = 1;
  return serialize(msg1);
}

namespace {

// Our P = g3^r, Q = g^r g2^secret and the proof that they share r
// (msg2's Pb, Qb, cP, D5, D6; msg3's Pa, Qa, cP, D5, D6), appended to `out`.
void append_coords(const smp_math::Group& group, const BIGNUM* g2, const BIGNUM* g3, const BIGNUM* secret,
                   uint8_t version, Bn& p, Bn& q, Mpis& out) {
  const Bn r = group.random_exponent();
  p = group.pow_secret(g3, r.get());
  const Bn g_r = group.pow_secret(group.g(), r.get());
  const Bn g2_s = group.pow_secret(g2, secret);
  q = group.mul_p(g_r.get(), g2_s.get());
  auto [c, d1, d2] = prove_equal_coords(group, g2, g3, r.get(), secret, version);
  out.push_back(take(BN_dup(p.get()), "cannot copy a number"));
  out.push_back(take(BN_dup(q.get()), "cannot copy a number"));
  out.push_back(std::move(c));
  out.push_back(std::move(d1));
  out.push_back(std::move(d2));
}

// R = qab^x3 and the proof that it uses our x3 (msg3's Ra, cR, D7; msg4's
// Rb, cR, D7), appended to `out`.
void append_r(const smp_math::Group& group, const BIGNUM* qab, const BIGNUM* x3, uint8_t version, Mpis& out) {
  out.push_back(group.pow_secret(qab, x3));
  auto [c, d] = prove_equal_logs(group, qab, x3, version);
  out.push_back(std::move(c));
  out.push_back(std::move(d));
}

struct Layout {
  uint32_t count;
  std::vector<std::pair<size_t, const char*>> elements;  // index into the array, name
  std::vector<size_t> exponents;
};

// docs/protocol.md §5.3's table.
const Layout& layout_of(int message_number) {
  static const Layout kLayouts[] = {
      {6, {{0, "g2a"}, {3, "g3a"}}, {2, 5}},
      {11, {{0, "g2b"}, {3, "g3b"}, {6, "Pb"}, {7, "Qb"}}, {2, 5, 9, 10}},
      {8, {{0, "Pa"}, {1, "Qa"}, {5, "Ra"}}, {3, 4, 7}},
      {3, {{0, "Rb"}}, {2}},
  };
  assert(message_number >= 1 && message_number <= 4);
  return kLayouts[message_number - 1];
}

// Errors: CounterpartyError naming the first group element of `values` that
// is not in the prime-order subgroup.
void require_elements(const smp_math::Group& group, int message_number, const Mpis& values) {
  for (const auto& [index, name] : layout_of(message_number).elements) {
    if (!group.is_element(values[index].get())) {
      throw CounterpartyError("SMP: " + std::string(name) + " in msg" + std::to_string(message_number) +
                              " is not an element of the prime-order subgroup");
    }
  }
}

bool exponents_in_range(const smp_math::Group& group, int message_number, const Mpis& values) {
  for (size_t index : layout_of(message_number).exponents)
    if (!group.is_exponent(values[index].get())) return false;
  return true;
}

}  // namespace

void check_subgroup(int message_number, std::span<const uint8_t> message) {
  const auto values = parse(message, layout_of(message_number).count);
  if (!values) return;
  const smp_math::Group group;
  require_elements(group, message_number, *values);
}

Smp::Step Smp::on_message(std::span<const uint8_t> message) {
  // Structural violations (CounterpartyError): what a correct peer can never
  // send regardless of its secret. They are checked before any arithmetic,
  // and they end the run for good.
  auto structural = [&](const std::string& what) -> CounterpartyError {
    state_->aborted = true;
    return CounterpartyError("SMP: " + what);
  };
  if (state_->aborted) throw structural("message after the run was aborted");
  if (status_ != Status::in_progress) throw structural("message after the run ended");
  // FrameReader cannot deliver these sizes; a caller bypassing it must not
  // get past here with them either.
  if (message.empty()) throw structural("empty message");
  if (message.size() > kMaxFramePayload) {
    throw structural("message of " + std::to_string(message.size()) + " bytes exceeds " +
                     std::to_string(kMaxFramePayload));
  }
  // The message this step expects: Alice gets msg2 and msg4, Bob msg1 and msg3.
  const int expected = role_ == Role::alice ? 2 * step_ : 2 * step_ + 1;
  if (role_ == Role::alice && step_ == 0) throw structural("message before msg1 was sent");
  if (expected > 4) throw structural("more messages than the protocol has");

  State& st = *state_;
  const smp_math::Group& group = st.group;
  Step result;
  // Anything wrong from here on is in the peer's data: a malformed MPI
  // array, an exponent out of range, a proof that does not verify, or
  // different secrets. SMP makes a wrong secret and a forged proof
  // indistinguishable on purpose, so all of them are a mismatch, and the
  // run is over. Only an element outside the subgroup is a protocol
  // violation: no correct peer can send one.
  auto mismatch = [&] {
    status_ = Status::mismatch;
    result.status = status_;
    return result;
  };
  std::optional<Mpis> parsed = parse(message, layout_of(expected).count);
  if (!parsed) return mismatch();
  Mpis& v = *parsed;
  try {
    require_elements(group, expected, v);
  } catch (const CounterpartyError&) {
    st.aborted = true;
    throw;
  }
  if (!exponents_in_range(group, expected, v)) return mismatch();

  switch (expected) {
    case 1: {  // Bob: msg1 -> msg2 (g2b, c2, D2, g3b, c3, D3, Pb, Qb, cP, D5, D6).
      if (!check_know_log(group, v[1].get(), v[2].get(), v[0].get(), 1) ||
          !check_know_log(group, v[4].get(), v[5].get(), v[3].get(), 2))
        return mismatch();
      st.g3o = std::move(v[3]);
      st.x2 = group.random_exponent();
      st.x3 = group.random_exponent();
      st.g2 = group.pow_secret(v[0].get(), st.x2.get());
      st.g3 = group.pow_secret(st.g3o.get(), st.x3.get());
      Mpis msg2;
      msg2.push_back(group.pow_secret(group.g(), st.x2.get()));
      auto [c2, d2] = prove_know_log(group, st.x2.get(), 3);
      msg2.push_back(std::move(c2));
      msg2.push_back(std::move(d2));
      msg2.push_back(group.pow_secret(group.g(), st.x3.get()));
      auto [c3, d3] = prove_know_log(group, st.x3.get(), 4);
      msg2.push_back(std::move(c3));
      msg2.push_back(std::move(d3));
      append_coords(group, st.g2.get(), st.g3.get(), st.secret.get(), 5, st.p, st.q, msg2);
      result.reply = serialize(msg2);
      step_ = 1;
      break;
    }
    case 2: {  // Alice: msg2 -> msg3 (Pa, Qa, cP, D5, D6, Ra, cR, D7).
      if (!check_know_log(group, v[1].get(), v[2].get(), v[0].get(), 3) ||
          !check_know_log(group, v[4].get(), v[5].get(), v[3].get(), 4))
        return mismatch();
      st.g3o = std::move(v[3]);
      st.g2 = group.pow_secret(v[0].get(), st.x2.get());
      st.g3 = group.pow_secret(st.g3o.get(), st.x3.get());
      const smp_math::EqualCoords theirs{std::move(v[8]), std::move(v[9]), std::move(v[10])};
      if (!check_equal_coords(group, st.g2.get(), st.g3.get(), theirs, v[6].get(), v[7].get(), 5)) return mismatch();
      Mpis msg3;
      append_coords(group, st.g2.get(), st.g3.get(), st.secret.get(), 6, st.p, st.q, msg3);
      st.pab = group.div_p(st.p.get(), v[6].get());
      st.qab = group.div_p(st.q.get(), v[7].get());
      append_r(group, st.qab.get(), st.x3.get(), 7, msg3);
      result.reply = serialize(msg3);
      step_ = 2;
      break;
    }
    case 3: {  // Bob: msg3 -> msg4 (Rb, cR, D7) + verdict.
      const smp_math::EqualCoords theirs{std::move(v[2]), std::move(v[3]), std::move(v[4])};
      if (!check_equal_coords(group, st.g2.get(), st.g3.get(), theirs, v[0].get(), v[1].get(), 6)) return mismatch();
      st.pab = group.div_p(v[0].get(), st.p.get());
      st.qab = group.div_p(v[1].get(), st.q.get());
      const smp_math::EqualLogs proof{std::move(v[6]), std::move(v[7])};
      if (!check_equal_logs(group, st.qab.get(), st.g3o.get(), proof, v[5].get(), 7)) return mismatch();
      // Rab = Ra^x3 = g^(x3a x3b (a - b)) equals Pa/Pb exactly when the
      // secrets are equal. On a mismatch msg4 is not sent, like the
      // original (docs/protocol.md §5.4).
      const Bn rab = group.pow_secret(v[5].get(), st.x3.get());
      step_ = 2;
      if (BN_cmp(rab.get(), st.pab.get()) != 0) return mismatch();
      Mpis msg4;
      append_r(group, st.qab.get(), st.x3.get(), 8, msg4);
      result.reply = serialize(msg4);
      status_ = Status::success;
      break;
    }
    case 4: {  // Alice: msg4 -> verdict. No reply either way.
      const smp_math::EqualLogs proof{std::move(v[1]), std::move(v[2])};
      if (!check_equal_logs(group, st.qab.get(), st.g3o.get(), proof, v[0].get(), 8)) return mismatch();
      const Bn rab = group.pow_secret(v[0].get(), st.x3.get());
      step_ = 3;
      if (BN_cmp(rab.get(), st.pab.get()) != 0) return mismatch();
      status_ = Status::success;
      break;
    }
  }
  result.status = status_;
  return result;
}

}  // namespace peersock::auth
