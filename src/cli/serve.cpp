// --serve: one meeting (session/meeting.hpp) that goes on for as long as the
// process runs, and one child process per session it arranges.
//
// Why a process per session, like sshd: each session is the whole stack
// (ICE agent, QUIC, SMP, forwarder) with its own lifetime and exit code, and
// the code is written for one run per process (one main loop, signals, the
// status output). A child is this binary again, started with the same
// arguments minus --serve, and the ticket in PEERSOCK_PAIRED_TICKET: it
// skips the meeting and runs the ticket's session. exec'ing afresh (not a
// bare fork) leaves the GLib and libsoup threads of the parent behind.
//
// Stopping: SIGINT or SIGTERM ends the meeting and sends SIGTERM to every
// session still running; they close their connections (the other sides are
// told), and the parent exits 130 once they have ended or after 10 s.
#include <glib-unix.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <fmt/core.h>

#include <map>
#include <string>
#include <vector>

#include "cli/commands.hpp"
#include "peersock/error.hpp"
#include "peersock/glib/raii.hpp"
#include "peersock/log.hpp"
#include "peersock/session/meeting.hpp"

extern char** environ;

namespace peersock::cli {

namespace {

// Sessions at once; the next hello is answered, but not served, until one ends.
constexpr size_t kMaxSessions = 64;
constexpr guint kStopGraceMs = 10'000;

class Server {
 public:
  Server(const Parsed& parsed, int argc, char** argv) : parsed_(parsed) {
    for (int i = 0; i < argc; ++i)
      if (std::string_view(argv[i]) != "--serve") child_argv_.emplace_back(argv[i]);
  }

  int run() {
    const auto& peer = *parsed_.options.peer;
    meeting_ = std::make_unique<session::Meeting>(
        pairing::Hello::Role::server, peer.pairing, true, peer.window_seconds,
        session::MeetingEvents{
            [this](const pairing::Ticket& t) { spawn(t); },
            [this](std::exception_ptr e) { failed(e); },
        });
    for (int sig : {SIGINT, SIGTERM}) signals_.emplace_back(g_unix_signal_add(sig, &Server::on_signal, this));
    log::say_line(fmt::format("Serving the pairing {} (Ctrl-C to stop)...", peer.pairing.name));
    meeting_->connect(parsed_.options.settings.relay_url);
    g_main_loop_run(loop_.get());
    return status_;
  }

 private:
  void spawn(const pairing::Ticket& ticket) {
    if (stopping_) return;
    if (children_.size() >= kMaxSessions) {
      log::error_line(fmt::format("peersock: {} sessions at once already; not serving another", kMaxSessions));
      return;
    }
    // G_SPAWN_FILE_AND_ARGV_ZERO: the program, then the child's own argv.
    char exe[] = "/proc/self/exe";
    std::vector<char*> argv{exe};
    for (auto& a : child_argv_) argv.push_back(a.data());
    argv.push_back(nullptr);
    std::vector<std::string> env_storage;
    for (char** e = environ; *e != nullptr; ++e)
      if (!g_str_has_prefix(*e, "PEERSOCK_PAIRED_TICKET=")) env_storage.emplace_back(*e);
    env_storage.push_back("PEERSOCK_PAIRED_TICKET=" + ticket.client_nonce + ":" + ticket.server_nonce);
    std::vector<char*> envp;
    for (auto& e : env_storage) envp.push_back(e.data());
    envp.push_back(nullptr);
    GPid pid = 0;
    GError* error = nullptr;
    if (!g_spawn_async(nullptr, argv.data(), envp.data(),
                       static_cast<GSpawnFlags>(G_SPAWN_DO_NOT_REAP_CHILD | G_SPAWN_FILE_AND_ARGV_ZERO |
                                                G_SPAWN_CHILD_INHERITS_STDIN),
                       nullptr, nullptr, &pid, &error)) {
      log::error_line(fmt::format("peersock: cannot start a session: {}", error != nullptr ? error->message : "?"));
      g_clear_error(&error);
      return;
    }
    const unsigned number = ++sessions_;
    children_[pid] = number;
    g_child_watch_add(pid, &Server::on_child, this);
    log::say_line(fmt::format("session {} started (pid {})", number, pid));
  }

  static void on_child(GPid pid, gint wait_status, gpointer self) {
    auto* s = static_cast<Server*>(self);
    const unsigned number = s->children_.count(pid) != 0 ? s->children_[pid] : 0;
    s->children_.erase(pid);
    g_spawn_close_pid(pid);
    int code = WIFEXITED(wait_status) ? WEXITSTATUS(wait_status) : 128 + WTERMSIG(wait_status);
    log::say_line(fmt::format("session {} ended (exit {})", number, code));
    if (s->stopping_ && s->children_.empty()) g_main_loop_quit(s->loop_.get());
  }

  void failed(std::exception_ptr e) {
    try {
      std::rethrow_exception(e);
    } catch (const Error& err) {
      log::fatal(err.code(), err.what());
      status_ = static_cast<int>(err.code());
    } catch (const std::exception& err) {
      log::fatal(ExitCode::failure, err.what());
      status_ = static_cast<int>(ExitCode::failure);
    }
    stop();
  }

  void stop() {
    if (stopping_) return;
    stopping_ = true;
    meeting_->close(ExitCode::interrupted);
    for (const auto& [pid, number] : children_) kill(pid, SIGTERM);
    if (children_.empty()) {
      g_main_loop_quit(loop_.get());
      return;
    }
    grace_ = g_timeout_add(kStopGraceMs, &Server::on_grace, this);
  }

  static gboolean on_grace(gpointer self) {
    auto* s = static_cast<Server*>(self);
    s->grace_.fired();
    for (const auto& [pid, number] : s->children_) kill(pid, SIGKILL);
    g_main_loop_quit(s->loop_.get());
    return G_SOURCE_REMOVE;
  }

  static gboolean on_signal(gpointer self) {
    auto* s = static_cast<Server*>(self);
    s->status_ = static_cast<int>(ExitCode::interrupted);
    s->stop();
    return G_SOURCE_CONTINUE;
  }

  const Parsed& parsed_;
  std::vector<std::string> child_argv_;
  glib::MainLoopPtr loop_ = glib::new_main_loop();
  std::unique_ptr<session::Meeting> meeting_;
  std::vector<glib::SourceId> signals_;
  std::map<GPid, unsigned> children_;
  unsigned sessions_ = 0;
  bool stopping_ = false;
  int status_ = 0;
  glib::SourceId grace_;
};

}  // namespace

int run_serve(const Parsed& parsed, int argc, char** argv) { return Server(parsed, argc, argv).run(); }

}  // namespace peersock::cli
