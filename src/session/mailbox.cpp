#include "peersock/session/mailbox.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cassert>

#include "peersock/c_boundary.hpp"
#include "peersock/auth/smp.hpp"
#include "peersock/log.hpp"
#include "peersock/session/ending.hpp"

namespace peersock::session {

using log::Layer;

Mailbox::Mailbox(bool generator, std::string nameplate, std::string code, PakeOptions pake, MailboxEvents events)
    : events_(std::move(events)),
      nameplate_(generator ? std::string() : nameplate),
      code_(std::move(code)),
      pake_options_(pake),
      protocol_(generator ? rendezvous::Role::generator : rendezvous::Role::consumer, rendezvous::random_side(),
                generator ? std::string() : std::move(nameplate)),
      generator_(generator) {}

Mailbox::~Mailbox() { auth::wipe(code_); }

void Mailbox::set_code(const std::string& code) {
  code_ = code;
  // The nameplate is the code's first part (docs/protocol.md §2.2).
  nameplate_ = code_.substr(0, code_.find('-'));
}

Mailbox::Mailbox(bool generator, Paired paired, std::string code, PakeOptions pake, MailboxEvents events)
    : events_(std::move(events)),
      nameplate_(paired.mailbox_id),
      code_(std::move(code)),
      pake_options_(pake),
      protocol_(rendezvous::Protocol::for_mailbox(rendezvous::random_side(), std::move(paired.mailbox_id))),
      generator_(generator),
      paired_(true) {}

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
  alive_deadline_.reset();  // the server answered: the websocket works
  try {
    handle(protocol_.on_text(text));
    if (protocol_.welcomed()) {
      if (lost_at_us_ != 0 && !kept_) log::say_line("Reconnected to the rendezvous server; the code still works.");
      if (kept_ && kept_reconnecting_) log::debug(Layer::rendezvous, "the session's mailbox is open again");
      kept_reconnecting_ = false;
      ever_welcomed_ = true;
      lost_at_us_ = 0;
      backoff_ms_ = 500;
    }
    update_deadline();
  } catch (...) {
    fail(std::current_exception());
  }
}

void Mailbox::fail(std::exception_ptr e) {
  if (kept_) {
    // The session runs without the relay; only restarts need it.
    if (closing_) return;
    std::string why = "unknown error";
    try {
      std::rethrow_exception(e);
    } catch (const std::exception& x) {
      why = x.what();
    }
    log::warning("relay-gone", fmt::format("warning: the rendezvous server failed ({}); the session goes on, but "
                                           "cannot move to a new network path any more",
                                           why));
    closing_ = true;
    retry_.reset();
    if (client_) client_->close();
    return;
  }
  if (events_.failed) events_.failed(e);
}

void Mailbox::keep_open() {
  if (!client_ && !dead_client_) return;
  if (closing_) return;
  kept_ = true;
  peer_body_deadline_.reset();
  original_wait_.reset();
  update_deadline();
  handle(protocol_.release_nameplate());
}

// Needed again only for a restart: retried quietly, for as long as the
// session lasts.
void Mailbox::reconnect_later(const std::string& why) {
  alive_deadline_.reset();
  websocket_open_ = false;
  if (retry_) return;  // one is due already
  log::debug(Layer::rendezvous, "rendezvous connection lost ({}); retrying in {} ms", why, backoff_ms_);
  kept_reconnecting_ = true;
  dead_client_ = std::move(client_);
  retry_ = g_timeout_add(backoff_ms_, &Mailbox::on_retry, this);
  backoff_ms_ = std::min<guint>(backoff_ms_ * 2, 8000);
}

void Mailbox::check_alive() {
  if (!kept_ || closing_ || alive_deadline_ || retry_ || !client_ || !protocol_.welcomed()) return;
  const gint64 now = g_get_monotonic_time();
  if (last_ping_us_ != 0 && now - last_ping_us_ < static_cast<gint64>(kAliveDeadlineMs) * 1000) return;
  last_ping_us_ = now;
  handle(protocol_.ping(++pings_));
  alive_deadline_ = g_timeout_add(kAliveDeadlineMs, &Mailbox::on_alive_deadline, this);
}

gboolean Mailbox::on_alive_deadline(gpointer self) {
  return c_boundary("the rendezvous liveness check", [&]() -> gboolean {
    auto* m = static_cast<Mailbox*>(self);
    m->alive_deadline_.fired();
    if (!m->closing_) {
      m->backoff_ms_ = 500;
      m->reconnect_later(fmt::format("no answer to a ping within {} s", kAliveDeadlineMs / 1000));
    }
    return G_SOURCE_REMOVE;
  });
}

void Mailbox::send_restart(uint32_t generation, const std::string& body) {
  if (!can_restart()) return;
  handle_channel(channel_->send_restart(generation, body));
}

