// Authentication layer (docs/protocol.md §5): secret derivation, auth-stream
// framing and one SMP run driven through libotr's otrl_sm_step* functions.
//
// libotr's SMP functions are pure computations on an OtrlSMState: they do no
// bookkeeping about which message is expected next (libotr's message layer,
// which we do not use, does that). So the message order is enforced here, and
// anything that cannot happen in a well-formed run is a CounterpartyError,
// while anything libotr itself rejects is a failed comparison (mismatch).

#include "peersock/auth/smp.hpp"

#include <algorithm>
#include <cassert>
#include <cstddef>
#include <cstdlib>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>

#include <gcrypt.h>
#include <openssl/bn.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>

extern "C" {
#include <libotr/sm.h>
}

#include "peersock/error.hpp"

namespace peersock::auth {

namespace {

// "CONNAUTH" without its NUL terminator (docs/protocol.md §5.1).
constexpr std::string_view kSecretSuffix = "CONNAUTH";

// libgcrypt must be initialised before first use, and libotr's SMP module
// keeps the group parameters in globals that otrl_sm_init() fills. Both must
// happen exactly once per process; a function-local static gives that with
// C++11's thread-safe initialisation. This is the only global state here.
//
// We do not use OTRL_INIT: it calls exit(1) on failure and, through
// otrl_mem_init, replaces libgcrypt's allocators for the whole process. We
// only need the SMP part.
void init_libraries() {
  static const bool ok = [] {
    // gcry_check_version must be the first libgcrypt call; it returns NULL
    // when the runtime library is older than the headers we compiled with.
    if (gcry_check_version(GCRYPT_VERSION) == nullptr) return false;
    // Someone else in the process may already have finished libgcrypt's
    // initialisation; then its settings win and we must not touch them.
    if (!gcry_control(GCRYCTL_INITIALIZATION_FINISHED_P)) {
      // libotr draws its random exponents with gcry_random_bytes_secure, so
      // the secret exponents live in secure memory. Give that pool a fixed
      // start, let it grow instead of aborting if several runs overlap, and
      // do not print the "using insecure memory" warning when mlock is not
      // permitted (containers): the memory is still wiped on free.
      gcry_control(GCRYCTL_DISABLE_SECMEM_WARN);
      gcry_control(GCRYCTL_AUTO_EXPAND_SECMEM, 32768u);
      gcry_control(GCRYCTL_INIT_SECMEM, 65536u, 0);
      gcry_control(GCRYCTL_INITIALIZATION_FINISHED, 0);
    }
    otrl_sm_init();
    return true;
  }();
  if (!ok) {
    throw Error(ExitCode::failure,
                std::string("libgcrypt is older than ") + GCRYPT_VERSION + ", the version peersock was built with");
  }
}

// Output buffers of otrl_sm_step1/2b/3/4 come from malloc (libotr's
// serialize_mpi_array); own them so every path frees them.
struct MallocFree {
  void operator()(unsigned char* p) const noexcept { std::free(p); }
};
using OtrBuffer = std::unique_ptr<unsigned char, MallocFree>;

// Runs one otrl_sm_step* call that produces a message and takes the buffer
// into RAII ownership right away, whatever the return code: step4 serialises
// msg4 before it compares the secrets, so on a mismatch it returns an error
// *and* a buffer.
template <typename Call>
gcry_error_t produce(Call&& call, std::vector<uint8_t>& out) {
  unsigned char* raw = nullptr;
  int raw_len = 0;
  const gcry_error_t err = call(&raw, &raw_len);
  const OtrBuffer owned(raw);
  out.clear();
  if (err == 0 && owned && raw_len > 0) out.assign(owned.get(), owned.get() + raw_len);
  return err;
}

struct MpiRelease {
  void operator()(gcry_mpi_t m) const noexcept { gcry_mpi_release(m); }
};
using Mpi = std::unique_ptr<std::remove_pointer_t<gcry_mpi_t>, MpiRelease>;

// The MPIs of a libotr array with exactly `count` entries, or nothing if
// `message` is not one (libotr's own parser then rejects it). Trailing bytes
// are ignored, as libotr does.
std::optional<std::vector<std::span<const uint8_t>>> split_mpi_array(std::span<const uint8_t> message,
                                                                      uint32_t count) {
  auto read_u32 = [&](uint32_t& v) {
    if (message.size() < 4) return false;
    v = (uint32_t{message[0]} << 24) | (uint32_t{message[1]} << 16) | (uint32_t{message[2]} << 8) | message[3];
    message = message.subspan(4);
    return true;
  };
  uint32_t n = 0;
  if (!read_u32(n) || n != count) return std::nullopt;
  std::vector<std::span<const uint8_t>> mpis;
  for (uint32_t i = 0; i < n; ++i) {
    uint32_t len = 0;
    if (!read_u32(len) || len > message.size()) return std::nullopt;
    mpis.push_back(message.first(len));
    message = message.subspan(len);
  }
  return mpis;
}

using Bignum = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

// The modulus as OpenSSL reads it, for the membership test below.
const BIGNUM& modulus() {
  static const Bignum p = [] {
    BIGNUM* raw = nullptr;
    const std::string hex(kSmpModulusHex);
    if (BN_hex2bn(&raw, hex.c_str()) == 0) throw Error(ExitCode::failure, "OpenSSL cannot read the SMP modulus");
    return Bignum(raw, &BN_free);
  }();
  return *p;
}

}  // namespace

// p = 2q + 1 is a safe prime, so the subgroup of order q is exactly the
// quadratic residues mod p, and by Euler's criterion g^q = (g/p) mod p: the
// Legendre symbol decides membership as g^q = 1 would. It is a gcd-like
// computation on public values, where g^q is a full 1536-bit exponentiation:
// 0.09 ms against 3.5 ms with libgcrypt here, and a run checks ten elements,
// each on the critical path of the setup (35 ms of its 180 ms of SMP
// arithmetic; 2 cores, idle).
void check_subgroup(int message_number, std::span<const uint8_t> message) {
  struct Layout {
    uint32_t count;
    std::vector<std::pair<size_t, const char*>> elements;  // index into the array, name
  };
  static const Layout kLayouts[] = {
      {6, {{0, "g2a"}, {3, "g3a"}}},
      {11, {{0, "g2b"}, {3, "g3b"}, {6, "Pb"}, {7, "Qb"}}},
      {8, {{0, "Pa"}, {1, "Qa"}, {5, "Ra"}}},
      {3, {{0, "Rb"}}},
  };
  assert(message_number >= 1 && message_number <= 4);
  const Layout& layout = kLayouts[message_number - 1];
  const auto mpis = split_mpi_array(message, layout.count);
  if (!mpis) return;
  const BIGNUM& p = modulus();
  const std::unique_ptr<BN_CTX, decltype(&BN_CTX_free)> ctx(BN_CTX_new(), &BN_CTX_free);
  const Bignum p_minus_1(BN_dup(&p), &BN_free);
  if (!ctx || !p_minus_1 || BN_sub_word(p_minus_1.get(), 1) != 1)
    throw Error(ExitCode::failure, "OpenSSL cannot set up the SMP subgroup check");
  for (const auto& [index, name] : layout.elements) {
    const std::span<const uint8_t> bytes = (*mpis)[index];
    const Bignum element(BN_bin2bn(bytes.data(), static_cast<int>(bytes.size()), nullptr), &BN_free);
    if (!element) throw Error(ExitCode::failure, "OpenSSL cannot read an SMP group element");
    // 2 <= g <= p - 2, then (g/p) = 1. BN_kronecker returns -2 on an error
    // (an allocation failed).
    bool in_subgroup = BN_cmp(element.get(), BN_value_one()) > 0 && BN_cmp(element.get(), p_minus_1.get()) < 0;
    if (in_subgroup) {
      const int symbol = BN_kronecker(element.get(), &p, ctx.get());
      if (symbol == -2) throw Error(ExitCode::failure, "OpenSSL cannot compute a Legendre symbol");
      in_subgroup = symbol == 1;
    }
    if (!in_subgroup) {
      throw CounterpartyError("SMP: " + std::string(name) + " in msg" + std::to_string(message_number) +
                              " is not an element of the prime-order subgroup");
    }
  }
}

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

// The libotr state plus our own "this run is dead" flag, kept here so the
// public header does not need libotr's headers.
struct Smp::State {
  OtrlSMState sm;
  // Set once on_message threw: the session is being torn down and no later
  // message may drive the run on, even though status() stays in_progress.
  bool aborted = false;

