#include <sys/prctl.h>
#include <sys/resource.h>

#include "cli/cli.hpp"

// Before anything else, while nothing secret is in memory yet: the process
// will hold the connection code (and the secret derived from it). Not
// dumpable: no core file, and no ptrace or /proc/PID/mem access for other
// processes of the same user (root keeps it). RLIMIT_CORE 0 as well, for
// systems with fs.suid_dumpable = 2, where a non-dumpable process still
// dumps core. Neither call can fail with these arguments; if one did,
// peersock would only be as exposed as without it, so results are ignored.
static void harden_process() {
  prctl(PR_SET_DUMPABLE, 0, 0, 0, 0);
  const rlimit no_core{0, 0};
  setrlimit(RLIMIT_CORE, &no_core);
}

int main(int argc, char** argv) {
  harden_process();
  return peersock::cli::run(argc, argv);
}
