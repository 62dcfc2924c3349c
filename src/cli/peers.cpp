// `peersock peers`: the remembered peers (pairing/store.hpp), and forgetting
// one. Forgetting keeps a tombstone (pairing.hpp): this side can then tell
// the other one, at its next attempt, that the pairing is gone.
#include <fmt/core.h>

#include <ctime>
#include <nlohmann/json.hpp>

#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/pairing/store.hpp"
#include "peersock/text.hpp"

namespace peersock::cli {

namespace {

std::string local_time(int64_t unix_seconds) {
  if (unix_seconds <= 0) return "never";
  const time_t t = static_cast<time_t>(unix_seconds);
  tm parts{};
  localtime_r(&t, &parts);
  char buf[32];
  strftime(buf, sizeof buf, "%Y-%m-%d %H:%M", &parts);
  return buf;
}

}  // namespace

int run_peers(const PeersAction& action, const std::string& dir, bool json) {
  const pairing::Store store(dir);
  if (action.forget) {
    auto p = store.load(action.name);
    if (!p || !p->secret)
      throw UsageError(fmt::format("peers forget: no pairing called {} (peersock peers lists them)",
                                   text::quote(action.name)));
    store.save(pairing::forget(std::move(*p), std::time(nullptr)));
    if (json) {
      log::json_line(nlohmann::json{{"event", "forgotten"}, {"name", action.name}}.dump());
    } else {
      fmt::print("forgot {}: it cannot connect any more (the other side learns it at its next attempt)\n",
                 action.name);
    }
    return 0;
  }
  auto all = store.list();
  if (json) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto& p : all) {
      list.push_back({{"name", p.name},
                      {"label", p.label},
                      {"created", p.created},
                      {"last_used", p.last_used},
                      {"forgotten", p.forgotten == 0 ? nlohmann::json(nullptr) : nlohmann::json(p.forgotten)}});
    }
    fmt::print("{}\n", list.dump());
    return 0;
  }
  if (all.empty()) {
    fmt::print("no pairings yet (pair with --remember NAME in a code session; kept in {})\n", dir);
    return 0;
  }
  fmt::print("{:<20} {:<24} {:<16} {}\n", "NAME", "CALLS ITSELF", "CREATED", "LAST USED");
  for (const auto& p : all) {
    std::string used = p.forgotten != 0 ? "forgotten " + local_time(p.forgotten) : local_time(p.last_used);
    fmt::print("{:<20} {:<24} {:<16} {}\n", p.name, p.label.empty() ? "-" : p.label, local_time(p.created), used);
  }
  return 0;
}

}  // namespace peersock::cli
