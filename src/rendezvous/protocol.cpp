// The mailbox protocol state machine (docs/protocol.md §2). Everything the server
// sends is untrusted: each frame is size- and depth-checked before nlohmann
// parses it, and every field we use is type-checked, so a hostile or broken
// relay can only produce an Error/CounterpartyError, never undefined
// behaviour or a crash.
#include "peersock/rendezvous/protocol.hpp"

#include <openssl/rand.h>

#include <cassert>
#include <nlohmann/json.hpp>
#include <utility>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::rendezvous {

namespace {

using json = nlohmann::json;

// Sent in bind; the mailbox server only records it for statistics.
constexpr std::string_view kClientVersion = "0.1.0";

// nlohmann's parser recurses per nesting level, so a frame of 100000 '['
// would exhaust the stack before any of our checks ran. No legitimate server
// message nests deeper than 4 (error.orig echoes one of our messages).
constexpr int kMaxDepth = 32;

// Same bound as ice::kMaxBodyBytes; duplicated because the rendezvous layer
// does not depend on the ice layer.
constexpr size_t kMaxBodyBytes = 64 * 1024;
constexpr size_t kMaxMailboxChars = 256;
constexpr size_t kMaxNameplateDigits = 9;

// Server-controlled text ends up in exception messages that are printed to a
// terminal: bounded, and stripped of control characters here already so
// that the message is the same in every output format.
std::string printable(std::string_view text) {
  constexpr size_t kMaxChars = 200;
  std::string out = text::strip_controls(text.substr(0, kMaxChars));
  if (text.size() > kMaxChars) out += "...";
  return out;
}

[[noreturn]] void bad(const std::string& what) {
  throw CounterpartyError("rendezvous server sent an invalid message: " + what);
}

// A required string field of message `type`.
const std::string& string_field(const json& msg, std::string_view type, const char* key) {
  auto it = msg.find(key);
  if (it == msg.end()) bad(std::string(type) + " without \"" + key + "\"");
  if (!it->is_string()) {
    bad(std::string(type) + " field \"" + key + "\" must be a string, got " + it->type_name());
  }
  return it->get_ref<const std::string&>();
}

bool is_valid_nameplate(const std::string& nameplate) {
  if (nameplate.empty() || nameplate.size() > kMaxNameplateDigits) return false;
  for (char c : nameplate) {
    if (c < '0' || c > '9') return false;
  }
  return true;
}

// Explanations for the error strings the mailbox server is known to send, so
// that the user learns what to do rather than just the server's jargon.
std::string explain_server_error(const std::string& error) {
  if (error == "crowded") {
    return " (the nameplate is in use by someone else: two other clients already claimed it;"
           " get a fresh code)";
  }
  if (error == "reclaimed") {
    return " (this nameplate was already used and released; codes are single-use, get a fresh code)";
  }
  if (error == "must bind first") return " (the server lost our bind)";
  return {};
}

}  // namespace

std::string random_side() {
  unsigned char bytes[5];
  if (RAND_bytes(bytes, sizeof bytes) != 1) {
    throw Error(ExitCode::failure, "the OpenSSL random generator failed");
  }
  static constexpr char kHex[] = "0123456789abcdef";
  std::string side;
  for (unsigned char b : bytes) {
    side += kHex[b >> 4];
    side += kHex[b & 0x0f];
  }
  return side;
}

Protocol::Protocol(Role role, std::string side, std::string nameplate)
    : role_(role), side_(std::move(side)), nameplate_(role == Role::consumer ? std::move(nameplate) : std::string()) {
  assert(!side_.empty());
  assert(role_ != Role::consumer || !nameplate_.empty());
}

Protocol Protocol::for_mailbox(std::string side, std::string mailbox) {
  assert(!mailbox.empty() && mailbox.size() <= kMaxMailboxChars);
  Protocol p(Role::paired, std::move(side));
  p.mailbox_ = std::move(mailbox);
  return p;
}

