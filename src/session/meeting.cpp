#include "peersock/session/meeting.hpp"

#include <fmt/core.h>
#include <openssl/rand.h>

#include <algorithm>

#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/session/mailbox.hpp"

namespace peersock::session {

using log::Layer;

namespace {

std::string random_nonce() {
  uint8_t bytes[pairing::kNonceHexChars / 2];
  if (RAND_bytes(bytes, sizeof bytes) != 1) throw Error(ExitCode::failure, "RAND_bytes failed");
  static constexpr char kHex[] = "0123456789abcdef";
  std::string s;
  for (uint8_t b : bytes) {
    s += kHex[b >> 4];
    s += kHex[b & 15];
  }
  return s;
}

size_t random_below(size_t n) {
  uint32_t r = 0;
  if (RAND_bytes(reinterpret_cast<uint8_t*>(&r), sizeof r) != 1) throw Error(ExitCode::failure, "RAND_bytes failed");
  return r % n;
}

constexpr guint kMaxServeBackoffMs = 30'000;

}  // namespace

Meeting::Meeting(pairing::Hello::Role role, pairing::Pairing pairing, bool serve, int64_t window_seconds,
                 MeetingEvents events)
    : role_(role),
      pairing_(std::move(pairing)),
      serve_(serve),
      window_seconds_(std::max<int64_t>(window_seconds, 1)),
      events_(std::move(events)) {}

Meeting::~Meeting() {
  window_end_.reset();
  slot_wait_.reset();
  retry_.reset();
}

int64_t Meeting::now_seconds() { return g_get_real_time() / 1'000'000; }

bool Meeting::closed() const {
  auto all_closed = [](const auto& v) {
    return std::all_of(v.begin(), v.end(), [](const auto& s) { return !s->client || s->client->closed(); });
  };
  return all_closed(slots_) && all_closed(leaving_);
}

void Meeting::connect(const std::string& relay_url) {
  if (connected_ || closing_) return;
  connected_ = true;
  relay_url_ = relay_url;
  open_window();
}

// The window we are in: a new hello (and client nonce), every unused slot
// for the server side, the first slot for a client, and a timer for the
// window's end.
void Meeting::open_window() {
  const int64_t now = now_seconds();
  window_ = pairing::window_of(now, window_seconds_);
  nonce_ = random_nonce();
  hello_.emplace(role_, pairing_, window_, nonce_);
  spent_.assign(kSlots, false);
  reuse_at_us_.assign(kSlots, 0);
  slot_wait_ms_ = kSlotWaitMs;
  const int64_t left_s = static_cast<int64_t>(window_ + 1) * window_seconds_ - now;
  window_end_ = g_timeout_add(static_cast<guint>(std::clamp<int64_t>(left_s, 1, 86400) * 1000), &Meeting::on_window_end,
                              this);
  log::debug(Layer::rendezvous, "meeting the other side in window {} ({} s left)", window_, left_s);
  if (role_ == pairing::Hello::Role::server) {
    for (size_t i = 0; i < kSlots; ++i) open_slot(i);
  } else {
    next_client_slot();
  }
}

void Meeting::open_slot(size_t index) {
  auto slot = std::make_unique<Slot>(Slot{
      index, rendezvous::Protocol::for_mailbox(rendezvous::random_side(),
                                               pairing::mailbox_id(pairing_.mailbox_key, window_ * kSlots + index)),
      nullptr});
  Slot* s = slot.get();
  handle(*s, hello_->start(now_seconds()));
  s->client = std::make_unique<rendezvous::Client>(relay_url_, rendezvous::ClientCallbacks{
                                                                   nullptr,
                                                                   [this, s](std::string_view t) { on_text(*s, t); },
                                                                   [this, s](const Error& e) { on_failed(*s, e); },
                                                               });
  slots_.push_back(std::move(slot));
}

// A client's next try: a slot of this window not tried yet, at random (all
// tried: start over); kSlotWaitMs for a welcome there.
void Meeting::next_client_slot() {
  for (auto& s : slots_) leave(*s, "lonely");
  if (std::all_of(spent_.begin(), spent_.end(), [](bool b) { return b; })) {
    spent_.assign(kSlots, false);
    slot_wait_ms_ = std::min(slot_wait_ms_ * 2, kMaxSlotWaitMs);
  }
  size_t untried = static_cast<size_t>(std::count(spent_.begin(), spent_.end(), false));
  size_t pick = random_below(untried);
  for (size_t i = 0; i < kSlots; ++i) {
    if (spent_[i]) continue;
    if (pick-- == 0) {
      spent_[i] = true;
      open_slot(i);
      break;
    }
  }
  slot_wait_ = g_timeout_add(slot_wait_ms_, &Meeting::on_slot_wait, this);
}

gboolean Meeting::on_slot_wait(gpointer self) {
  auto* m = static_cast<Meeting*>(self);
  m->slot_wait_.fired();
  try {
    if (!m->closing_ && !m->done_) m->next_client_slot();
  } catch (...) {
    m->fail(std::current_exception());
  }
  return G_SOURCE_REMOVE;
}

// Says goodbye on the slot's websocket and moves it to leaving_; sweep()
// frees it later (never from inside its own callback).
void Meeting::leave(Slot& slot, std::string_view mood) {
  if (slot.leaving) return;
  slot.leaving = true;
  try {
    if (slot.client) {
      slot.client->send(slot.protocol.finish(mood).to_send);
      slot.client->close();
    }
  } catch (const std::exception&) {
    // A websocket that cannot take the goodbye is closed all the same.
  }
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->get() == &slot) {
      leaving_.push_back(std::move(*it));
      slots_.erase(it);
      break;
    }
  }
  if (!retry_) retry_ = g_timeout_add(1000, &Meeting::on_retry, this);
}

