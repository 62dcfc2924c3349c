// The hello exchange of a --peer session (docs/protocol.md §2.9): before a
// paired session runs, its two sides meet in the pair's mailbox of the
// current time window and agree on a fresh session mailbox and code.
//
// Why two mailboxes: the window's mailbox is known to both sides in advance,
// so it is where they find each other; but the server keeps every message of
// a mailbox and replays it to whoever opens it, and a serving side
// (--serve) meets many clients there. So the window mailbox carries only
// short, MACed hellos; each session then runs in a mailbox of its own, whose
// id and code come from the pairing secret and two fresh nonces, exactly as
// a code session does (PAKE, ICE, SMP on the code, bound to the exporter).
// A hello the relay replays gets a new server nonce, hence a code the relay
// cannot know: that session fails like a wrong code, and nothing else.
//
// Roles: the side whose subcommand accepts the streams (connect,
// connect-unix, stdio-a) is the server, which answers hellos; the other side
// (listen, listen-unix, stdio-b) is the client, which says hello.
//   client -> "pair-hello"   {"n": client nonce, "t": unix time, "m": MAC}
//   server -> "pair-welcome" {"c": client nonce, "s": server nonce, "m": MAC}
//   either -> "pair-forgotten" {"t": unix time, "m": MAC}  (a tombstone)
// Every MAC is HMAC(K, label || window || fields), K the pairing's mailbox
// key, so messages of one window are useless in any other.
//
// Pure: bodies in, bodies out; no I/O, no clock (times are passed in), no
// randomness (the nonce is passed in).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "peersock/pairing/pairing.hpp"

namespace peersock::pairing {

inline constexpr std::string_view kHelloPhase = "pair-hello";
inline constexpr std::string_view kWelcomePhase = "pair-welcome";
inline constexpr std::string_view kForgottenPhase = "pair-forgotten";
// A hello older (or newer) than this is not answered: the clocks of two
// machines agree this well, and a relay replaying old hellos gets nothing.
inline constexpr int64_t kHelloMaxAgeSeconds = 300;
inline constexpr size_t kMaxHelloBody = 512;
inline constexpr size_t kNonceHexChars = 32;

// What a session needs from a successful hello: both nonces.
struct Ticket {
  std::string client_nonce, server_nonce;
};

// The session's own mailbox id, from K and the ticket.
std::string session_mailbox_id(const Key& mailbox_key, const Ticket& ticket);

namespace hello {
struct Paired {
  Ticket ticket;
};
struct Forgotten {};  // the other side forgot the pairing
struct BothClients {};  // another client said hello: both sides open the streams
}  // namespace hello
using HelloEvent = std::variant<hello::Paired, hello::Forgotten, hello::BothClients>;

struct Message {
  std::string phase, body;
};
struct HelloOutput {
  std::vector<Message> to_add;  // our messages for the window mailbox, in order
  std::vector<HelloEvent> events;
};

class Hello {
 public:
  enum class Role { client, server };

  // `pairing` may be a tombstone (start() then only says so). `window`: the
  // current window (window_of(now)); `nonce`: kNonceHexChars lowercase hex
  // from the CSPRNG, the client's own nonce (the server draws one per
  // answered hello, see on_message).
  Hello(Role role, const Pairing& pairing, uint64_t window, std::string nonce);

  // Client: the hello. Tombstone (either role): the forgotten notice, and
  // event Forgotten is NOT reported (it is ours).
  HelloOutput start(int64_t now);

  // A message of another side. `next_nonce` is used if the server answers.
  // Not answered, and no event: unknown phases, bodies that do not parse or
  // whose MAC is wrong (anyone who can write to the relay can put them
  // there), hellos outside kHelloMaxAgeSeconds or answered before, and
  // welcomes for another client. Errors: none (nothing a relay writes can
  // end a serving side).
  HelloOutput on_message(std::string_view phase, std::string_view body, int64_t now, const std::string& next_nonce);

  // Messages that were dropped as invalid (for the debug log).
  size_t ignored() const { return ignored_; }

 private:
  std::string mac(std::string_view label, std::initializer_list<std::string_view> fields) const;

  Role role_;
  Key key_;
  bool tombstone_;
  uint64_t window_;
  std::string nonce_;
  std::vector<std::string> answered_;  // client nonces the server answered
  size_t ignored_ = 0;
  bool paired_ = false;  // client: done
};

}  // namespace peersock::pairing
