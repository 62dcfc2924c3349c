// What the user's mode means for the session's own messages: the command
// the other side should run, and the "authenticated; ..." line.
#pragma once

#include <string>

#include "peersock/session/session.hpp"

namespace peersock::session {

// "peersock connect HOST:PORT CODE" and the like, for the code's line.
std::string hint_for_other_side(const Mode& mode, const std::string& code);

// The line once authenticated; `listener`: where a listen mode accepts.
std::string authenticated_line(const Mode& mode, const std::string& listener);

}  // namespace peersock::session
