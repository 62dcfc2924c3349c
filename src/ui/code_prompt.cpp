#include "peersock/ui/code_prompt.hpp"

#include <fcntl.h>
#include <glib-unix.h>
#include <signal.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <exception>
#include <memory>
#include <openssl/crypto.h>

#include "peersock/error.hpp"
#include "peersock/log.hpp"
#include "peersock/rendezvous/client.hpp"
#include "peersock/rendezvous/protocol.hpp"
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
    if (tcgetattr(fd_, &saved_) != 0) throw Error(ExitCode::failure, fmt::format("cannot read the terminal settings: {}", std::strerror(errno)));
    termios raw = saved_;
    raw.c_iflag &= ~static_cast<tcflag_t>(ICRNL | IXON | INLCR | IGNCR);
    // No ISIG: Ctrl-C arrives as a byte, so the terminal is restored before
    // exiting instead of being left without echo.
    raw.c_lflag &= ~static_cast<tcflag_t>(ICANON | ECHO | ISIG | IEXTEN);
    raw.c_cc[VMIN] = 1;
    raw.c_cc[VTIME] = 0;
    if (tcsetattr(fd_, TCSAFLUSH, &raw) != 0) throw Error(ExitCode::failure, fmt::format("cannot set up the terminal: {}", std::strerror(errno)));
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

// What the user accepted, without trailing dashes (a completed last word
// leaves one).
std::string accepted_text(std::string_view line) {
  std::string_view t = text::trim_ascii_space(line);
  while (!t.empty() && t.back() == '-') t.remove_suffix(1);
  return std::string(t);
}

class Prompt {
 public:
  Prompt(int tty, const std::string& relay_url) : tty_(tty), protocol_(rendezvous::Role::lister, rendezvous::random_side()) {
    loop_ = g_main_loop_new(nullptr, FALSE);
    for (int sig : {SIGINT, SIGTERM, SIGHUP}) signal_ids_.push_back(g_unix_signal_add(sig, &Prompt::on_signal, this));
    input_id_ = g_unix_fd_add(tty_, G_IO_IN, &Prompt::on_input, this);
    // The list is only a convenience: if the server cannot be reached, Tab
    // still completes the words, and the session reports the server later.
    try {
      client_ = std::make_unique<rendezvous::Client>(
          relay_url, rendezvous::ClientCallbacks{
                         nullptr,
                         [this](std::string_view text) { on_text(text); },
                         [this](const Error& e) { on_relay_failed(e.what()); },
                     });
      client_ok_ = true;
      protocol_.list_nameplates();  // sent right after welcome
    } catch (const std::exception& e) {
      relay_problem_ = e.what();
    }
  }

  ~Prompt() {
    if (input_id_ != 0) g_source_remove(input_id_);
    for (auto id : signal_ids_) g_source_remove(id);
    if (client_) client_->close();
    client_.reset();
    g_main_loop_unref(loop_);
  }

  code::Code run() {
    write_all(tty_, editor_.render(kPrompt));
    g_main_loop_run(loop_);
    write_all(tty_, "\r\n");
    if (failure_) std::rethrow_exception(failure_);
    if (cancelled_) throw Error(ExitCode::interrupted, "no code entered (cancelled)");
    return std::move(*result_);
  }

 private:
  static gboolean on_signal(gpointer self) {
    auto* p = static_cast<Prompt*>(self);
    p->cancelled_ = true;
    g_main_loop_quit(p->loop_);
    return G_SOURCE_CONTINUE;
  }

