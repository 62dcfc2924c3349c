#include "peersock/session/mode.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "peersock/config/config.hpp"

namespace peersock::session {

namespace {
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;

// As a shell word: as it is when it has nothing a shell would act on, else
// in single quotes. (Our relay URLs are validated ws:// or wss:// URLs.)
std::string shell_word(const std::string& s) {
  const bool plain = std::all_of(s.begin(), s.end(), [](unsigned char c) {
    return std::isalnum(c) || std::string_view("-_./:@%+=,").find(static_cast<char>(c)) != std::string_view::npos;
  });
  if (plain) return s;
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}
}  // namespace

std::string hint_for_other_side(const Mode& mode, const std::string& relay_url) {
  std::string command = std::visit(
      Overloaded{
          [](const forward::ListenTcp&) -> std::string { return "connect HOST:PORT"; },
          [](const forward::ListenUnix&) -> std::string { return "connect HOST:PORT"; },
          [](const forward::ConnectTcp& c) -> std::string {
            auto colon = c.target.rfind(':');
            return "listen " + (colon == std::string::npos ? std::string("PORT") : c.target.substr(colon + 1));
          },
          [](const forward::ConnectUnix&) -> std::string { return "listen PORT"; },
          [](const forward::StdioA&) -> std::string { return "stdio-b"; },
          [](const forward::StdioB&) -> std::string { return "stdio-a"; },
      },
      mode);
  std::string relay;
  if (relay_url != config::defaults().relay_url) relay = fmt::format("--relay {} ", shell_word(relay_url));
  return fmt::format("peersock {}{} --join", relay, command);
}

std::string authenticated_line(const Mode& mode, const std::string& listener) {
  if (forward::is_listen(mode))
    return fmt::format("authenticated; forwarding connections to {} to the other side", listener);
  if (forward::is_connect(mode))
    return fmt::format("authenticated; the other side's connections go to {}", forward::connect_target(mode));
  return "authenticated; forwarding stdin/stdout";
}

}  // namespace peersock::session
