#include "peersock/session/mode.hpp"

#include <fmt/core.h>

#include <algorithm>
#include <cctype>
#include <string_view>

#include "peersock/config/config.hpp"
#include "peersock/error.hpp"

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
          [](const forward::ListenUdp&) -> std::string { return "connect-udp HOST:PORT"; },
          [](const forward::ConnectUdp& c) -> std::string {
            auto colon = c.target.rfind(':');
            return "listen-udp " + (colon == std::string::npos ? std::string("PORT") : c.target.substr(colon + 1));
          },
      },
      mode);
  std::string relay;
  if (relay_url != config::defaults().relay_url) relay = fmt::format("--relay {} ", shell_word(relay_url));
  return fmt::format("peersock {}{} --join", relay, command);
}

void check_roles(const Mode& mode, const std::string& peer_mode) {
  const std::optional<bool> peer_opens = forward::name_is_opener(peer_mode);
  if (!peer_opens) return;
  // UDP pairs only with UDP: datagrams have no stream to go into, and a
  // stream has no datagram to come out of.
  const bool kinds_differ = *forward::name_is_udp(peer_mode) != forward::is_udp(mode);
  if (!kinds_differ && *peer_opens != forward::is_opener(mode)) return;
  const std::string ours = forward::mode_name(mode);
  const std::string both = ours == peer_mode ? fmt::format("both sides ran {}", ours)
                                             : fmt::format("this side ran {} and the other side {}", ours, peer_mode);
  const char* partner =
      std::visit(Overloaded{
                     [](const forward::ListenTcp&) { return "connect (or stdio-a)"; },
                     [](const forward::ListenUnix&) { return "connect or connect-unix (or stdio-a)"; },
                     [](const forward::ConnectTcp&) { return "listen (or stdio-b)"; },
                     [](const forward::ConnectUnix&) { return "listen or listen-unix (or stdio-b)"; },
                     [](const forward::StdioA&) { return "stdio-b (or listen)"; },
                     [](const forward::StdioB&) { return "stdio-a (or connect)"; },
                     [](const forward::ListenUdp&) { return "connect-udp"; },
                     [](const forward::ConnectUdp&) { return "listen-udp"; },
                 },
                 mode);
  throw UsageError(fmt::format("{}: the other side must run {}", both, partner));
}

std::string authenticated_line(const Mode& mode, const std::string& listener) {
  if (std::holds_alternative<forward::ListenUdp>(mode))
    return fmt::format("authenticated; forwarding UDP datagrams to {} to the other side", listener);
  if (std::holds_alternative<forward::ConnectUdp>(mode))
    return fmt::format("authenticated; the other side's UDP datagrams go to {}", forward::connect_target(mode));
  if (forward::is_listen(mode))
    return fmt::format("authenticated; forwarding connections to {} to the other side", listener);
  if (forward::is_connect(mode))
    return fmt::format("authenticated; the other side's connections go to {}", forward::connect_target(mode));
  return "authenticated; forwarding stdin/stdout";
}

}  // namespace peersock::session