void Meeting::sweep() {
  leaving_.erase(std::remove_if(leaving_.begin(), leaving_.end(),
                                [](const auto& s) { return !s->client || s->client->closed(); }),
                 leaving_.end());
}

gboolean Meeting::on_window_end(gpointer self) {
  auto* m = static_cast<Meeting*>(self);
  m->window_end_.fired();
  try {
    if (m->closing_ || m->done_) return G_SOURCE_REMOVE;
    while (!m->slots_.empty()) m->leave(*m->slots_.front(), "lonely");
    m->slot_wait_.reset();
    m->open_window();
  } catch (...) {
    m->fail(std::current_exception());
  }
  return G_SOURCE_REMOVE;
}

void Meeting::fail(std::exception_ptr e) {
  if (done_) return;
  done_ = true;
  if (events_.failed) events_.failed(e);
}

void Meeting::on_text(Slot& slot, std::string_view text) {
  // Called from libsoup's C frames: nothing may be thrown through them.
  try {
    if (slot.leaving || done_) return;
    handle(slot, slot.protocol.on_text(text));
    if (slot.protocol.welcomed() && !slot.welcomed) {
      slot.welcomed = true;
      lost_at_us_ = 0;
      backoff_ms_ = 500;
    }
  } catch (const Error& e) {
    // Two clients picked this slot at once: the server said crowded to the
    // second. It cannot close the mailbox any more; another slot it is.
    const bool crowded =
        e.code() == ExitCode::relay && std::string_view(e.what()).find("crowded") != std::string_view::npos;
    if (crowded && role_ == pairing::Hello::Role::server) {
      // A slot reopened while its old client stayed: dead for this window.
      log::debug(Layer::rendezvous, "meeting slot {} is crowded; not used again in this window", slot.index);
      spent_[slot.index] = true;
      reuse_at_us_[slot.index] = 0;
      leave(slot, "lonely");
      return;
    }
    if (crowded) {
      log::debug(Layer::rendezvous, "meeting slot {} is crowded; trying another", slot.index);
      slot_wait_.reset();
      try {
        next_client_slot();
      } catch (...) {
        fail(std::current_exception());
      }
      return;
    }
    fail(std::current_exception());
  } catch (...) {
    fail(std::current_exception());
  }
}

void Meeting::handle(Slot& slot, const rendezvous::Output& out) {
  if (slot.client) slot.client->send(out.to_send);
  for (const auto& event : out.events) {
    if (done_ || slot.leaving) return;
    if (std::holds_alternative<rendezvous::event::MailboxOpen>(event) && pairing_.secret && !said_waiting_ &&
        (role_ == pairing::Hello::Role::client || ++slots_opened_ == kSlots)) {
      // Said once the other side can find us: a client in its first slot,
      // the server side in all of them.
      said_waiting_ = true;
      log::say_line(fmt::format("Waiting for the other side of the pairing {}...", pairing_.name));
    }
    if (std::holds_alternative<rendezvous::event::MailboxOpen>(event) && !pairing_.secret) {
      // Our notice went out with the open, on the same ordered websocket. A
      // client has said it where the server side waits; the server side
      // says it in every slot before it goes.
      if (role_ == pairing::Hello::Role::client || ++notices_said_ == kSlots) {
        fail(std::make_exception_ptr(Error(
            ExitCode::code_mismatch, fmt::format("the pairing {} was forgotten here (peersock peers forget); the "
                                                 "other side is told so when it tries",
                                                 pairing_.name))));
        return;
      }
      continue;
    }
    if (auto* m = std::get_if<rendezvous::event::PeerMessage>(&event))
      handle(slot, hello_->on_message(m->phase, m->body, now_seconds(), random_nonce()));
  }
}

