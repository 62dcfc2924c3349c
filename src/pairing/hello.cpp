#include "peersock/pairing/hello.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "peersock/text.hpp"

namespace peersock::pairing {

namespace {

using json = nlohmann::json;

bool is_nonce(const json& j) {
  if (!j.is_string()) return false;
  const auto& s = j.get_ref<const std::string&>();
  return s.size() == kNonceHexChars &&
         std::all_of(s.begin(), s.end(), [](char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); });
}

bool is_mac(const json& j) { return j.is_string() && j.get_ref<const std::string&>().size() == 64; }

// The body as an object with exactly `keys`, or nothing.
std::optional<json> parse_body(std::string_view body, std::initializer_list<const char*> keys) {
  if (body.size() > kMaxHelloBody || !text::json_depth_within(body, 2)) return std::nullopt;
  json j = json::parse(body, nullptr, /*allow_exceptions=*/false);
  if (j.is_discarded() || !j.is_object() || j.size() != keys.size()) return std::nullopt;
  for (const char* k : keys)
    if (!j.contains(k)) return std::nullopt;
  return j;
}

}  // namespace

std::string session_mailbox_id(const Key& mailbox_key, const Ticket& ticket) {
  // mailbox_id's windows are small numbers; a session id mixes both nonces
  // into a key of its own so the two id spaces cannot meet.
  return mailbox_id(mac(mailbox_key, "session", ticket.client_nonce + ":" + ticket.server_nonce), 0);
}

Hello::Hello(Role role, const Pairing& pairing, uint64_t window, std::string nonce)
    : role_(role), key_(pairing.mailbox_key), tombstone_(!pairing.secret), window_(window), nonce_(std::move(nonce)) {}

std::string Hello::mac(std::string_view label, std::initializer_list<std::string_view> fields) const {
  std::string message = std::to_string(window_);
  for (std::string_view f : fields) {
    message += '|';
    message += f;
  }
  return mac_hex(key_, label, message);
}

HelloOutput Hello::start(int64_t now) {
  HelloOutput out;
  const std::string t = std::to_string(now);
  if (tombstone_) {
    out.to_add.push_back({std::string(kForgottenPhase), json{{"t", now}, {"m", mac("forgotten", {t})}}.dump()});
  } else if (role_ == Role::client) {
    out.to_add.push_back(
        {std::string(kHelloPhase), json{{"n", nonce_}, {"t", now}, {"m", mac("hello", {nonce_, t})}}.dump()});
  }
  return out;
}

HelloOutput Hello::on_message(std::string_view phase, std::string_view body, int64_t now,
                              const std::string& next_nonce) {
  HelloOutput out;
  auto ignore = [&] {
    ++ignored_;
    return out;
  };
  auto fresh = [&](const json& t) {
    return t.is_number_integer() && std::llabs(t.get<int64_t>() - now) <= kHelloMaxAgeSeconds;
  };
  if (phase == kForgottenPhase) {
    auto j = parse_body(body, {"t", "m"});
    if (!j || !(*j)["t"].is_number_integer() || !is_mac((*j)["m"])) return ignore();
    if (!mac_equal((*j)["m"].get<std::string>(), mac("forgotten", {std::to_string((*j)["t"].get<int64_t>())})))
      return ignore();
    if (!tombstone_) out.events.emplace_back(hello::Forgotten{});
    return out;
  }
  if (tombstone_) return out;
  if (phase == kHelloPhase) {
    auto j = parse_body(body, {"n", "t", "m"});
    if (!j || !is_nonce((*j)["n"]) || !(*j)["t"].is_number_integer() || !is_mac((*j)["m"])) return ignore();
    const std::string n = (*j)["n"].get<std::string>();
    if (!mac_equal((*j)["m"].get<std::string>(), mac("hello", {n, std::to_string((*j)["t"].get<int64_t>())})))
      return ignore();
    if (role_ == Role::client) {
      if (n != nonce_ && !paired_) out.events.emplace_back(hello::BothClients{});
      return out;
    }
    if (!fresh((*j)["t"]) || std::find(answered_.begin(), answered_.end(), n) != answered_.end()) return ignore();
    if (!is_nonce(json(next_nonce))) return ignore();  // a caller bug; never answer with a bad nonce
    answered_.push_back(n);
    if (answered_.size() > 4096) answered_.erase(answered_.begin());
    out.to_add.push_back({std::string(kWelcomePhase),
                          json{{"c", n}, {"s", next_nonce}, {"m", mac("welcome", {n, next_nonce})}}.dump()});
    out.events.emplace_back(hello::Paired{{n, next_nonce}});
    return out;
  }
  if (phase == kWelcomePhase) {
    if (role_ != Role::client || paired_) return out;
    auto j = parse_body(body, {"c", "s", "m"});
    if (!j || !is_nonce((*j)["c"]) || !is_nonce((*j)["s"]) || !is_mac((*j)["m"])) return ignore();
    const std::string c = (*j)["c"].get<std::string>(), s = (*j)["s"].get<std::string>();
    if (c != nonce_) return out;  // another client's
    if (!mac_equal((*j)["m"].get<std::string>(), mac("welcome", {c, s}))) return ignore();
    paired_ = true;
    out.events.emplace_back(hello::Paired{{c, s}});
    return out;
  }
  return out;  // another phase: not ours
}

}  // namespace peersock::pairing
