#include "peersock/session/mode.hpp"

#include <fmt/core.h>

namespace peersock::session {

namespace {
template <class... F>
struct Overloaded : F... {
  using F::operator()...;
};
template <class... F>
Overloaded(F...) -> Overloaded<F...>;
}  // namespace

std::string hint_for_other_side(const Mode& mode, const std::string& code) {
  return std::visit(Overloaded{
                        [&](const forward::ListenTcp&) { return fmt::format("peersock connect HOST:PORT {}", code); },
                        [&](const forward::ListenUnix&) { return fmt::format("peersock connect HOST:PORT {}", code); },
                        [&](const forward::ConnectTcp& c) {
                          auto colon = c.target.rfind(':');
                          std::string port = colon == std::string::npos ? "PORT" : c.target.substr(colon + 1);
                          return fmt::format("peersock listen {} {}", port, code);
                        },
                        [&](const forward::ConnectUnix&) { return fmt::format("peersock listen PORT {}", code); },
                        [&](const forward::StdioA&) { return fmt::format("peersock stdio-b {}", code); },
                        [&](const forward::StdioB&) { return fmt::format("peersock stdio-a {}", code); },
                    },
                    mode);
}

std::string authenticated_line(const Mode& mode, const std::string& listener) {
  if (forward::is_listen(mode))
    return fmt::format("authenticated; forwarding connections to {} to the other side", listener);
  if (forward::is_connect(mode))
    return fmt::format("authenticated; the other side's connections go to {}", forward::connect_target(mode));
  return "authenticated; forwarding stdin/stdout";
}

}  // namespace peersock::session
