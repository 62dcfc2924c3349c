// The signaling channel's state machine (channel.hpp, docs/protocol.md
// §2.9). Everything the peer or relay sends is untrusted: each body is
// length-checked before it is decoded, a share must decode to a
// non-identity ristretto255 element, and nothing sealed is opened before the
// peer's key confirmation was checked.
#include "peersock/pake/channel.hpp"

#include <sodium.h>

#include <cassert>

#include "peersock/error.hpp"

namespace peersock::pake {
namespace {

// The channel identifier binds the key to this protocol and this nameplate;
// the sides are the associated data (ADa: the generator's, ADb: the
// consumer's), so a share replayed from another session or another mailbox
// side gives another key. sid is empty: both shares are fresh per run.
constexpr std::string_view kChannelLabel = "peersock signaling 1";
constexpr std::string_view kSid = "";
constexpr std::string_view kSealLabel = "peersock seal 1";
constexpr size_t kNonceBytes = crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
constexpr size_t kTagBytes = crypto_aead_xchacha20poly1305_ietf_ABYTES;
constexpr size_t kKeyBytes = crypto_aead_xchacha20poly1305_ietf_KEYBYTES;

std::string_view role_name(Role r) { return r == Role::generator ? "generator" : "consumer"; }

std::string to_base64(const uint8_t* data, size_t n) {
  std::string out(sodium_base64_encoded_len(n, sodium_base64_VARIANT_ORIGINAL), '\0');
  sodium_bin2base64(out.data(), out.size(), data, n, sodium_base64_VARIANT_ORIGINAL);
  out.resize(out.size() - 1);  // the terminating NUL
  return out;
}

// Strict base64 (padding required, no whitespace) of at most `max` bytes.
// Errors: CounterpartyError naming `what`.
std::vector<uint8_t> from_base64(std::string_view text, size_t max, const char* what) {
  if (text.size() > sodium_base64_encoded_len(max, sodium_base64_VARIANT_ORIGINAL)) {
    throw CounterpartyError(std::string(what) + " is too long (" + std::to_string(text.size()) + " characters)");
  }
  std::vector<uint8_t> out(max);
  size_t len = 0;
  if (sodium_base642bin(out.data(), out.size(), text.data(), text.size(), nullptr, &len, nullptr,
                        sodium_base64_VARIANT_ORIGINAL) != 0) {
    throw CounterpartyError(std::string(what) + " is not valid base64");
  }
  out.resize(len);
  return out;
}

// The per-direction, per-phase AEAD key: keyed BLAKE2b (libsodium's
// crypto_generichash, the PRF under its crypto_kdf) of the label, the
// sender's role and the phase, keyed with the ISK.
std::array<uint8_t, kKeyBytes> seal_key(const cpace::Isk& isk, Role sender, std::string_view phase) {
  std::string info(kSealLabel);
  info += '\0';
  info += role_name(sender);
  info += '\0';
  info += phase;
  std::array<uint8_t, kKeyBytes> key;
  crypto_generichash(key.data(), key.size(), reinterpret_cast<const uint8_t*>(info.data()), info.size(), isk.data(),
                     isk.size());
  return key;
}

// The associated data: the phase and the sender, as in the key, so that a
// body moved to another phase or direction fails even under a key mix-up.
std::string seal_ad(Role sender, std::string_view phase) {
  std::string ad(role_name(sender));
  ad += '\0';
  ad += phase;
  return ad;
}

}  // namespace

std::string Channel::seal(const cpace::Isk& isk, Role sender, std::string_view phase, std::string_view plaintext) {
  if (plaintext.size() > kMaxSealedPlaintext) {
    throw Error(ExitCode::failure, "a signaling message of " + std::to_string(plaintext.size()) +
                                       " bytes is too large to seal");
  }
  if (sodium_init() < 0) throw Error(ExitCode::failure, "libsodium could not be initialised");
  auto key = seal_key(isk, sender, phase);
  const std::string ad = seal_ad(sender, phase);
  std::vector<uint8_t> out(kNonceBytes + plaintext.size() + kTagBytes);
  randombytes_buf(out.data(), kNonceBytes);  // random 192-bit nonces never repeat in practice
  unsigned long long clen = 0;
  crypto_aead_xchacha20poly1305_ietf_encrypt(out.data() + kNonceBytes, &clen,
                                             reinterpret_cast<const uint8_t*>(plaintext.data()), plaintext.size(),
                                             reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), nullptr,
                                             out.data(), key.data());
  sodium_memzero(key.data(), key.size());
  assert(clen == plaintext.size() + kTagBytes);
  return to_base64(out.data(), out.size());
}

