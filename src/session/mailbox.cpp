#include "peersock/session/mailbox.hpp"

#include "peersock/log.hpp"
#include "peersock/session/ending.hpp"

namespace peersock::session {

using log::Layer;

Mailbox::Mailbox(bool generator, std::string nameplate, MailboxEvents events)
    : events_(std::move(events)),
      protocol_(generator ? rendezvous::Role::generator : rendezvous::Role::consumer, rendezvous::random_side(),
                generator ? std::string() : std::move(nameplate)) {}

void Mailbox::connect(const std::string& relay_url) {
  if (client_ || closing_) return;
  client_ = std::make_unique<rendezvous::Client>(relay_url, rendezvous::ClientCallbacks{
                                                                nullptr,
                                                                [this](std::string_view text) { on_text(text); },
                                                                [this](const Error& e) { on_failed(e); },
                                                            });
}

void Mailbox::on_text(std::string_view text) {
  // Called from libsoup's C frames: nothing may be thrown through them.
  try {
    handle(protocol_.on_text(text));
  } catch (...) {
    if (events_.failed) events_.failed(std::current_exception());
  }
}

void Mailbox::on_failed(const Error& e) {
  // Once both descriptions are exchanged the mailbox is no longer needed.
  if (protocol_.peer_ice_received() && ice_sent_) {
    log::debug(Layer::rendezvous, "rendezvous connection ended: {}", e.what());
    return;
  }
  if (events_.failed) events_.failed(std::make_exception_ptr(e));
}

void Mailbox::handle(const rendezvous::Output& out) {
  if (client_) client_->send(out.to_send);
  for (const auto& event : out.events)
    if (events_.event) events_.event(event);
}

void Mailbox::send_ice(std::string body) {
  if (ice_sent_) return;
  ice_sent_ = true;
  handle(protocol_.send_ice(std::move(body)));
}

void Mailbox::release() {
  if (!client_ || closing_) return;
  closing_ = true;
  client_->send(protocol_.finish("happy").to_send);
  client_->close();
}

void Mailbox::close(ExitCode why) {
  if (!client_ || closing_) {
    closing_ = true;
    return;
  }
  closing_ = true;
  try {
    client_->send(protocol_.finish(mood_for(why, protocol_.peer_ice_received())).to_send);
  } catch (const std::exception&) {
    // A websocket that cannot take the goodbye is closed all the same.
  }
  client_->close();
}

}  // namespace peersock::session
