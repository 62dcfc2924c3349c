// The one error boundary between C and C++. Every function a C library calls
// -- a GSource or GObject signal callback (GLib, libsoup, libnice), an
// ngtcp2 or OpenSSL callback -- runs its body through one of these, because
// an exception that unwinds into a C frame is undefined behaviour (in
// practice std::terminate: a core dump and no error line).
//
// This is the last resort. Errors the session can report properly are
// caught further in, where their owner is known (Session::guarded, the
// Forwarder's and Mailbox's failure callbacks) and end the run with their
// exit code and one line; what reaches a boundary is an exception nobody
// expected there (a bug, or std::bad_alloc).
#pragma once

namespace peersock {

// Inside a catch block: one line "peersock: internal error in WHERE: WHAT"
// (log::fatal, so in the run's output format), then the process exits at
// once with the exception's exit code (Error) or 1. Unwinding further is
// impossible from a C frame, so nothing else is cleaned up.
[[noreturn]] void exception_at_c_boundary(const char* where) noexcept;

// Runs `body` and returns its result; an exception ends the process as
// above. For GLib callbacks and others that have no way to report failure.
template <typename F>
decltype(auto) c_boundary(const char* where, F&& body) noexcept {
  try {
    return body();
  } catch (...) {
    exception_at_c_boundary(where);
  }
}

// For a C callback that can report failure itself (ngtcp2's
// NGTCP2_ERR_CALLBACK_FAILURE): an exception makes it return `failure`,
// and the library's own error path ends the connection.
template <typename R, typename F>
R c_boundary_or(R failure, F&& body) noexcept {
  try {
    return body();
  } catch (...) {
    return failure;
  }
}

}  // namespace peersock