  // otrl_sm_state_new leaves received_question and sm_prog_state unset;
  // value-initialise everything first so no field is ever read uninitialised.
  State() : sm{} { otrl_sm_state_new(&sm); }
  // otrl_sm_state_free releases every MPI (libgcrypt wipes MPI limbs on
  // release, so the secret MPI does not linger) and resets the pointers.
  ~State() { otrl_sm_state_free(&sm); }
  State(const State&) = delete;
  State& operator=(const State&) = delete;
};

// Steps of a run, counted in messages this side has sent or consumed:
//   Alice: 0 = not started, 1 = msg1 sent / msg2 expected,
//          2 = msg3 sent / msg4 expected, 3 = done.
//   Bob:   0 = msg1 expected, 1 = msg2 sent / msg3 expected, 2 = done.

Smp::Smp(Role role, const Secret& secret) : role_(role), secret_(secret) {
  init_libraries();
  state_ = std::make_unique<State>();
}

// state_ frees libotr's state after this.
Smp::~Smp() { OPENSSL_cleanse(secret_.data(), secret_.size()); }

std::vector<uint8_t> Smp::start() {
  if (role_ == Role::bob) return {};  // Bob only answers.
  assert(step_ == 0 && "Smp::start called twice");
  std::vector<uint8_t> msg1;
  const gcry_error_t err = produce(
      [&](unsigned char** out, int* out_len) {
        return otrl_sm_step1(&state_->sm, secret_.data(), static_cast<int>(secret_.size()), out, out_len);
      },
      msg1);
  // step1 only does local arithmetic on our own secret; it cannot fail on
  // anything the peer controls.
  if (err != 0 || msg1.empty()) throw Error(ExitCode::failure, "otrl_sm_step1 failed");
  step_ = 1;
  return msg1;
}

Smp::Step Smp::on_message(std::span<const uint8_t> message) {
  // Structural violations (CounterpartyError): what a correct peer can never
  // send regardless of its secret. They are checked before libotr sees the
  // bytes, and they end the run for good.
  auto structural = [&](const std::string& what) -> CounterpartyError {
    state_->aborted = true;
    return CounterpartyError("SMP: " + what);
  };
  if (state_->aborted) throw structural("message after the run was aborted");
  if (status_ != Status::in_progress) throw structural("message after the run ended");
  // FrameReader cannot deliver these sizes; a caller bypassing it must not
  // reach libotr (which takes an int length) with them either.
  if (message.empty()) throw structural("empty message");
  if (message.size() > kMaxFramePayload) {
    throw structural("message of " + std::to_string(message.size()) + " bytes exceeds " +
                     std::to_string(kMaxFramePayload));
  }

  // The message this step expects: Alice gets msg2 and msg4, Bob msg1 and
  // msg3. Out-of-order messages are rejected below before this matters.
  const int expected = role_ == Role::alice ? 2 * step_ : 2 * step_ + 1;
  if (expected >= 1 && expected <= 4) {
    try {
      check_subgroup(expected, message);
    } catch (const CounterpartyError&) {
      state_->aborted = true;
      throw;
    }
  }

  const auto* in = message.data();
  const int in_len = static_cast<int>(message.size());
  OtrlSMState* sm = &state_->sm;
  Step result;
  gcry_error_t err = 0;

  if (role_ == Role::alice) {
    if (step_ == 0) throw structural("message before msg1 was sent");
    if (step_ == 1) {
      // msg2 -> msg3.
      err = produce([&](unsigned char** out, int* out_len) { return otrl_sm_step3(sm, in, in_len, out, out_len); },
                    result.reply);
      if (err == 0) step_ = 2;
    } else if (step_ == 2) {
      // msg4 -> verdict. No reply either way.
      err = otrl_sm_step5(sm, in, in_len);
      step_ = 3;
      if (err == 0) status_ = Status::success;
    } else {
      throw structural("more messages than the protocol has");
    }
  } else {
    if (step_ == 0) {
      // msg1 -> msg2. received_question = 0: peersock never sends a
      // question (that is the SMP1Q variant of libotr's TLV layer).
      err = otrl_sm_step2a(sm, in, in_len, 0);
      if (err == 0) {
        err = produce(
            [&](unsigned char** out, int* out_len) {
              return otrl_sm_step2b(sm, secret_.data(), static_cast<int>(secret_.size()), out, out_len);
            },
            result.reply);
      }
      if (err == 0) step_ = 1;
    } else if (step_ == 1) {
      // msg3 -> msg4 + verdict. On a mismatch libotr still builds msg4, but
      // like the original (docs/protocol.md §5.4) we do not send it: produce()
      // only keeps the buffer on success, so reply stays empty.
      err = produce([&](unsigned char** out, int* out_len) { return otrl_sm_step4(sm, in, in_len, out, out_len); },
                    result.reply);
      step_ = 2;
      if (err == 0) status_ = Status::success;
    } else {
      throw structural("more messages than the protocol has");
    }
  }

  // Any libotr error here is on peer data: a malformed MPI array, values
  // outside the group, a proof that does not verify or different secrets.
  // SMP makes a wrong secret and a forged proof indistinguishable on
  // purpose, so all of them are a mismatch, and the run is over.
  if (err != 0) {
    result.reply.clear();
    status_ = Status::mismatch;
  }
  result.status = status_;
  return result;
}

}  // namespace peersock::auth
