// The rendezvous stage (docs/protocol.md §2): the mailbox protocol
// (rendezvous::Protocol, a pure state machine) over its websocket
// (rendezvous::Client), with the encrypted signaling channel on top
// (pake::Channel, §2.9): the PAKE on the code, then our ice body sealed.
// What the server says comes up as the protocol's events (the peer's ice
// body, opened, as event::PeerIce); what we say goes out at once.
//
// Two timers serve the channel: the consumer's wait for the generator's key
// share (pake::kOriginalWaitMs; then the generator is taken for the
// original peersock), and, once the key is agreed, kPeerBodyDeadlineMs for
// the peer's body (a relay that drops it ends the run with exit 6, never a
// hang).
//
// Lifecycle: made at the start (the protocol needs no network yet);
// connect() once the STUN/TURN lookups ended, so that their warnings come
// before the code (and a run that cannot work fails before anyone is
// contacted); release()
// once authenticated (the mailbox has done its job); close() with a mood
// from how the run ended.
//
// A websocket lost after the server's welcome, while the exchange is not
// done, is opened again with backoff (0.5 s doubling to 8 s), keeping the
// side, the nameplate and with them the code; failed() only when no new
// connection was welcomed within kReconnectWindowMs of the loss (exit 6).
// The first connection is not retried: a wrong --relay fails at once.
// After keep_open() (protocol v6) the mailbox stays for ICE restarts: lost
// websockets are opened again for as long as the session lasts.
//
// Nothing the server owes us is waited for forever (exit 6 at the deadline):
// the welcome within kWelcomeDeadlineMs of the websocket opening, the
// nameplate allocated and the claim answered (the mailbox open) within
// kClaimDeadlineMs of the welcome, and -- for the consumer, whose peer is
// already there by definition -- the peer's first message within
// kPeerDeadlineMs of the mailbox opening. (The real server answers in
// milliseconds and the generator has posted its message before the code
// could be typed; a relay that stalls, a mistyped nameplate or a generator
// that is gone would otherwise hang the consumer.) The generator's wait for
// the other side has no limit: that is the user's choice (Ctrl-C).
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "peersock/glib/raii.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
#include "peersock/pake/channel.hpp"
#include "peersock/stage.hpp"

namespace peersock::session {

struct MailboxEvents {
  std::function<void(const rendezvous::Event&)> event;
  // The websocket failed or closed while we still needed it (Error(relay)),
  // or the server said something wrong or hostile (Error(relay) with its
  // text, CounterpartyError): the exception, for the owner to end with.
  std::function<void(std::exception_ptr)> failed;
  // Protocol v6 (after keep_open): the peer's description for ICE restart
  // `generation`, opened (not yet parsed).
  std::function<void(uint32_t generation, std::string body)> peer_restart;
};

struct PakeOptions {
  bool allow_original = true;  // false: --no-original
  bool speak_pake = true;      // false: PEERSOCK_PROTOCOL=1, plaintext like the original
};

class Mailbox final : public Stage {
 public:
  static constexpr guint kReconnectWindowMs = 60'000;
  static constexpr guint kWelcomeDeadlineMs = 10'000;
  static constexpr guint kClaimDeadlineMs = 10'000;
  static constexpr guint kPeerDeadlineMs = 30'000;
  // From the key agreement to the peer's sealed body: its ICE gathering
  // (bounded by the STUN/TURN timeouts, seconds) and a relay round trip.
  static constexpr guint kPeerBodyDeadlineMs = 60'000;

  // `nameplate`: the consumer's, from its code; empty for the generator.
  // `code`: the consumer's auth password; the generator's comes by set_code.
  Mailbox(bool generator, std::string nameplate, std::string code, PakeOptions pake, MailboxEvents events);
  ~Mailbox() override;

  // The generator's code, once its nameplate is allocated (before the
  // mailbox opens: the server's claimed comes after allocated).
  void set_code(const std::string& code);
  // A paired session's own mailbox (docs/protocol.md §2.10): no nameplate;
  // its id stands in the PAKE's channel identifier where the nameplate
  // would, and both sides know the code from the start.
  struct Paired {
    std::string mailbox_id;
  };
  Mailbox(bool generator, Paired paired, std::string code, PakeOptions pake, MailboxEvents events);

