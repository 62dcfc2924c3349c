#include "peersock/session/mailbox.hpp"

#include <fmt/core.h>

#include <algorithm>

#include "peersock/c_boundary.hpp"
#include "peersock/log.hpp"
#include "peersock/session/ending.hpp"

namespace peersock::session {

using log::Layer;

Mailbox::Mailbox(bool generator, std::string nameplate, MailboxEvents events)
    : events_(std::move(events)),
      protocol_(generator ? rendezvous::Role::generator : rendezvous::Role::consumer, rendezvous::random_side(),
                generator ? std::string() : std::move(nameplate)),
      generator_(generator) {}

void Mailbox::connect(const std::string& relay_url) {
  if (client_ || closing_) return;
  relay_url_ = relay_url;
  open_websocket();
}

void Mailbox::open_websocket() {
  websocket_open_ = false;
  update_deadline();
  client_ = std::make_unique<rendezvous::Client>(relay_url_, rendezvous::ClientCallbacks{
                                                                 [this] {
                                                                   websocket_open_ = true;
                                                                   update_deadline();
                                                                 },
                                                                 [this](std::string_view text) { on_text(text); },
                                                                 [this](const Error& e) { on_failed(e); },
                                                             });
}

void Mailbox::on_text(std::string_view text) {
  // Called from libsoup's C frames: nothing may be thrown through them.
  try {
    handle(protocol_.on_text(text));
    if (protocol_.welcomed()) {
      if (lost_at_us_ != 0) log::say_line("Reconnected to the rendezvous server; the code still works.");
      ever_welcomed_ = true;
      lost_at_us_ = 0;
      backoff_ms_ = 500;
    }
    update_deadline();
  } catch (...) {
    if (events_.failed) events_.failed(std::current_exception());
  }
}

void Mailbox::on_failed(const Error& e) {
  websocket_open_ = false;
  update_deadline();
  // Once both descriptions are exchanged the mailbox is no longer needed.
  if (protocol_.peer_ice_received() && ice_sent_) {
    log::debug(Layer::rendezvous, "rendezvous connection ended: {}", e.what());
    return;
  }
  const gint64 now = g_get_monotonic_time();
  // A violation (binary or oversized frame) is not a lost connection.
  if (ever_welcomed_ && !closing_ && e.code() == ExitCode::relay) {
    if (lost_at_us_ == 0) {
      lost_at_us_ = now;
      log::warning("relay-reconnecting", "The connection to the rendezvous server was lost; reconnecting...");
    }
    if (now - lost_at_us_ < static_cast<gint64>(kReconnectWindowMs) * 1000) {
      log::debug(Layer::rendezvous, "rendezvous connection lost ({}); retrying in {} ms", e.what(), backoff_ms_);
      dead_client_ = std::move(client_);
      retry_ = g_timeout_add(backoff_ms_, &Mailbox::on_retry, this);
      backoff_ms_ = std::min<guint>(backoff_ms_ * 2, 8000);
      return;
    }
    if (events_.failed)
      events_.failed(std::make_exception_ptr(
          Error(ExitCode::relay, fmt::format("the connection to the rendezvous server was lost and not re-established "
                                             "within {} s: {}",
                                             kReconnectWindowMs / 1000, e.what()))));
    return;
  }
  if (events_.failed) events_.failed(std::make_exception_ptr(e));
}

void Mailbox::update_deadline() {
  Awaiting now = Awaiting::nothing;
  if (closing_ || !websocket_open_) {
    now = Awaiting::nothing;
  } else if (!protocol_.welcomed()) {
    now = Awaiting::welcome;
  } else if (!protocol_.mailbox_open()) {
    now = Awaiting::mailbox;
  } else if (!generator_ && !protocol_.peer_seen()) {
    now = Awaiting::peer;
  }
  if (now == awaiting_) return;
  awaiting_ = now;
  deadline_.reset();
  const guint ms = now == Awaiting::welcome   ? kWelcomeDeadlineMs
                   : now == Awaiting::mailbox ? kClaimDeadlineMs
                                              : kPeerDeadlineMs;
  if (now != Awaiting::nothing) deadline_ = g_timeout_add(ms, &Mailbox::on_deadline, this);
}

gboolean Mailbox::on_deadline(gpointer self) {
  return c_boundary("the rendezvous deadline", [&]() -> gboolean {
    auto* m = static_cast<Mailbox*>(self);
    m->deadline_.fired();
    std::string why;
    switch (m->awaiting_) {
      case Awaiting::welcome:
        why = fmt::format("the rendezvous server sent no welcome within {} s of the connection", kWelcomeDeadlineMs / 1000);
        break;
      case Awaiting::mailbox:
        why = m->protocol_.nameplate().empty()
                  ? fmt::format("the rendezvous server allocated no nameplate within {} s", kClaimDeadlineMs / 1000)
                  : fmt::format("the rendezvous server did not confirm our claim of nameplate {} within {} s",
                                m->protocol_.nameplate(), kClaimDeadlineMs / 1000);
        break;
      case Awaiting::peer:
        why = fmt::format(
            "nothing from the other side within {} s of joining nameplate {} (is the code's number right, and is the "
            "other side still waiting?)",
            kPeerDeadlineMs / 1000, m->protocol_.nameplate());
        break;
      case Awaiting::nothing: return G_SOURCE_REMOVE;
    }
    m->awaiting_ = Awaiting::nothing;
    if (m->events_.failed) m->events_.failed(std::make_exception_ptr(Error(ExitCode::relay, why)));
    return G_SOURCE_REMOVE;
  });
}

gboolean Mailbox::on_retry(gpointer self) {
  return c_boundary("the rendezvous reconnect", [&]() -> gboolean {
    auto* m = static_cast<Mailbox*>(self);
    m->retry_.fired();
    m->dead_client_.reset();
    if (m->closing_) return G_SOURCE_REMOVE;
    m->protocol_.reconnect();
    m->open_websocket();
    return G_SOURCE_REMOVE;
  });
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
  update_deadline();
  client_->send(protocol_.finish("happy").to_send);
  client_->close();
}

void Mailbox::close(ExitCode why) {
  if (!client_ || closing_) {
    closing_ = true;
    update_deadline();
    return;
  }
  closing_ = true;
  update_deadline();
  try {
    client_->send(protocol_.finish(mood_for(why, protocol_.peer_ice_received())).to_send);
  } catch (const std::exception&) {
    // A websocket that cannot take the goodbye is closed all the same.
  }
  client_->close();
}

}  // namespace peersock::session
