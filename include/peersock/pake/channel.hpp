// Encrypted signaling over the mailbox (docs/protocol.md §2.3, §2.9): the
// two sides run CPace on the connection code (cpace.hpp), confirm the key,
// and from then on every mailbox message is sealed with an AEAD under a key
// per direction and phase. The relay sees the nameplate, the sizes and the
// timing of the messages, nothing else.
//
// A pure state machine in the style of rendezvous::Protocol: mailbox
// messages (side, phase, body) in, messages to add and events out; no I/O,
// no clock (the one timeout, the consumer's wait for the original peersock,
// is the caller's timer calling original_wait_expired()).
//
// Message order on one side (both sides alike, neither waits for the other
// to begin):
//   mailbox open          -> add "pake"   our CPace share
//   peer's "pake"         -> add "confirm" our key confirmation tag
//   key ready + our body  -> add "sealed-ice" our ice body, sealed
// The peer's "confirm" is checked before any of its sealed messages is
// opened; a wrong tag is a code mismatch (one online guess, like SMP).
//
// The original peersock (and a peer with PEERSOCK_PROTOCOL=1) speaks no
// PAKE: it adds a plaintext "ice" and ignores other phases. A plaintext
// "ice" from a peer that sent no "pake" makes this side answer in plaintext
// too (unless allow_original is false); so does, for the consumer, no
// "pake" from the generator within the caller's wait (the original
// generator says nothing until it has the consumer's body). Once a peer
// proved it speaks the PAKE (a valid "pake"), nothing in plaintext is
// accepted from it: a relay cannot then downgrade this side.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "peersock/pake/cpace.hpp"

namespace peersock::pake {

inline constexpr std::string_view kPakePhase = "pake";
inline constexpr std::string_view kConfirmPhase = "confirm";
inline constexpr std::string_view kSealedIcePhase = "sealed-ice";
inline constexpr std::string_view kPlainIcePhase = "ice";
// An ICE restart's description (protocol v6, docs/protocol.md §2.11):
// phase "restart-N", N the restart's generation in decimal (1 to
// kMaxRestartGeneration, no leading zero), sealed like "sealed-ice".
inline constexpr std::string_view kRestartPhasePrefix = "restart-";
inline constexpr uint32_t kMaxRestartGeneration = 1'000'000;

// The consumer's wait for the generator's "pake" before it takes the
// generator for the original peersock. A current generator adds its "pake"
// one round trip after showing the code, so it is in the mailbox long before
// anyone could type the code; 5 s leaves room for a slow relay.
inline constexpr unsigned kOriginalWaitMs = 5000;

// Largest plaintext sealed in one message: base64 of nonce, plaintext and
// tag must fit the mailbox's 64 KiB body limit.
inline constexpr size_t kMaxSealedPlaintext = 48 * 1024;

enum class Role { generator, consumer };  // CPace initiator A, responder B

struct Message {
  std::string phase;
  std::string body;
  bool operator==(const Message&) const = default;
};

namespace event {
// The peer's ice body; `sealed`: it came encrypted and authenticated.
struct PeerIce {
  std::string body;
  bool sealed = false;
};
// The peer runs the original peersock (plaintext signaling), or the relay
// pretends it does: say so, once.
struct PeerIsOriginal {};
// The peer's description for ICE restart `generation` (opened).
struct PeerRestart {
  uint32_t generation = 0;
  std::string body;
};
}  // namespace event
using Event = std::variant<event::PeerIce, event::PeerIsOriginal, event::PeerRestart>;

struct Output {
  std::vector<Message> to_send;
  std::vector<Event> events;
};

struct Params {
  Role role = Role::generator;
  std::string code;       // the auth password (docs/protocol.md §2.2), the CPace PRS
  std::string nameplate;  // its nameplate, part of the channel identifier
  std::string side;       // our mailbox side, our CPace associated data
  // false (--no-original): a peer without the PAKE is refused (exit 8).
  bool allow_original = true;
  // false (PEERSOCK_PROTOCOL=1): behave like the original, plaintext only.
  bool speak_pake = true;
};

class Channel {
 public:
  // `scalar`: for tests only; otherwise drawn from the CSPRNG.
  explicit Channel(Params params, std::optional<cpace::Scalar> scalar = std::nullopt);
  ~Channel();
  Channel(const Channel&) = delete;
  Channel& operator=(const Channel&) = delete;

