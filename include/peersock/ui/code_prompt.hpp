// Asking the user for the connection code (`peersock listen 5900 -`,
// `--join`), so that it never has to be on the command line.
#pragma once

#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "peersock/code/code.hpp"

namespace peersock::ui {

// Where Tab completion gets the nameplates in use from. ui does not talk to
// the network: the caller passes a lister (rendezvous::NameplateLister asks
// the mailbox server; NameplateListerFor below adapts it). Calls and
// callbacks all happen on the GLib main loop that runs the prompt.
class NameplateLister {
 public:
  using Listed = std::function<void(std::vector<std::string> nameplates)>;
  using Failed = std::function<void(const std::string& why)>;

  virtual ~NameplateLister() = default;
  // Starts asking. `listed` gets every list that arrives; `failed` the reason
  // no (more) lists will come, possibly from within start().
  virtual void start(Listed listed, Failed failed) = 0;
  // Asks for a fresh list; nothing once failed.
  virtual void request() = 0;
  // No callback after this.
  virtual void stop() = 0;
};

// A NameplateLister that forwards to `source`, any object with the same
// three member functions (rendezvous::NameplateLister), so that ui does not
// depend on its layer:
//   rendezvous::NameplateLister mailbox(relay_url);
//   ui::NameplateListerFor lister(mailbox);
//   code = ui::prompt_code(lister, stdin_is_data);
template <typename Source>
class NameplateListerFor final : public NameplateLister {
 public:
  explicit NameplateListerFor(Source& source) : source_(source) {}
  void start(Listed listed, Failed failed) override { source_.start(std::move(listed), std::move(failed)); }
  void request() override { source_.request(); }
  void stop() override { source_.stop(); }

 private:
  Source& source_;
};

// On a terminal (/dev/tty, so that stdin stays free for stdio data): a
// prompt with the line editor and Tab completion. Nameplates are completed
// from `nameplates`, started when the prompt appears and stopped when it
// ends (without a list only the words complete); a typo is shown and the
// line stays for correcting. Without a terminal: one line of stdin, unless
// `stdin_is_data` (stdio-a/stdio-b).
// Errors: UsageError when there is nowhere to ask, or stdin ends without a
// valid code; Error(interrupted) for Ctrl-C, Ctrl-D on an empty line,
// SIGINT, SIGTERM or SIGHUP.
code::Code prompt_code(NameplateLister& nameplates, bool stdin_is_data);

}  // namespace peersock::ui
