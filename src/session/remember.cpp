#include "peersock/session/remember.hpp"

#include <fmt/core.h>

#include "peersock/error.hpp"
#include "peersock/text.hpp"

namespace peersock::session {

Remember::Remember(std::string name, std::string label, pairing::Store store)
    : name_(std::move(name)), label_(pairing::clean_label(label)), store_(std::move(store)) {
  pairing::check_name(name_);
  if (auto existing = store_.load(name_); existing && existing->secret) {
    throw UsageError(fmt::format("--remember {}: a pairing of that name exists already (peersock peers forget {} "
                                 "to replace it)",
                                 text::quote(name_), name_));
  }
}

void Remember::check_peer(int version) const {
  if (version == 1)
    throw Error(ExitCode::protocol,
                fmt::format("--remember {}: the other side runs the original peersock, which cannot pair", name_));
}

std::string Remember::save(const pairing::Key& secret, const std::string& peer_label, int64_t now) const {
  store_.save(pairing::make(name_, secret, peer_label, now));
  return fmt::format("remembered the other side as {}{}", name_,
                     peer_label.empty() ? std::string() : fmt::format(" (it calls itself {})", text::quote(peer_label)));
}

}  // namespace peersock::session