void Mailbox::on_failed(const Error& e) {
  websocket_open_ = false;
  update_deadline();
  if (kept_) {
    if (!closing_) reconnect_later(e.what());
    return;
  }
  // Once both descriptions are exchanged the mailbox is no longer needed.
  if (peer_ice_received() && ice_sent_) {
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
  if (closing_ || kept_ || !websocket_open_) {
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
        why = m->paired_ ? fmt::format("the rendezvous server did not open the session's mailbox within {} s",
                                       kClaimDeadlineMs / 1000)
              : m->protocol_.nameplate().empty()
                  ? fmt::format("the rendezvous server allocated no nameplate within {} s", kClaimDeadlineMs / 1000)
                  : fmt::format("the rendezvous server did not confirm our claim of nameplate {} within {} s",
                                m->protocol_.nameplate(), kClaimDeadlineMs / 1000);
        break;
      case Awaiting::peer:
        if (m->paired_) {
          why = fmt::format("nothing from the other side within {} s of meeting it", kPeerDeadlineMs / 1000);
          break;
        }
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
  for (const auto& event : out.events) handle_event(event);
}

// The peer's messages go to the signaling channel, which hands up the ice
// body once it is opened (or came in plaintext from the original).
void Mailbox::handle_event(const rendezvous::Event& event) {
  if (auto* ice = std::get_if<rendezvous::event::PeerIce>(&event)) {
    if (channel_) handle_channel(channel_->on_message({}, pake::kPlainIcePhase, ice->body));
    return;
  }
  if (auto* m = std::get_if<rendezvous::event::PeerMessage>(&event)) {
    if (channel_) handle_channel(channel_->on_message(m->side, m->phase, m->body));
    return;
  }
  const bool opened = std::holds_alternative<rendezvous::event::MailboxOpen>(event);
  if (events_.event) events_.event(event);
  if (opened && !channel_ && !closing_) {
    // The first opening (a reconnect opens again: the channel goes on).
    assert(!code_.empty() && "the generator's code is set when its nameplate is allocated");
    channel_ = std::make_unique<pake::Channel>(pake::Params{
        generator_ ? pake::Role::generator : pake::Role::consumer,
        code_,
        nameplate_,
        protocol_.side(),
        pake_options_.allow_original,
        pake_options_.speak_pake,
    });
    auth::wipe(code_);  // the channel holds what it needs
    handle_channel(channel_->open());
    if (pending_ice_) {
      handle_channel(channel_->send_ice(std::move(*pending_ice_)));
      pending_ice_.reset();
    }
    if (channel_->waiting_for_generator()) original_wait_ = g_timeout_add(pake::kOriginalWaitMs, &Mailbox::on_original_wait, this);
  }
}

void Mailbox::handle_channel(pake::Output out) {
  for (auto& m : out.to_send) handle(protocol_.add(std::move(m.phase), std::move(m.body)));
  if (channel_->key_agreed() && !channel_->peer_ice_received() && !peer_body_deadline_) {
    peer_body_deadline_ = g_timeout_add(kPeerBodyDeadlineMs, &Mailbox::on_peer_body_deadline, this);
  }
  for (auto& e : out.events) {
    if (auto* ice = std::get_if<pake::event::PeerIce>(&e)) {
      peer_body_deadline_.reset();
      original_wait_.reset();
      log::debug(Layer::rendezvous, "the peer's ice body arrived {}", ice->sealed ? "sealed" : "in plaintext");
      if (events_.event) events_.event(rendezvous::event::PeerIce{std::move(ice->body)});
    } else if (auto* restart = std::get_if<pake::event::PeerRestart>(&e)) {
      if (kept_ && !closing_ && events_.peer_restart) events_.peer_restart(restart->generation, std::move(restart->body));
    } else if (std::holds_alternative<pake::event::PeerIsOriginal>(e)) {
      log::debug(Layer::rendezvous, "signaling in plaintext: the other side speaks no PAKE");
    }
  }
}

gboolean Mailbox::on_original_wait(gpointer self) {
  return c_boundary("the wait for the generator's key share", [&]() -> gboolean {
    auto* m = static_cast<Mailbox*>(self);
    m->original_wait_.fired();
    try {
      if (!m->closing_ && m->channel_) m->handle_channel(m->channel_->original_wait_expired());
    } catch (...) {
      m->fail(std::current_exception());
    }
    return G_SOURCE_REMOVE;
  });
}

gboolean Mailbox::on_peer_body_deadline(gpointer self) {
  return c_boundary("the deadline for the peer's sealed body", [&]() -> gboolean {
    auto* m = static_cast<Mailbox*>(self);
    m->peer_body_deadline_.fired();
    if (!m->closing_) {
      m->fail(std::make_exception_ptr(Error(
          ExitCode::relay, fmt::format("the other side's connection details did not arrive within {} s of the key "
                                       "exchange (the rendezvous server lost or withheld them)",
                                       kPeerBodyDeadlineMs / 1000))));
    }
    return G_SOURCE_REMOVE;
  });
}

void Mailbox::send_ice(std::string body) {
  if (ice_sent_) return;
  ice_sent_ = true;
  if (!channel_) {
    pending_ice_ = std::move(body);
    return;
  }
  handle_channel(channel_->send_ice(std::move(body)));
}

void Mailbox::release() {
  if (!client_ || closing_) return;
  closing_ = true;
  update_deadline();
  client_->send(protocol_.finish("happy").to_send);
  client_->close();
}

void Mailbox::close(ExitCode why) {
  original_wait_.reset();
  peer_body_deadline_.reset();
  if (!client_ || closing_) {
    closing_ = true;
    update_deadline();
    return;
  }
  closing_ = true;
  update_deadline();
  try {
    client_->send(protocol_.finish(mood_for(why, peer_ice_received())).to_send);
  } catch (const std::exception&) {
    // A websocket that cannot take the goodbye is closed all the same.
  }
  client_->close();
}

}  // namespace peersock::session
