// The lifecycle every stage of the stack shares (docs/architecture.md):
// mailbox, link (ICE + QUIC), auth gate, control channel, forwarder.
//
// A stage is made or started once the stage below it is up, reports up
// through its own events struct (it never sees the session), and is closed
// top-down when the run ends, like curl's connection filters: close() starts
// closing, closed() turns true once nothing more has to happen (QUIC's
// close went out and drained, the mailbox said goodbye). close() never calls
// back into its owner, so the owner can close the whole stack in one loop.
#pragma once

#include "peersock/error.hpp"

namespace peersock {

class Stage {
 public:
  virtual ~Stage() = default;
  // The run ends with `why` (ExitCode::ok: cleanly). Idempotent: only the
  // first call counts.
  virtual void close(ExitCode why) = 0;
  virtual bool closed() const = 0;
};

}  // namespace peersock
