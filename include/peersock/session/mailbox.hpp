// The rendezvous stage (docs/protocol.md §2): the mailbox protocol
// (rendezvous::Protocol, a pure state machine) over its websocket
// (rendezvous::Client). What the server says comes up as the protocol's
// events; what we say goes out at once.
//
// Lifecycle: made at the start (the protocol needs no network yet);
// connect() once the STUN/TURN names resolved, because a name that does not
// resolve is bad input and must fail before anyone is contacted; release()
// once authenticated (the mailbox has done its job); close() with a mood
// from how the run ended.
#pragma once

#include <exception>
#include <functional>
#include <memory>
#include <string>

#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
#include "peersock/stage.hpp"

namespace peersock::session {

struct MailboxEvents {
  std::function<void(const rendezvous::Event&)> event;
  // The websocket failed or closed while we still needed it (Error(relay)),
  // or the server said something wrong or hostile (Error(relay) with its
  // text, CounterpartyError): the exception, for the owner to end with.
  std::function<void(std::exception_ptr)> failed;
};

class Mailbox final : public Stage {
 public:
  // `nameplate`: the consumer's, from its code; empty for the generator.
  Mailbox(bool generator, std::string nameplate, MailboxEvents events);

  // Opens the websocket. Idempotent.
  void connect(const std::string& relay_url);
  bool connected() const { return static_cast<bool>(client_); }

  // Our ice body (once; sent as soon as the mailbox is open).
  void send_ice(std::string body);
  bool peer_ice_received() const { return protocol_.peer_ice_received(); }

  // Authenticated: release the nameplate, close the mailbox happily.
  void release();

  void close(ExitCode why) override;
  bool closed() const override { return !client_ || client_->closed(); }

 private:
  void on_text(std::string_view text);
  void on_failed(const Error& e);
  void handle(const rendezvous::Output& out);

  MailboxEvents events_;
  rendezvous::Protocol protocol_;
  std::unique_ptr<rendezvous::Client> client_;
  bool ice_sent_ = false;
  bool closing_ = false;
};

}  // namespace peersock::session