Output Protocol::on_text(std::string_view text) {
  if (text.size() > kMaxFrameBytes) {
    bad("frame of " + std::to_string(text.size()) + " bytes exceeds the limit of " + std::to_string(kMaxFrameBytes));
  }
  if (!text::json_depth_within(text, kMaxDepth))
    bad("JSON nested deeper than " + std::to_string(kMaxDepth) + " levels");
  json msg = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (msg.is_discarded()) bad("not valid JSON");
  if (!msg.is_object()) bad(std::string("expected a JSON object, got ") + msg.type_name());
  const std::string& type = string_field(msg, "message", "type");

  Output out;

  // After finish() the server may still deliver frames that were in flight
  // (a late claimed/message, or an error about our release): none of them
  // matter any more, and the session is ending anyway.
  if (state_ == State::finished) {
    if (type == "closed") out.events.emplace_back(event::Closed{});
    return out;
  }

  if (type == "welcome") {
    if (state_ != State::wait_welcome) bad("a second welcome");
    auto it = msg.find("welcome");
    if (it != msg.end()) {
      if (!it->is_object()) bad(std::string("welcome field \"welcome\" must be an object, got ") + it->type_name());
      if (it->contains("error")) {
        const std::string& error = string_field(*it, "welcome.welcome", "error");
        throw Error(ExitCode::relay, "the rendezvous server refused: " + printable(error));
      }
      if (it->contains("motd")) {
        out.events.emplace_back(event::Motd{string_field(*it, "welcome.welcome", "motd")});
      }
    }
    // The server accepts nothing before welcome, hence bind (and what
    // follows) only now.
    out.to_send.push_back(json{{"type", "bind"},
                               {"appid", kAppId},
                               {"side", side_},
                               {"client_version", json::array({"peersock", kClientVersion})}}
                              .dump());
    if (role_ == Role::lister) {
      state_ = State::bound;
    } else if (role_ == Role::paired || nameplate_given_up_) {
      open_mailbox(out);
    } else if (role_ == Role::generator && nameplate_.empty()) {
      out.to_send.push_back(json{{"type", "allocate"}}.dump());
      state_ = State::wait_allocated;
    } else {
      out.to_send.push_back(json{{"type", "claim"}, {"nameplate", nameplate_}}.dump());
      // Claim and release travel over the same ordered websocket, so once the
      // claim is sent a release is always valid, even before `claimed`.
      nameplate_claimed_ = true;
      state_ = State::wait_claimed;
    }
    if (list_pending_) {
      list_pending_ = false;
      out.to_send.push_back(json{{"type", "list"}}.dump());
    }
    return out;
  }

  if (type == "nameplates") {
    if (state_ == State::wait_welcome) bad("nameplates before welcome");
    auto it = msg.find("nameplates");
    if (it == msg.end()) bad("nameplates without \"nameplates\"");
    if (!it->is_array()) bad(std::string("nameplates field \"nameplates\" must be an array, got ") + it->type_name());
    if (it->size() > kMaxListedNameplates) {
      bad("nameplates lists " + std::to_string(it->size()) + " entries, more than " +
          std::to_string(kMaxListedNameplates));
    }
    event::Nameplates listed;
    for (const json& entry : *it) {
      if (!entry.is_object()) bad(std::string("nameplates entry must be an object, got ") + entry.type_name());
      const std::string& id = string_field(entry, "nameplates entry", "id");
      // Another client of the same app id may use non-numeric nameplates;
      // they cannot be part of a peersock code, so they are not offered.
      if (is_valid_nameplate(id)) listed.ids.push_back(id);
    }
    out.events.emplace_back(std::move(listed));
    return out;
  }

  if (type == "allocated") {
    if (state_ != State::wait_allocated) bad("allocated although we did not allocate a nameplate");
    const std::string& nameplate = string_field(msg, type, "nameplate");
    if (!is_valid_nameplate(nameplate)) bad("allocated nameplate is not 1-9 decimal digits");
    nameplate_ = nameplate;
    out.events.emplace_back(event::NameplateAllocated{nameplate_});
    out.to_send.push_back(json{{"type", "claim"}, {"nameplate", nameplate_}}.dump());
    nameplate_claimed_ = true;
    state_ = State::wait_claimed;
    return out;
  }

  if (type == "claimed") {
    if (state_ != State::wait_claimed) bad("claimed although we have no claim outstanding");
    const std::string& mailbox = string_field(msg, type, "mailbox");
    if (mailbox.empty() || mailbox.size() > kMaxMailboxChars) {
      bad("claimed mailbox id must be 1-" + std::to_string(kMaxMailboxChars) + " characters");
    }
    if (!mailbox_.empty() && mailbox != mailbox_) bad("claimed names another mailbox after a reconnect");
    mailbox_ = mailbox;
    open_mailbox(out);
    return out;
  }

  if (type == "message") {
    if (state_ != State::open) bad("message before the mailbox was opened");
    const std::string& side = string_field(msg, type, "side");
    const std::string& phase = string_field(msg, type, "phase");
    const std::string& body = string_field(msg, type, "body");
    // The server echoes our own add back to us.
    if (side == side_) return out;
    peer_seen_ = true;
    if (body.size() > kMaxBodyBytes) {
      bad(printable(phase) + " body of " + std::to_string(body.size()) + " bytes exceeds the limit of " +
          std::to_string(kMaxBodyBytes));
    }
    if (phase != "ice") {
      out.events.emplace_back(event::PeerMessage{phase, body, side});
      return out;
    }
    // Only one ice message per peer is meaningful (no trickle, §2.5); a
    // repeat is a replay or a confused peer, and re-applying credentials
    // mid-connection would only do harm.
    if (peer_ice_received_) return out;
    peer_ice_received_ = true;
    out.events.emplace_back(event::PeerIce{body});
    return out;
  }

  if (type == "error") {
    const std::string& error = string_field(msg, type, "error");
    throw Error(ExitCode::relay, "rendezvous server error: " + printable(error) + explain_server_error(error));
  }

  if (type == "closed") bad("closed although we did not close the mailbox");

  // released, ack, pong: replies needing no action. Anything else is a newer
  // server's addition, which the protocol tells clients to ignore.
  return out;
}

