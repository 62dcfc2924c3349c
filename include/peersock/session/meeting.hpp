// The meeting stage of a --peer session: the hello exchange
// (pairing/hello.hpp) in the pair's meeting mailboxes of the current time
// window. It stands where the code's nameplate stands in a code session:
// once it reports a ticket, the session runs in the ticket's own mailbox
// (session::Mailbox) with the ticket's code, like any code session.
//
// Why slots: the mailbox server lets exactly two sides open a mailbox in its
// lifetime (which ends when all of them closed); a third side gets
// "crowded", and its never-closed entry keeps the mailbox from ever ending
// (until the server prunes it, 11 minutes later; wormhole_mailbox_server
// server.py, open_mailbox and Mailbox.close). One mailbox for every client
// of a serving side would therefore meet one client per window, and two
// clients arriving at once would spoil it for the rest. So each window has
// kSlots meeting mailboxes: the server side holds every unused one open,
// each on its own websocket (the server allows one open per connection),
// and uses each for one client; a client tries them in a random order,
// kSlotWaitMs each, moving on when one is crowded (two clients picked it at
// once) or silent (used already, or the server side is not there yet), for
// as long as it runs (waiting longer in each round without an answer). The
// server side opens a used slot again once its mailbox has ended
// (kSlotReuseUs), so it can meet kSlots clients at once and any number in a
// window.
//
// Windows: at each boundary both sides leave the old window's mailboxes and
// meet in the new one's, so the relay sees new mailbox ids every window.
//
// serve: the meeting goes on after a ticket, for the next client, and keeps
// reconnecting to a lost rendezvous server for as long as it runs.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "peersock/glib/raii.hpp"
#include "peersock/pairing/hello.hpp"
#include "peersock/pairing/pairing.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
#include "peersock/stage.hpp"

namespace peersock::session {

struct MeetingEvents {
  // A session to run. Without serve, once.
  std::function<void(const pairing::Ticket&)> paired;
  // Error(code_mismatch) when a side forgot the pairing (this one: after
  // telling the other), UsageError when both sides open the streams,
  // Error(relay) for the rendezvous server, CounterpartyError for what it
  // sent.
  std::function<void(std::exception_ptr)> failed;
};

class Meeting final : public Stage {
 public:
  static constexpr size_t kSlots = 16;
  // A client's wait in one slot; it doubles after each round of all slots
  // without a welcome (the server side is not running), up to kMaxSlotWaitMs.
  static constexpr guint kSlotWaitMs = 4000;
  static constexpr guint kMaxSlotWaitMs = 30000;
  // The server side opens a used slot again this long after its client
  // left: by then the mailbox has ended (both sides closed), and the new
  // open starts a new lifetime. Still crowded: the client never closed;
  // the slot is dead for the rest of the window.
  static constexpr gint64 kSlotReuseUs = 10'000'000;

  // `window_seconds`: pairing::kWindowSeconds (tests shorten it).
  Meeting(pairing::Hello::Role role, pairing::Pairing pairing, bool serve, int64_t window_seconds,
          MeetingEvents events);
  ~Meeting() override;

  // Opens the current window's meeting mailboxes (the server side: all of
  // them; a client: one). Idempotent.
  void connect(const std::string& relay_url);

  void close(ExitCode why) override;
  bool closed() const override;

 private:
  // One meeting mailbox on its own websocket.
  struct Slot {
    size_t index = 0;
    rendezvous::Protocol protocol;
    std::unique_ptr<rendezvous::Client> client;
    bool welcomed = false, leaving = false;
  };

  void open_window();
  void open_slot(size_t index);
  void leave(Slot& slot, std::string_view mood);
  void next_client_slot();
  void on_text(Slot& slot, std::string_view text);
  void on_failed(Slot& slot, const Error& e);
  void handle(Slot& slot, const rendezvous::Output& out);
  void handle(Slot& slot, const pairing::HelloOutput& out);
  void fail(std::exception_ptr e);
  void sweep();
  static gboolean on_window_end(gpointer self);
  static gboolean on_slot_wait(gpointer self);
  static gboolean on_retry(gpointer self);
  static int64_t now_seconds();

  pairing::Hello::Role role_;
  pairing::Pairing pairing_;
  bool serve_;
  int64_t window_seconds_;
  MeetingEvents events_;
  std::string relay_url_;
  uint64_t window_ = 0;
  std::optional<pairing::Hello> hello_;
  std::string nonce_;  // the client's, for this window
  std::vector<std::unique_ptr<Slot>> slots_;
  std::vector<std::unique_ptr<Slot>> leaving_;  // saying goodbye; freed by sweep(), never from their own callbacks
  std::vector<bool> spent_;  // this window's slots: tried (client); in use, dead or resting (server)
  std::vector<gint64> reuse_at_us_;  // server: when a resting slot may be opened again (0: never)
  guint slot_wait_ms_ = kSlotWaitMs;
  bool connected_ = false, closing_ = false, done_ = false;
  size_t notices_said_ = 0;
  size_t slots_opened_ = 0;    // the server side, until all are open: then "Waiting for..."
  bool said_waiting_ = false;  // a tombstone server side: slots that carry our notice
  gint64 lost_at_us_ = 0;
  guint backoff_ms_ = 500;
  glib::SourceId window_end_, slot_wait_, retry_;
};

}  // namespace peersock::session