std::string Channel::open_sealed(const cpace::Isk& isk, Role sender, std::string_view phase, std::string_view body) {
  auto raw = from_base64(body, kNonceBytes + kMaxSealedPlaintext + kTagBytes, "a sealed signaling message");
  if (raw.size() < kNonceBytes + kTagBytes) throw CounterpartyError("a sealed signaling message is truncated");
  auto key = seal_key(isk, sender, phase);
  const std::string ad = seal_ad(sender, phase);
  std::string plain(raw.size() - kNonceBytes - kTagBytes, '\0');
  unsigned long long plen = 0;
  const int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(
      reinterpret_cast<uint8_t*>(plain.data()), &plen, nullptr, raw.data() + kNonceBytes, raw.size() - kNonceBytes,
      reinterpret_cast<const uint8_t*>(ad.data()), ad.size(), raw.data(), key.data());
  sodium_memzero(key.data(), key.size());
  if (rc != 0) {
    throw CounterpartyError("a sealed signaling message (" + std::string(phase) +
                            ") failed authentication: altered, truncated or moved by the relay");
  }
  plain.resize(plen);
  return plain;
}

Channel::Channel(Params params, std::optional<cpace::Scalar> scalar)
    : params_(std::move(params)), scalar_(scalar ? *scalar : cpace::sample_scalar()) {
  assert(!params_.side.empty());
  if (!params_.speak_pake) {
    mode_ = Mode::plaintext;
    return;
  }
  const cpace::Bytes ci = cpace::lv_cat({kChannelLabel, params_.nameplate});
  const cpace::Element g = cpace::calculate_generator(params_.code, cpace::view(ci), kSid);
  own_share_ = cpace::scalar_mult(scalar_, g);
  // The code is not needed any more: no copy of it stays in memory.
  sodium_memzero(params_.code.data(), params_.code.size());
  params_.code.clear();
}

Channel::~Channel() {
  sodium_memzero(scalar_.data(), scalar_.size());
  if (isk_) sodium_memzero(isk_->data(), isk_->size());
}

Output Channel::open() {
  assert(!opened_ && "open must be called once");
  opened_ = true;
  Output out;
  if (params_.speak_pake) out.to_send.push_back({std::string(kPakePhase), to_base64(own_share_.data(), own_share_.size())});
  flush(out);
  return out;
}

Output Channel::send_ice(std::string body) {
  assert(!own_ice_ && "send_ice must be called once");
  if (params_.speak_pake && body.size() > kMaxSealedPlaintext) {
    throw Error(ExitCode::failure,
                "our ice body of " + std::to_string(body.size()) + " bytes is too large for a signaling message");
  }
  own_ice_ = std::move(body);
  Output out;
  flush(out);
  return out;
}

bool Channel::waiting_for_generator() const {
  return params_.role == Role::consumer && params_.speak_pake && opened_ && mode_ == Mode::undecided;
}

Output Channel::on_message(std::string_view side, std::string_view phase, std::string_view body) {
  Output out;
  if (phase == kPlainIcePhase) {
    on_plain_ice(body, out);
  } else if (!params_.speak_pake) {
    // Acting like the original: every other phase is someone else's.
  } else if (phase == kPakePhase) {
    on_pake(side, body, out);
  } else if (phase == kConfirmPhase) {
    on_confirm(body, out);
  } else if (phase == kSealedIcePhase) {
    on_sealed_ice(body, out);
  } else if (phase.starts_with(kRestartPhasePrefix)) {
    on_restart(phase, body, out);
  }
  return out;
}