Output Protocol::list_nameplates() {
  Output out;
  if (state_ == State::finished) return out;
  if (state_ == State::wait_welcome) {
    list_pending_ = true;
  } else {
    out.to_send.push_back(json{{"type", "list"}}.dump());
  }
  return out;
}

Output Protocol::send_ice(std::string body) {
  assert(!ice_added_ && "send_ice must be called once");
  ice_added_ = true;
  return add("ice", std::move(body));
}

Output Protocol::add(std::string phase, std::string body) {
  Output out;
  if (state_ == State::finished) return out;
  added_.push_back({std::move(phase), std::move(body)});
  if (state_ == State::open) send_pending(out);
  return out;
}

void Protocol::open_mailbox(Output& out) {
  out.to_send.push_back(json{{"type", "open"}, {"mailbox", mailbox_}}.dump());
  out.events.emplace_back(event::MailboxOpen{});
  state_ = State::open;
  // After a reconnect every add goes out again: it may not have reached
  // the server (the peer ignores a repeat).
  sent_ = 0;
  send_pending(out);
}

void Protocol::send_pending(Output& out) {
  for (; sent_ < added_.size(); ++sent_) {
    const Added& a = added_[sent_];
    out.to_send.push_back(json{{"type", "add"}, {"phase", a.phase}, {"body", a.body}}.dump());
  }
}

void Protocol::reconnect() {
  if (state_ == State::finished) return;
  state_ = State::wait_welcome;
  if (!nameplate_given_up_) nameplate_released_ = false;
}

Output Protocol::ping(uint32_t n) {
  Output out;
  if (state_ == State::finished || state_ == State::wait_welcome) return out;
  out.to_send.push_back(json{{"type", "ping"}, {"ping", n}}.dump());
  return out;
}

Output Protocol::release_nameplate() {
  Output out;
  if (state_ == State::finished || mailbox_.empty()) return out;
  nameplate_given_up_ = true;
  if (nameplate_claimed_ && !nameplate_released_ && state_ == State::open) {
    out.to_send.push_back(json{{"type", "release"}, {"nameplate", nameplate_}}.dump());
    nameplate_released_ = true;
  }
  return out;
}

Output Protocol::finish(std::string_view mood) {
  Output out;
  if (state_ == State::finished) return out;
  if (nameplate_claimed_ && !nameplate_released_ && !nameplate_given_up_) {
    out.to_send.push_back(json{{"type", "release"}, {"nameplate", nameplate_}}.dump());
    nameplate_released_ = true;
  }
  // mailbox_ is set exactly when we sent open.
  if (!mailbox_.empty()) {
    out.to_send.push_back(json{{"type", "close"}, {"mailbox", mailbox_}, {"mood", mood}}.dump());
  }
  state_ = State::finished;
  return out;
}

}  // namespace peersock::rendezvous