  static gboolean on_input(gint fd, GIOCondition, gpointer self) {
    auto* p = static_cast<Prompt*>(self);
    char buf[64];
    const ssize_t n = read(fd, buf, sizeof buf);
    if (n <= 0) {
      if (n < 0 && (errno == EINTR || errno == EAGAIN)) return G_SOURCE_CONTINUE;
      p->input_id_ = 0;
      p->cancelled_ = true;  // the terminal is gone
      g_main_loop_quit(p->loop_);
      return G_SOURCE_REMOVE;
    }
    try {
      for (ssize_t i = 0; i < n && !p->done(); ++i) p->on_byte(buf[i]);
    } catch (...) {
      p->failure_ = std::current_exception();
      g_main_loop_quit(p->loop_);
    }
    OPENSSL_cleanse(buf, sizeof buf);
    return G_SOURCE_CONTINUE;
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
        g_main_loop_quit(loop_);
        return;
      case LineEditor::Action::accept: accept(); return;
    }
  }

  void redraw() { write_all(tty_, editor_.render(kPrompt)); }

  void message(std::string_view text) {
    write_all(tty_, fmt::format("\r\x1b[K{}\r\n", text));
    redraw();
  }

  void accept() {
    const std::string typed = accepted_text(editor_.text());
    if (typed.empty()) return;
    try {
      result_ = code::parse(typed);
      g_main_loop_quit(loop_);
    } catch (const UsageError& e) {
      // Show what is wrong and keep the line for correcting.
      write_all(tty_, "\r\n");
      message(fmt::format("  {}", e.what()));
    }
  }

  void complete() {
    ++tabs_in_a_row_;
    const bool nameplate = editor_.before_cursor().find('-') == std::string_view::npos;
    if (nameplate) {
      if (client_ok_ && client_) client_->send(protocol_.list_nameplates().to_send);  // fresh list for next time
      if (!have_list_) {
        if (client_ok_) {
          pending_tab_ = true;  // completes when the list arrives
          return;
        }
        message(fmt::format("  (no nameplate list: {})", relay_problem_));
        return;
      }
    }
    const Completion c = complete_code(editor_.before_cursor(), nameplates_);
    if (!c.insert.empty()) {
      editor_.insert(c.insert);
      tabs_in_a_row_ = 0;
      redraw();
      return;
    }
    if (c.choices.empty()) {
      write_all(tty_, "\a");
      if (c.nameplate && tabs_in_a_row_ >= 2) {
        message(nameplates_.empty() ? "  (the server lists no nameplates in use)" : "  (no such nameplate in use)");
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

  void on_text(std::string_view text) {
    try {
      rendezvous::Output out = protocol_.on_text(text);
      client_->send(out.to_send);
      for (auto& event : out.events) {
        if (auto* listed = std::get_if<rendezvous::event::Nameplates>(&event)) {
          nameplates_ = std::move(listed->ids);
          have_list_ = true;
          if (pending_tab_) {
            pending_tab_ = false;
            --tabs_in_a_row_;
            complete();
          }
        }
      }
    } catch (const std::exception& e) {
      // A broken server only costs the completion; the session reports it.
      on_relay_failed(e.what());
    }
  }

  void on_relay_failed(const std::string& why) {
    log::debug(log::Layer::rendezvous, "nameplate list unavailable: {}", why);
    relay_problem_ = why;
    client_ok_ = false;
    if (pending_tab_) {
      pending_tab_ = false;
      message(fmt::format("  (no nameplate list: {})", relay_problem_));
    }
  }

  int tty_;
  GMainLoop* loop_ = nullptr;
  std::vector<guint> signal_ids_;
  guint input_id_ = 0;
  LineEditor editor_{kMaxLine};
  rendezvous::Protocol protocol_;
  std::unique_ptr<rendezvous::Client> client_;
  bool client_ok_ = false;
  std::string relay_problem_ = "the rendezvous server did not answer";
  std::vector<std::string> nameplates_;
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

code::Code prompt_code(const std::string& relay_url, bool stdin_is_data) {
  const int tty = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC);
  if (tty < 0) {
    if (stdin_is_data) {
      throw UsageError("no terminal to ask for the code on (stdin carries the data): give it with PEERSOCK_CODE or --code-file");
    }
    return read_stdin_line();
  }
  struct Closer {
    int fd;
    ~Closer() { close(fd); }
  } closer{tty};
  RawTerminal raw(tty);
  Prompt prompt(tty, relay_url);
  return prompt.run();
}

}  // namespace peersock::ui
