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
#include "peersock/forward/local_end.hpp"
#include "peersock/pairing/hello.hpp"
#include "peersock/pairing/pairing.hpp"

namespace peersock::session {

// The user's subcommand: the local end of the tunnel (forward/local_end.hpp).
using Mode = forward::LocalEnd;

struct Options {
  config::Settings settings;
  Mode mode;
  std::optional<code::Code> code;  // absent: this side generates the code
  int code_words = code::kDefaultWords;
  // --remember NAME: store a pairing once authenticated (remember.hpp).
  std::optional<std::string> remember;
  std::string label;      // what we call ourselves to a side we pair with
  std::string peers_dir;  // where pairings are kept (pairing::Store)
  // --peer NAME: no code; meet by the pairing (session/meeting.hpp).
  struct Peer {
    pairing::Pairing pairing;
    // Set: the meeting is done (a --serve child); run this ticket's session.
    std::optional<pairing::Ticket> ticket;
    int64_t window_seconds = pairing::kWindowSeconds;
  };
  std::optional<Peer> peer;
};

// Runs until the session ends; returns the process exit code. Errors are
// reported as one line on stderr before returning.
// Takes the options by value: the caller moves them in, so that the session's
// copy of the code is the only one, and the session wipes it once the secret is derived (docs/security.md).
int run(Options options);

}  // namespace peersock::session
