#include "peersock/c_boundary.hpp"

#include <unistd.h>

#include <cstdio>
#include <exception>
#include <string>

#include "peersock/error.hpp"
#include "peersock/log.hpp"

namespace peersock {

void exception_at_c_boundary(const char* where) noexcept {
  ExitCode code = ExitCode::failure;
  std::string what = "unknown exception";
  try {
    throw;
  } catch (const Error& e) {
    code = e.code();
    what = e.what();
  } catch (const std::exception& e) {
    what = e.what();
  } catch (...) {
  }
  try {
    log::fatal(code, std::string("internal error in ") + where + ": " + what);
  } catch (...) {
    std::fputs("peersock: internal error\n", stderr);
  }
  std::fflush(stderr);
  _exit(static_cast<int>(code));
}

}  // namespace peersock