  // The mailbox is open: our "pake" (nothing when speak_pake is false).
  // Call once.
  Output open();

  // Our ice body: sent sealed once the key is known, in plaintext once the
  // peer is known to be the original, held until then. Call once.
  // Errors: Error(failure) for a body over kMaxSealedPlaintext.
  Output send_ice(std::string body);

  // Our description for ICE restart `generation` (1 to
  // kMaxRestartGeneration), sealed. Errors: Error(failure) before the key
  // is confirmed both ways, in plaintext mode, for a generation out of
  // range or a body over kMaxSealedPlaintext.
  Output send_restart(uint32_t generation, std::string_view body);

  // A mailbox message from another side (never our own echo). Unknown phases
  // are ignored, and so is an exact repeat of a message already handled (the
  // server replays the mailbox after a reconnect).
  // Errors:
  //   Error(code_mismatch): the peer's key confirmation is wrong: it used
  //     another code (or the relay changed a share): one failed guess.
  //   CounterpartyError: a share that is not a valid ristretto255 element
  //     (or gives the identity), a malformed body, a different second
  //     message in a phase, a confirm before the share, a sealed message
  //     before the confirm, one that fails authentication, plaintext after
  //     the peer proved it speaks the PAKE, a late "pake" after the consumer
  //     took the peer for the original; a plaintext peer when
  //     allow_original is false.
  Output on_message(std::string_view side, std::string_view phase, std::string_view body);

  // Consumer: kOriginalWaitMs passed since open(). If the generator has not
  // been heard from, it is taken for the original: our body goes out in
  // plaintext. Errors: CounterpartyError when allow_original is false.
  Output original_wait_expired();

  // The consumer should run the original-wait timer (set after open()).
  bool waiting_for_generator() const;
  // The peer's key share arrived (the PAKE runs); its ice body should follow.
  bool key_agreed() const { return isk_.has_value(); }
  bool peer_ice_received() const { return peer_ice_received_; }
  bool plaintext() const { return mode_ == Mode::plaintext; }

  // Sealing and opening, exposed for the unit tests and the fuzzer: the
  // keys come from the ISK, the sender's role and the phase.
  static std::string seal(const cpace::Isk& isk, Role sender, std::string_view phase, std::string_view plaintext);
  // Errors: CounterpartyError for a malformed body or a failed
  // authentication (tampered, replayed into another phase or direction).
  static std::string open_sealed(const cpace::Isk& isk, Role sender, std::string_view phase, std::string_view body);

 private:
  enum class Mode { undecided, pake, plaintext };
  void on_pake(std::string_view side, std::string_view body, Output& out);
  void on_confirm(std::string_view body, Output& out);
  void on_sealed_ice(std::string_view body, Output& out);
  void on_plain_ice(std::string_view body, Output& out);
  void on_restart(std::string_view phase, std::string_view body, Output& out);
  void become_plaintext(Output& out);
  void refuse_late_pake() const;
  void flush(Output& out);
  Role peer_role() const { return params_.role == Role::generator ? Role::consumer : Role::generator; }

  Params params_;
  cpace::Scalar scalar_;
  cpace::Element own_share_{};
  cpace::Element peer_share_{};
  Mode mode_ = Mode::undecided;
  bool opened_ = false;
  std::optional<cpace::Isk> isk_;
  std::string peer_pake_;  // body, for telling a replay from a second share
  std::string peer_confirm_;
  std::string peer_side_;
  bool peer_confirmed_ = false;
  bool timed_out_ = false;  // consumer: took the silent generator for the original
  std::optional<std::string> own_ice_;
  bool own_ice_sent_ = false;
  bool peer_ice_received_ = false;
  uint32_t peer_restart_ = 0;  // the highest restart generation handled
};

}  // namespace peersock::pake
