// Asking the user for the connection code (`peersock listen 5900 -`,
// `--join`), so that it never has to be on the command line.
#pragma once

#include <string>

#include "peersock/code/code.hpp"

namespace peersock::ui {

// On a terminal (/dev/tty, so that stdin stays free for stdio data): a
// prompt with the line editor and Tab completion. Nameplates are completed
// from the list of the mailbox server at `relay_url`, asked in the
// background (without an answer only the words complete); a typo is shown
// and the line stays for correcting. Without a terminal: one line of stdin,
// unless `stdin_is_data` (stdio-a/stdio-b).
// Errors: UsageError when there is nowhere to ask, or stdin ends without a
// valid code; Error(interrupted) for Ctrl-C, Ctrl-D on an empty line,
// SIGINT, SIGTERM or SIGHUP.
code::Code prompt_code(const std::string& relay_url, bool stdin_is_data);

}  // namespace peersock::ui
