# Sourced by tests/run_all.sh (and usable by hand: `. tests/sanitize/env.sh`)
# before running anything from the sanitizer build.
#
# halt_on_error / -fno-sanitize-recover: the first report ends the process;
# exitcode=86 makes that status stand out from peersock's own exit codes.
# detect_leaks=1: LeakSanitizer at exit (needs ptrace-like access to the
# process's threads; works as root on Debian 12).
_psk_here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export ASAN_OPTIONS="halt_on_error=1:abort_on_error=0:exitcode=86:detect_leaks=1:detect_stack_use_after_return=1:strict_string_checks=1:check_initialization_order=1"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:exitcode=86"
export LSAN_OPTIONS="suppressions=$_psk_here/lsan.supp:print_suppressions=0"
unset _psk_here
