#include "peersock/ui/code_prompt.hpp"

#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <exception>
#include <optional>
#include <vector>

#include "peersock/c_boundary.hpp"
#include "peersock/error.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/log.hpp"
#include "peersock/text.hpp"
#include "peersock/ui/completion.hpp"
#include "peersock/ui/line_editor.hpp"

namespace peersock::ui {
namespace {

constexpr std::string_view kPrompt = "Enter the connection code (Tab completes): ";
constexpr size_t kMaxLine = 256;

// Raw mode for the duration of the prompt; the saved settings come back on
// every way out, exceptions included.
class RawTerminal {
 public:
  explicit RawTerminal(int fd) : fd_(fd) {
    if (tcgetattr(fd_, &saved_) != 0)
      throw Error(ExitCode::failure, fmt::format("cannot read the terminal settings: {}", std::strerror(errno)));
    termios raw = saved_;
    raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | IXON | INLCR | IGNCR);
    // No ISIG: Ctrl-C arrives as a byte, so the terminal is restored before
    // exiting instead of being left without echo.
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(fd_, TCSAFLUSH, &raw) != 0)
      throw Error(ExitCode::failure, fmt::format("cannot set up the terminal: {}", std::strerror(errno)));
  }
  ~RawTerminal() { tcsetattr(fd_, TCSAFLUSH, &saved_); }
  RawTerminal(const RawTerminal&) = delete;
  RawTerminal& operator=(const RawTerminal&) = delete;

 private:
  int fd_;
  termios saved_{};
};

