// What the user's mode means for the session's own messages: the command
// the other side should run, and the "authenticated; ..." line.
#pragma once

#include <string>

#include "peersock/session/session.hpp"

namespace peersock::session {

// The command the other side should run, for the line under the code:
// "peersock connect HOST:PORT --join" and the like, with `--relay URL` first
// when ours is not the default (the other side must use the same mailbox).
// Never the code itself: a command line with the code in it is readable by
// every local user (ps, /proc/PID/cmdline) until peersock scrubs it.
std::string hint_for_other_side(const Mode& mode, const std::string& relay_url);

// The other side's subcommand (the "m" of its ice body; empty when it did
// not say) against ours: Error(usage) when both open the tunnel's streams
// or both accept them, e.g. "both sides ran listen: the other side must run
// connect (or stdio-a)", and when one side runs a UDP mode and the other a
// TCP, unix or stdio one. A name we do not know passes (a later release's).
void check_roles(const Mode& mode, const std::string& peer_mode);

// The line once authenticated; `listener`: where a listen mode accepts.
std::string authenticated_line(const Mode& mode, const std::string& listener);

}  // namespace peersock::session