namespace {
// "restart-N" -> N, or 0 when N is not 1..kMaxRestartGeneration in plain
// decimal (no sign, no leading zero).
uint32_t restart_generation(std::string_view phase) {
  std::string_view digits = phase.substr(kRestartPhasePrefix.size());
  if (digits.empty() || digits.size() > 7 || digits[0] == '0') return 0;
  uint32_t n = 0;
  for (char c : digits) {
    if (c < '0' || c > '9') return 0;
    n = n * 10 + static_cast<uint32_t>(c - '0');
  }
  return n <= kMaxRestartGeneration ? n : 0;
}

std::string restart_phase(uint32_t generation) { return std::string(kRestartPhasePrefix) + std::to_string(generation); }
}  // namespace

Output Channel::send_restart(uint32_t generation, std::string_view body) {
  if (mode_ != Mode::pake || !isk_ || !peer_confirmed_)
    throw Error(ExitCode::failure, "an ICE restart needs the sealed signaling channel");
  if (generation == 0 || generation > kMaxRestartGeneration)
    throw Error(ExitCode::failure, "ICE restart generation out of range");
  if (body.size() > kMaxSealedPlaintext) {
    throw Error(ExitCode::failure,
                "our restart body of " + std::to_string(body.size()) + " bytes is too large for a signaling message");
  }
  Output out;
  const std::string phase = restart_phase(generation);
  out.to_send.push_back({phase, seal(*isk_, params_.role, phase, body)});
  return out;
}

void Channel::on_restart(std::string_view phase, std::string_view body, Output& out) {
  // The original and a plaintext peer never restart: whatever arrives is
  // not from the peer we authenticated.
  if (mode_ != Mode::pake) return;
  const uint32_t generation = restart_generation(phase);
  if (generation == 0) throw CounterpartyError("a restart message with a malformed generation");
  if (!peer_confirmed_) throw CounterpartyError("a sealed message before the key confirmation (reordered by the relay?)");
  if (generation <= peer_restart_) return;  // a replay after a reconnect, or overtaken by a newer one
  std::string plain = open_sealed(*isk_, peer_role(), phase, body);
  peer_restart_ = generation;
  out.events.emplace_back(event::PeerRestart{generation, std::move(plain)});
}

// The consumer took a silent generator for the original, and now a PAKE
// message shows it is not: our body is out in clear, and the generator
// will refuse it. Say so rather than wait for a plaintext body that never
// comes.
void Channel::refuse_late_pake() const {
  if (!timed_out_) return;  // committed to plaintext by the peer's own plaintext body: ignore
  throw CounterpartyError("the other side's key exchange came after " + std::to_string(kOriginalWaitMs / 1000) +
                          " s, when this side had taken it for the original peersock and sent its addresses in "
                          "clear; start again");
}

void Channel::on_pake(std::string_view side, std::string_view body, Output& out) {
  if (mode_ == Mode::plaintext) {
    refuse_late_pake();
    return;
  }
  if (isk_) {
    if (body == peer_pake_) return;  // the server's replay after a reconnect
    throw CounterpartyError("a second, different key share (pake) from the other side");
  }
  auto raw = from_base64(body, cpace::kElementBytes, "the key share (pake)");
  if (raw.size() != cpace::kElementBytes) throw CounterpartyError("the key share (pake) is not 32 bytes");
  cpace::Element peer;
  std::copy(raw.begin(), raw.end(), peer.begin());
  auto k = cpace::scalar_mult_vfy(scalar_, peer);
  if (!k) throw CounterpartyError("the key share (pake) is not a valid ristretto255 element");
  const bool gen = params_.role == Role::generator;
  const cpace::Element& ya = gen ? own_share_ : peer;
  const cpace::Element& yb = gen ? peer : own_share_;
  const std::string_view ada = gen ? std::string_view(params_.side) : side;
  const std::string_view adb = gen ? side : std::string_view(params_.side);
  isk_ = cpace::isk_ir(kSid, *k, ya, ada, yb, adb);
  sodium_memzero(k->data(), k->size());
  peer_pake_ = std::string(body);
  peer_side_ = std::string(side);
  peer_share_ = peer;
  mode_ = Mode::pake;
  const cpace::Tag tag = cpace::confirmation_tag(kSid, *isk_, own_share_, params_.side);
  out.to_send.push_back({std::string(kConfirmPhase), to_base64(tag.data(), tag.size())});
  flush(out);
}