  // Opens the websocket. Idempotent.
  void connect(const std::string& relay_url);
  bool connected() const { return static_cast<bool>(client_); }

  // Our ice body (once; sent as soon as the mailbox is open).
  void send_ice(std::string body);
  bool peer_ice_received() const { return channel_ && channel_->peer_ice_received(); }
  // The peer's body came in plaintext: it runs the original peersock (or the
  // relay pretends so), and the relay has seen both sides' addresses.
  bool signaling_in_clear() const { return channel_ && channel_->plaintext() && pake_options_.speak_pake; }

  // Authenticated: release the nameplate, close the mailbox happily.
  void release();
  // Authenticated with a v6 peer: release the nameplate and keep the
  // mailbox open for ICE restarts. From now on a lost websocket is opened
  // again with backoff for as long as the session lasts, no deadline
  // applies, and a server that fails us only turns restarts off (one
  // warning line): the session does not depend on the relay any more.
  void keep_open();
  // After keep_open: makes sure the websocket still reaches the server
  // before a restart needs it. A connection whose address went away (a new
  // host address, a NAT that forgot it) fails only after minutes of TCP
  // retransmissions; so a ping goes out, and when nothing at all comes back
  // within kAliveDeadlineMs the websocket is dropped and opened again (from
  // the new address). Whatever we added is sent again on the new one.
  void check_alive();
  static constexpr guint kAliveDeadlineMs = 3'000;
  // Both sides' mailbox is open for restarts (keep_open, not failed).
  bool can_restart() const { return kept_ && !closing_ && channel_ != nullptr; }
  // Our description for ICE restart `generation`, sealed (pake.hpp).
  // Errors: Error(failure) from the channel.
  void send_restart(uint32_t generation, const std::string& body);

  void close(ExitCode why) override;
  bool closed() const override { return !client_ || client_->closed(); }

 private:
  void open_websocket();
  void on_text(std::string_view text);
  void on_failed(const Error& e);
  void handle(const rendezvous::Output& out);
  void handle_event(const rendezvous::Event& event);
  void handle_channel(pake::Output out);
  void fail(std::exception_ptr e);
  static gboolean on_retry(gpointer self);
  static gboolean on_alive_deadline(gpointer self);
  void reconnect_later(const std::string& why);  // kept_: drop the websocket, open a new one after the backoff
  // What we wait for from the server now, and its deadline (re-armed
  // whenever that changes).
  enum class Awaiting { nothing, welcome, mailbox, peer };
  void update_deadline();
  static gboolean on_deadline(gpointer self);
  static gboolean on_original_wait(gpointer self);
  static gboolean on_peer_body_deadline(gpointer self);

  MailboxEvents events_;
  std::string nameplate_;
  std::string code_;
  PakeOptions pake_options_;
  rendezvous::Protocol protocol_;
  std::unique_ptr<pake::Channel> channel_;  // from the mailbox's opening on
  std::optional<std::string> pending_ice_;    // our body, until the channel exists
  std::string relay_url_;
  std::unique_ptr<rendezvous::Client> client_;
  std::unique_ptr<rendezvous::Client> dead_client_;  // failed; freed from the retry timer, not its own callback
  bool ice_sent_ = false;
  bool closing_ = false;
  bool kept_ = false;  // keep_open(): the session's mailbox
  bool kept_reconnecting_ = false;  // kept_, and a new websocket is on its way
  bool ever_welcomed_ = false;
  gint64 lost_at_us_ = 0;  // 0: not reconnecting
  guint backoff_ms_ = 500;
  glib::SourceId retry_;
  glib::SourceId alive_deadline_;  // check_alive's ping is out
  uint32_t pings_ = 0;
  gint64 last_ping_us_ = 0;  // at most one ping per kAliveDeadlineMs
  bool generator_;
  bool paired_ = false;  // a --peer session's own mailbox
  bool websocket_open_ = false;  // the current websocket connected
  Awaiting awaiting_ = Awaiting::nothing;
  glib::SourceId deadline_;
  glib::SourceId original_wait_;
  glib::SourceId peer_body_deadline_;
};

}  // namespace peersock::session