void Meeting::handle(Slot& slot, const pairing::HelloOutput& out) {
  for (const auto& m : out.to_add) {
    auto sent = slot.protocol.add(m.phase, m.body);
    if (slot.client) slot.client->send(sent.to_send);
  }
  for (const auto& e : out.events) {
    if (done_) return;
    if (auto* p = std::get_if<pairing::hello::Paired>(&e)) {
      if (role_ == pairing::Hello::Role::server) {
        // This slot met its client; it rests until the mailbox has ended.
        spent_[slot.index] = true;
        reuse_at_us_[slot.index] = g_get_monotonic_time() + kSlotReuseUs;
        leave(slot, "happy");
      }
      if (!serve_) {
        done_ = true;
        slot_wait_.reset();
        window_end_.reset();
        while (!slots_.empty()) leave(*slots_.front(), "happy");
      }
      if (events_.paired) events_.paired(p->ticket);
    } else if (std::holds_alternative<pairing::hello::Forgotten>(e)) {
      fail(std::make_exception_ptr(
          Error(ExitCode::code_mismatch,
                fmt::format("the other side has forgotten the pairing {} (peersock peers forget {} removes it here)",
                            pairing_.name, pairing_.name))));
    } else if (std::holds_alternative<pairing::hello::BothClients>(e)) {
      fail(std::make_exception_ptr(
          UsageError("both sides open the streams: one side must be connect, connect-unix or stdio-a")));
    }
  }
  if (hello_->ignored() > 0) log::debug(Layer::rendezvous, "{} invalid hello messages ignored", hello_->ignored());
}

void Meeting::on_failed(Slot& slot, const Error& e) {
  if (closing_ || done_ || slot.leaving) return;
  const gint64 now = g_get_monotonic_time();
  const bool was_up = slot.welcomed || lost_at_us_ != 0 || serve_;
  if (!was_up || e.code() != ExitCode::relay) {
    fail(std::make_exception_ptr(e));
    return;
  }
  if (lost_at_us_ == 0) {
    lost_at_us_ = now;
    log::warning("relay-reconnecting", "The connection to the rendezvous server was lost; reconnecting...");
  }
  if (!serve_ && now - lost_at_us_ >= static_cast<gint64>(Mailbox::kReconnectWindowMs) * 1000) {
    fail(std::make_exception_ptr(Error(
        ExitCode::relay, fmt::format("the connection to the rendezvous server was lost and not re-established within "
                                     "{} s: {}",
                                     Mailbox::kReconnectWindowMs / 1000, e.what()))));
    return;
  }
  // The slot goes; on_retry opens what is missing after the backoff.
  slot.leaving = true;
  for (auto it = slots_.begin(); it != slots_.end(); ++it) {
    if (it->get() == &slot) {
      leaving_.push_back(std::move(*it));
      slots_.erase(it);
      break;
    }
  }
  if (role_ == pairing::Hello::Role::client) spent_[slot.index] = false;
  retry_.reset();
  retry_ = g_timeout_add(backoff_ms_, &Meeting::on_retry, this);
  backoff_ms_ = std::min<guint>(backoff_ms_ * 2, serve_ ? kMaxServeBackoffMs : 8000);
}

// Frees the slots that said goodbye, and (after a lost connection) opens
// what is missing: the server side's unused slots, a client's next try.
gboolean Meeting::on_retry(gpointer self) {
  auto* m = static_cast<Meeting*>(self);
  m->retry_.fired();
  try {
    m->sweep();
    if (m->closing_ || m->done_) return G_SOURCE_REMOVE;
    if (m->role_ == pairing::Hello::Role::server) {
      const gint64 now = g_get_monotonic_time();
      bool resting = false;
      for (size_t i = 0; i < kSlots; ++i) {
        if (m->spent_[i] && m->reuse_at_us_[i] != 0 && now >= m->reuse_at_us_[i]) {
          m->spent_[i] = false;
          m->reuse_at_us_[i] = 0;
        }
        resting = resting || m->reuse_at_us_[i] != 0;
        const bool open = std::any_of(m->slots_.begin(), m->slots_.end(), [&](const auto& s) { return s->index == i; });
        if (!open && !m->spent_[i]) m->open_slot(i);
      }
      if (resting && !m->retry_) m->retry_ = g_timeout_add(1000, &Meeting::on_retry, m);
    } else if (m->slots_.empty() && !m->slot_wait_) {
      m->next_client_slot();
    }
    if (!m->leaving_.empty() && !m->retry_) m->retry_ = g_timeout_add(1000, &Meeting::on_retry, m);
  } catch (...) {
    m->fail(std::current_exception());
  }
  return G_SOURCE_REMOVE;
}

void Meeting::close(ExitCode) {
  if (closing_) return;
  closing_ = true;
  window_end_.reset();
  slot_wait_.reset();
  retry_.reset();
  while (!slots_.empty()) leave(*slots_.front(), "happy");
  retry_.reset();  // leave() arms it; nothing more is opened
}

}  // namespace peersock::session
