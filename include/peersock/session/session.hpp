// One peersock run: rendezvous -> ICE -> QUIC -> auth -> forwarding, driven by
// a GLib main loop. Layers are brought up bottom-up as each one completes and
// torn down top-down (forwarders, QUIC close, mailbox close) on the way out.
#pragma once

#include <cstdint>
#include <optional>
#include <string>

#include "peersock/code/code.hpp"
#include "peersock/config/config.hpp"
#include "peersock/error.hpp"

namespace peersock::session {

enum class ModeKind { listen, connect, stdio_a, stdio_b };

struct Mode {
  ModeKind kind = ModeKind::stdio_a;
  std::string bind_address = "127.0.0.1";  // listen
  uint16_t port = 0;                       // listen
  std::string target;                      // connect: HOST:PORT (connect-unix: the path)
  std::string unix_path;                   // listen-unix / connect-unix: the socket path
  // listen/stdio-b open the data stream; connect/stdio-a accept it.
  bool opener() const { return kind == ModeKind::listen || kind == ModeKind::stdio_b; }
};

struct Options {
  config::Settings settings;
  Mode mode;
  std::optional<code::Code> code;  // absent: this side generates the code
  int code_words = code::kDefaultWords;
};

// Runs until the session ends; returns the process exit code. Errors are
// reported as one line on stderr before returning.
// Takes the options by value: the caller moves them in, so that the session's
// copy of the code is the only one, and the session wipes it once the secret is derived (docs/security.md).
int run(Options options);

}  // namespace peersock::session
