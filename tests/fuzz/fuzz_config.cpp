// libFuzzer target for the local parsers: the config file (config::load_file,
// read through a memfd so that the real file-reading path runs) and
// config::parse_endpoint (--stun/--turn values). Local input, not the peer's,
// but the same rule: a clear UsageError, never a crash. Contract: only
// peersock::Error escapes; an accepted endpoint has a host and a port in
// 1..65535; a host never contains control characters.
#include <sys/mman.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "peersock/config/config.hpp"
#include "peersock/error.hpp"

namespace {
void require(bool ok) {
  if (!ok) __builtin_trap();
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  using namespace peersock::config;
  const std::string_view text(reinterpret_cast<const char*>(data), size);

  try {
    Endpoint e = parse_endpoint(text.substr(0, 300), kDefaultStunPort, "--stun");
    if (e.enabled()) {
      require(e.port >= 1);
      for (char c : e.host) require(static_cast<unsigned char>(c) >= 0x20);
    }
  } catch (const peersock::Error&) {
  }

  static const int fd = memfd_create("peersock-fuzz-config", 0);
  require(fd >= 0);
  require(ftruncate(fd, 0) == 0);
  require(pwrite(fd, data, size, 0) == static_cast<ssize_t>(size));
  Settings settings = defaults();
  try {
    load_file(settings, "/proc/self/fd/" + std::to_string(fd));
  } catch (const peersock::Error&) {
  }
  return 0;
}
