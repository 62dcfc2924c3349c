// What the user's mode means for the stages: the forwarder's local end, and
// the command the other side should run.
#pragma once

#include <string>

#include "peersock/forward/forwarder.hpp"
#include "peersock/session/session.hpp"

namespace peersock::session {

forward::LocalEnd local_end(const Mode& mode);

// "peersock connect HOST:PORT CODE" and the like, for the code's line.
std::string hint_for_other_side(const Mode& mode, const std::string& code);

}  // namespace peersock::session
