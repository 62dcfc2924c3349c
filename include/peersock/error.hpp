// Error types shared by every layer.
//
// Following mosh: environment and user problems are exceptions of type
// peersock::Error carrying the exit code the process should end with; what
// the peer or the relay sent that breaks the protocol is a CounterpartyError
// ("illegal counterparty input"), so it can be told apart in logs and exit
// codes; programming mistakes are asserts, never exceptions.
#pragma once

#include <stdexcept>
#include <string>
#include <string_view>

namespace peersock {

// The documented exit codes (README "Exit codes"). Values are stable.
enum class ExitCode : int {
  ok = 0,
  failure = 1,        // unexpected internal failure
  usage = 2,          // bad command line, bad code format, bad config file
  code_mismatch = 3,  // the peer holds a different code (SMP failed)
  no_path = 4,        // no network path to the peer (ICE/QUIC could not connect)
  peer_gone = 5,      // the peer disappeared or aborted after connecting
  relay = 6,          // the rendezvous (mailbox) server failed or refused
  local = 7,          // local socket/stdio problem (port in use, connect refused)
  protocol = 8,       // the peer or relay sent something illegal
  interrupted = 130,  // Ctrl-C, SIGTERM, SIGHUP (128 + SIGINT, as shells report it)
};

// A short stable name for each exit code, used in logs (and --json later).
std::string_view exit_code_name(ExitCode code);

// A failed guess of the code, by SMP (auth) or the signaling PAKE's key
// confirmation (signal): both sides print this. Neither can tell who typed
// what, so it blames nobody.
inline constexpr const char* kMismatchMessage =
    "connection code mismatch: the codes did not match (one side typed it wrong, or someone guessed)";

class Error : public std::runtime_error {
 public:
  Error(ExitCode code, const std::string& message) : std::runtime_error(message), code_(code) {}
  ExitCode code() const noexcept { return code_; }

 private:
  ExitCode code_;
};

// Something the user typed (arguments, code, config) is wrong.
class UsageError : public Error {
 public:
  explicit UsageError(const std::string& message) : Error(ExitCode::usage, message) {}
};

// Illegal counterparty input: the peer or the relay sent data that violates
// the protocol. Never trusted, never fatal to the process beyond ending the
// session cleanly.
class CounterpartyError : public Error {
 public:
  explicit CounterpartyError(const std::string& message) : Error(ExitCode::protocol, message) {}
};

}  // namespace peersock