size_t width_of(int fd) {
  winsize ws{};
  if (ioctl(fd, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

void write_all(int fd, std::string_view bytes) {
  while (!bytes.empty()) {
    const ssize_t n = write(fd, bytes.data(), bytes.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return;  // the terminal went away; reading will notice
    }
    bytes.remove_prefix(static_cast<size_t>(n));
  }
}

// What the user accepted, without trailing separators (a completed last
// word leaves a dash).
std::string accepted_text(std::string_view line) {
  std::string_view t = text::trim_ascii_space(line);
  while (!t.empty() && code::is_separator(t.back())) t.remove_suffix(1);
  return std::string(t);
}

class Prompt {
 public:
  Prompt(int tty, NameplateLister& nameplates) : tty_(tty), nameplates_(nameplates) {
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signals_.emplace_back(g_unix_signal_add(sig, &Prompt::on_signal, this));
    input_ = g_unix_fd_add(tty_, G_IO_IN, &Prompt::on_input, this);
    // The list is only a convenience: if the server cannot be reached, Tab
    // still completes the words, and the session reports the server later.
    lister_ok_ = true;
    nameplates_.start([this](std::vector<std::string> ids) { on_listed(std::move(ids)); },
                      [this](const std::string& why) { on_list_failed(why); });
  }

  ~Prompt() { nameplates_.stop(); }
  Prompt(const Prompt&) = delete;
  Prompt& operator=(const Prompt&) = delete;

  code::Code run() {
    write_all(tty_, editor_.render(kPrompt));
    g_main_loop_run(loop_.get());
    write_all(tty_, "\r\n");
    if (failure_) std::rethrow_exception(failure_);
    if (cancelled_) throw Error(ExitCode::interrupted, "no code entered (cancelled)");
    return std::move(*result_);
  }

 private:
  static gboolean on_signal(gpointer self) {
    return c_boundary("the code prompt", [&]() -> gboolean {
      auto* p = static_cast<Prompt*>(self);
      p->cancelled_ = true;
      g_main_loop_quit(p->loop_.get());
      return G_SOURCE_CONTINUE;
    });
  }

  static gboolean on_input(gint fd, GIOCondition, gpointer self) {
    return c_boundary("the code prompt", [&]() -> gboolean {
      auto* p = static_cast<Prompt*>(self);
      char buf[64];
      const ssize_t n = read(fd, buf, sizeof buf);
      if (n <= 0) {
        if (n < 0 && (errno == EINTR || errno == EAGAIN)) return G_SOURCE_CONTINUE;
        p->input_.fired();
        p->cancelled_ = true;  // the terminal is gone
        g_main_loop_quit(p->loop_.get());
        return G_SOURCE_REMOVE;
      }
      try {
        for (ssize_t i = 0; i < n && !p->done(); ++i) p->on_byte(buf[i]);
      } catch (...) {
        p->failure_ = std::current_exception();
        g_main_loop_quit(p->loop_.get());
      }
      OPENSSL_cleanse(buf, sizeof buf);
      return G_SOURCE_CONTINUE;
    });
  }

  bool done() const { return cancelled_ || result_ || failure_; }

  void on_byte(char byte) {
    const LineEditor::Action action = editor_.feed(byte);
    if (action != LineEditor::Action::complete && action != LineEditor::Action::none) {
      tabs_in_a_row_ = 0;
      pending_tab_ = false;
    }
    switch (action) {
      case LineEditor::Action::none: return;
      case LineEditor::Action::redraw: redraw(); return;
      case LineEditor::Action::complete: complete(); return;
      case LineEditor::Action::cancel:
        cancelled_ = true;
        g_main_loop_quit(loop_.get());
        return;
      case LineEditor::Action::accept: accept(); return;
    }
  }

  void redraw() { write_all(tty_, editor_.render(kPrompt)); }

  // May carry the relay's text (why the nameplate list failed).
  void message(std::string_view text) {
    write_all(tty_, fmt::format("\r\x1b[K{}\r\n", text::strip_controls(text)));
    redraw();
  }

  void accept() {
    const std::string typed = accepted_text(editor_.text());
    if (typed.empty()) return;
    try {
      result_ = code::parse(typed);
      g_main_loop_quit(loop_.get());
    } catch (const UsageError& e) {
      // Show what is wrong and keep the line for correcting.
      write_all(tty_, "\r\n");
      message(fmt::format("  {}", e.what()));
    }
  }

  void complete() {
    ++tabs_in_a_row_;
    const std::string_view before = editor_.before_cursor();
    const bool nameplate = std::none_of(before.begin(), before.end(), code::is_separator);
    if (nameplate) {
      if (lister_ok_) nameplates_.request();  // fresh list for next time
      if (!have_list_) {
        if (lister_ok_) {
          pending_tab_ = true;  // completes when the list arrives
          return;
        }
        message(fmt::format("  (no nameplate list: {})", relay_problem_));
        return;
      }
    }
    const Completion c = complete_code(editor_.before_cursor(), listed_);
    if (!c.insert.empty()) {
      editor_.insert(c.insert);
      tabs_in_a_row_ = 0;
      redraw();
      return;
    }
    if (c.choices.empty()) {
      write_all(tty_, "\a");
      if (c.nameplate && tabs_in_a_row_ >= 2) {
        message(listed_.empty() ? "  (the server lists no nameplates in use)" : "  (no such nameplate in use)");
      }
      return;
    }
    if (tabs_in_a_row_ < 2) {
      write_all(tty_, "\a");
      return;
    }
    write_all(tty_, "\r\n");
    if (!c.nameplate && c.choices.size() == code::kWordCount) {
      message("  (2048 words: type the first letters; four identify any word, a three-letter word is typed whole)");
      return;
    }
    write_all(tty_, "\x1b[K" + format_choices(c.choices, width_of(tty_)));
    redraw();
  }

  void on_listed(std::vector<std::string> ids) {
    listed_ = std::move(ids);
    have_list_ = true;
    if (pending_tab_) {
      pending_tab_ = false;
      --tabs_in_a_row_;
      complete();
    }
  }

  // A broken or unreachable server only costs the completion; the session
  // reports it.
  void on_list_failed(const std::string& why) {
    log::debug(log::Layer::rendezvous, "nameplate list unavailable: {}", why);
    relay_problem_ = why;
    lister_ok_ = false;
    if (pending_tab_) {
      pending_tab_ = false;
      message(fmt::format("  (no nameplate list: {})", relay_problem_));
    }
  }

  int tty_;
  NameplateLister& nameplates_;
  glib::MainLoopPtr loop_ = glib::new_main_loop();
  std::vector<glib::SourceId> signals_;
  glib::SourceId input_;
  LineEditor editor_{kMaxLine};
  bool lister_ok_ = false;
  std::string relay_problem_ = "the rendezvous server did not answer";
  std::vector<std::string> listed_;
  bool have_list_ = false;
  bool pending_tab_ = false;
  int tabs_in_a_row_ = 0;
  bool cancelled_ = false;
  std::optional<code::Code> result_;
  std::exception_ptr failure_;
};

// No terminal: one line from stdin (`echo CODE | peersock listen 5900 -`).
code::Code read_stdin_line() {
  std::string line;
  char c = 0;
  for (;;) {
    const ssize_t n = read(STDIN_FILENO, &c, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || c == '\n') break;
    if (line.size() >= kMaxLine) throw UsageError("the line on stdin is too long to be a code");
    line += c;
  }
  const std::string typed = accepted_text(line);
  OPENSSL_cleanse(line.data(), line.size());
  if (typed.empty()) throw UsageError("no terminal to ask for the code on, and no code on stdin");
  try {
    return code::parse(typed);
  } catch (const UsageError& e) {
    throw UsageError(fmt::format("stdin: {}", e.what()));
  }
}

}  // namespace

code::Code prompt_code(NameplateLister& nameplates, bool stdin_is_data) {
  const int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) {
    if (stdin_is_data) {
      throw UsageError(
          "no terminal to ask for the code on (stdin carries the data): give it with PEERSOCK_CODE or --code-file");
    }
    return read_stdin_line();
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{tty};
  RawTerminal raw(tty);
  Prompt prompt(tty, nameplates);
  return prompt.run();
}

}  // namespace peersock::ui