void Channel::on_confirm(std::string_view body, Output& out) {
  (void)out;
  if (mode_ == Mode::plaintext) {
    refuse_late_pake();
    return;
  }
  if (!isk_) throw CounterpartyError("a key confirmation before the key share (reordered by the relay?)");
  if (peer_confirmed_) {
    if (body == peer_confirm_) return;
    throw CounterpartyError("a second, different key confirmation from the other side");
  }
  auto raw = from_base64(body, sizeof(cpace::Tag), "the key confirmation");
  if (raw.size() != sizeof(cpace::Tag)) throw CounterpartyError("the key confirmation is not 64 bytes");
  const cpace::Tag expected = cpace::confirmation_tag(kSid, *isk_, peer_share_, peer_side_);
  if (crypto_verify_64(raw.data(), expected.data()) != 0) throw Error(ExitCode::code_mismatch, kMismatchMessage);
  peer_confirm_ = std::string(body);
  peer_confirmed_ = true;
}

void Channel::on_sealed_ice(std::string_view body, Output& out) {
  if (mode_ == Mode::plaintext) {
    refuse_late_pake();
    return;
  }
  if (!peer_confirmed_) throw CounterpartyError("a sealed message before the key confirmation (reordered by the relay?)");
  if (peer_ice_received_) return;  // a replay; only the first body counts (§2.4)
  std::string plain = open_sealed(*isk_, peer_role(), kSealedIcePhase, body);
  peer_ice_received_ = true;
  out.events.emplace_back(event::PeerIce{std::move(plain), true});
}

void Channel::on_plain_ice(std::string_view body, Output& out) {
  if (mode_ == Mode::pake) {
    throw CounterpartyError(
        "the other side sent a key share and then its addresses in clear (a relay tampering, or a fallback after a "
        "slow relay); start again");
  }
  if (mode_ == Mode::undecided) {
    if (!params_.allow_original) {
      throw CounterpartyError(
          "the other side runs the original peersock (it sent its addresses in clear); refused by --no-original");
    }
    become_plaintext(out);
  }
  if (peer_ice_received_) return;
  peer_ice_received_ = true;
  out.events.emplace_back(event::PeerIce{std::string(body), false});
}

Output Channel::original_wait_expired() {
  Output out;
  if (!waiting_for_generator()) return out;
  if (!params_.allow_original) {
    throw CounterpartyError("no key exchange from the other side within " + std::to_string(kOriginalWaitMs / 1000) +
                            " s: it runs the original peersock, or the relay withholds its message; refused by "
                            "--no-original");
  }
  timed_out_ = true;
  become_plaintext(out);
  return out;
}

void Channel::become_plaintext(Output& out) {
  mode_ = Mode::plaintext;
  if (params_.speak_pake) out.events.emplace_back(event::PeerIsOriginal{});
  flush(out);
}

void Channel::flush(Output& out) {
  if (!own_ice_ || own_ice_sent_ || !opened_) return;
  if (mode_ == Mode::plaintext) {
    out.to_send.push_back({std::string(kPlainIcePhase), *own_ice_});
  } else if (isk_) {
    out.to_send.push_back({std::string(kSealedIcePhase), seal(*isk_, params_.role, kSealedIcePhase, *own_ice_)});
  } else {
    return;
  }
  own_ice_sent_ = true;
}

}  // namespace peersock::pake
