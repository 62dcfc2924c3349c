#include "peersock/forward/local_end.hpp"

#include <algorithm>
#include <iterator>

namespace peersock::forward {

bool is_opener(const LocalEnd& end) {
  return is_listen(end) || std::holds_alternative<StdioB>(end) || std::holds_alternative<ListenUdp>(end);
}

bool is_udp(const LocalEnd& end) {
  return std::holds_alternative<ListenUdp>(end) || std::holds_alternative<ConnectUdp>(end);
}

udp::FlowLimits* mutable_udp_limits(LocalEnd& end) {
  if (auto* l = std::get_if<ListenUdp>(&end)) return &l->limits;
  if (auto* c = std::get_if<ConnectUdp>(&end)) return &c->limits;
  return nullptr;
}

bool is_stdio(const LocalEnd& end) {
  return std::holds_alternative<StdioA>(end) || std::holds_alternative<StdioB>(end);
}

bool is_listen(const LocalEnd& end) {
  return std::holds_alternative<ListenTcp>(end) || std::holds_alternative<ListenUnix>(end);
}

bool is_connect(const LocalEnd& end) {
  return std::holds_alternative<ConnectTcp>(end) || std::holds_alternative<ConnectUnix>(end);
}

StdioDirections stdio_directions(const LocalEnd& end) {
  if (const auto* a = std::get_if<StdioA>(&end)) return a->directions;
  if (const auto* b = std::get_if<StdioB>(&end)) return b->directions;
  return {};
}

StdioDirections* mutable_stdio_directions(LocalEnd& end) {
  if (auto* a = std::get_if<StdioA>(&end)) return &a->directions;
  if (auto* b = std::get_if<StdioB>(&end)) return &b->directions;
  return nullptr;
}

namespace {
// In the variant's order.
constexpr std::string_view kNames[] = {"listen",  "listen-unix", "connect",    "connect-unix",
                                       "stdio-a", "stdio-b",     "listen-udp", "connect-udp"};
static_assert(std::size(kNames) == std::variant_size_v<LocalEnd>);

// Each name's own alternative, default-constructed, knows its role.
const LocalEnd& default_end(size_t index) {
  static const LocalEnd kEnds[] = {ListenTcp{}, ListenUnix{}, ConnectTcp{}, ConnectUnix{},
                                   StdioA{},    StdioB{},     ListenUdp{},  ConnectUdp{}};
  static_assert(std::size(kEnds) == std::size(kNames));
  return kEnds[index];
}
}  // namespace

const char* mode_name(const LocalEnd& end) { return kNames[end.index()].data(); }

std::optional<bool> name_is_opener(std::string_view name) {
  const auto* it = std::find(std::begin(kNames), std::end(kNames), name);
  if (it == std::end(kNames)) return std::nullopt;
  return is_opener(default_end(static_cast<size_t>(it - std::begin(kNames))));
}

std::optional<bool> name_is_udp(std::string_view name) {
  const auto* it = std::find(std::begin(kNames), std::end(kNames), name);
  if (it == std::end(kNames)) return std::nullopt;
  return is_udp(default_end(static_cast<size_t>(it - std::begin(kNames))));
}

std::string connect_target(const LocalEnd& end) {
  if (const auto* tcp = std::get_if<ConnectTcp>(&end)) return tcp->target;
  if (const auto* udp = std::get_if<ConnectUdp>(&end)) return udp->target;
  if (const auto* unix_socket = std::get_if<ConnectUnix>(&end)) return unix_socket->path;
  return {};
}

}  // namespace peersock::forward
