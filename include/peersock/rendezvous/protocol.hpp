// The magic-wormhole mailbox protocol as peersock uses it (docs/protocol.md §2),
// as a pure state machine: text frames in, text frames and events out. No I/O
// and no clock, so it is unit-testable and fuzzable; rendezvous::Client moves
// the frames over a websocket.
//
// Both roles: welcome -> bind -> (generator: allocate -> allocated) -> claim
// -> claimed -> open. Our own adds (add(); send_ice() for the `ice` phase)
// are sent as soon as the mailbox is open, so both sides gather in parallel.
// The first `message` with phase "ice" from another side is reported once
// (PeerIce); every message of another phase from another side is reported
// (PeerMessage: the signaling channel above decides what it means).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

namespace peersock::rendezvous {

inline constexpr std::string_view kAppId = "peersock.namepad.de";
inline constexpr size_t kMaxFrameBytes = 256 * 1024;

// lister: only binds and lists the claimed nameplates (`list` ->
// `nameplates`), for completing the nameplate while the user types a code.
// paired: no nameplate; opens a mailbox whose id both sides know already
// (a --peer session, pairing/hello.hpp).
enum class Role { generator, consumer, lister, paired };

// At most this many nameplates are taken from a `nameplates` message; a
// longer list is a broken or hostile server.
inline constexpr size_t kMaxListedNameplates = 10000;

namespace event {
struct Motd {
  std::string text;
};  // welcome.motd, to show the user
struct NameplateAllocated {
  std::string nameplate;
};                      // generator: build the code now
struct MailboxOpen {};  // waiting for the other side
struct PeerIce {
  std::string body;
};                 // the peer's ice body (raw)
struct PeerMessage {
  std::string phase;
  std::string body;
  std::string side;
};                 // another side's message of a phase other than "ice"
struct Closed {};  // server confirmed close
struct Nameplates {
  std::vector<std::string> ids;
};  // reply to list_nameplates(), valid ids only
}  // namespace event
using Event = std::variant<event::Motd, event::NameplateAllocated, event::MailboxOpen, event::PeerIce,
                           event::PeerMessage, event::Closed, event::Nameplates>;

struct Output {
  std::vector<std::string> to_send;  // text frames, in order
  std::vector<Event> events;
};

// Random side id: 10 hex characters from the CSPRNG.
std::string random_side();

class Protocol {
 public:
  // `nameplate` is required for the consumer, ignored for the generator.
  Protocol(Role role, std::string side, std::string nameplate = {});
  // Role::paired: binds, then opens `mailbox` (1..256 characters) right
  // after the welcome, and again after a reconnect; no nameplate.
  static Protocol for_mailbox(std::string side, std::string mailbox);

  // A text frame from the server. Errors: Error(relay) with the server's text
  // for welcome.error and every `error` message (e.g. "crowded");
  // CounterpartyError for malformed JSON, wrong types, missing keys,
  // oversize frames, or messages that make no sense in the current state.
  Output on_text(std::string_view text);

  // Our message {"type":"add","phase":PHASE,"body":BODY}: sent once the
  // mailbox is open (immediately if it already is), in the order of the
  // calls, and again after a reconnect.
  Output add(std::string phase, std::string body);
  // add("ice", body). Call once.
  Output send_ice(std::string body);

  // Asks the server for the nameplates currently claimed (any role; sent
  // once bound, i.e. right after welcome if called before it). Each call
  // sends one `list`; each reply is one event::Nameplates.
  Output list_nameplates();

  // Releases the nameplate (if claimed) and keeps the mailbox open: the
  // code is spent, the two sides still talk (protocol v6 restarts). After
  // a reconnect the mailbox is opened again directly, without a claim.
  // Idempotent; nothing before the mailbox is known.
  Output release_nameplate();

  // {"type":"ping","ping":n}: the server answers with a pong (any frame
  // from it shows the websocket is alive). Nothing before the welcome.
  Output ping(uint32_t n);

  // Releases the nameplate (if claimed) and closes the mailbox (if open) with
  // `mood` (happy, lonely, scary, errory). Idempotent.
  Output finish(std::string_view mood);

  // The websocket was lost and a new one is opening: start again from the
  // server's welcome with the same side, nameplate and mailbox. After the
  // new welcome we bind and claim the nameplate we had (the generator
  // allocates only if it never got one), reopen the mailbox and add our ice
  // body again if we had sent it (the peer ignores a repeat). Nothing is
  // emitted for what already happened (no second NameplateAllocated).
  // Ignored once finished.
  void reconnect();
  // welcome came on the current websocket.
  bool welcomed() const { return state_ != State::wait_welcome; }
  // The mailbox is open on the current websocket (claimed came).
  bool mailbox_open() const { return state_ == State::open; }
  // The nameplate: the consumer's, or the generator's once allocated.
  const std::string& nameplate() const { return nameplate_; }
  // A `message` from another side (any phase) has arrived: the peer is there.
  bool peer_seen() const { return peer_seen_; }

  bool peer_ice_received() const { return peer_ice_received_; }
  const std::string& side() const { return side_; }

 private:
  enum class State { wait_welcome, wait_allocated, wait_claimed, open, bound, finished };
  Role role_;
  std::string side_;
  std::string nameplate_;
  std::string mailbox_;
  State state_ = State::wait_welcome;
  struct Added {
    std::string phase, body;
  };
  std::vector<Added> added_;  // every add, in order: sent once open, again after a reconnect
  size_t sent_ = 0;           // how many of added_ went out on the current connection
  bool ice_added_ = false;
  void send_pending(Output& out);
  void open_mailbox(Output& out);
  bool peer_ice_received_ = false;
  bool peer_seen_ = false;
  bool nameplate_claimed_ = false;
  bool nameplate_released_ = false;
  bool nameplate_given_up_ = false;  // release_nameplate(): not claimed again after a reconnect
  bool list_pending_ = false;  // list_nameplates() before welcome
};

}  // namespace peersock::rendezvous
