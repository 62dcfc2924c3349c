"""Shared fixtures for the peersock end-to-end tests.

- `deadline` (autouse): an overall per-test deadline (SIGALRM in the main
  thread), default 120 s, set with @pytest.mark.deadline(SECONDS); scaled by
  PEERSOCK_E2E_TIME_SCALE. It is a backstop: every individual wait has its own
  shorter deadline and a precise message.
- `ns_lab`: a Lab (fresh netns with only lo) without a mailbox server.
- `lab`: the same with the mailbox server running inside the namespace.
Both are torn down (processes killed, namespace deleted) also on failure.
"""
import os
import re
import shutil
import signal
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
import lab as labmod  # noqa: E402

DEFAULT_DEADLINE = 120


class DeadlineExceeded(Exception):
    pass


def _sigterm_to_interrupt(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def pytest_configure(config):
    # A terminated run (e.g. a CI time limit) still runs the fixtures'
    # finalizers: processes killed, namespaces deleted.
    signal.signal(signal.SIGTERM, _sigterm_to_interrupt)
    config.addinivalue_line("markers", "deadline(seconds): overall deadline of one test (scaled by PEERSOCK_E2E_TIME_SCALE)")


def pytest_sessionfinish(session, exitstatus):
    for finish in labmod.SESSION_FINISHERS:
        finish()


def pytest_report_header(config):
    return [f"peersock binary: {labmod.peersock_bin()}",
            f"big transfer size: {labmod.mib(labmod.big_bytes())}, time scale {labmod.time_scale():g}"]


@pytest.fixture(scope="session")
def environment_ok():
    if os.geteuid() != 0:
        pytest.skip("the end-to-end tests need root (they create network namespaces)")
    for tool in ("ip", labmod.TWISTD, labmod.PYTHON):
        if not shutil.which(tool):
            pytest.fail(f"{tool} not found (scripts/setup.sh installs it)", pytrace=False)
    removed = labmod.cleanup_stale_namespaces()
    if removed:
        print(f"removed stale namespaces of dead runs: {' '.join(removed)}", file=sys.stderr)
    return True


@pytest.fixture(scope="session")
def peersock_binary(environment_ok):
    b = labmod.peersock_bin()
    if not (os.path.isfile(b) and os.access(b, os.X_OK)):
        pytest.fail(f"peersock binary {b} does not exist or is not executable "
                    f"(build it with scripts/setup.sh, or set PEERSOCK_BIN)", pytrace=False)
    return b


class Deadline:
    def __init__(self, seconds):
        self.seconds = seconds
        self.armed = False

    def arm(self):
        def handler(signum, frame):
            self.armed = False
            raise DeadlineExceeded(f"test exceeded its overall deadline of {self.seconds:.0f}s")
        self._old = signal.signal(signal.SIGALRM, handler)
        signal.setitimer(signal.ITIMER_REAL, self.seconds)
        self.armed = True

    def disarm(self):
        signal.setitimer(signal.ITIMER_REAL, 0)
        if hasattr(self, "_old"):
            signal.signal(signal.SIGALRM, self._old)
            del self._old
        self.armed = False


@pytest.fixture(autouse=True)
def deadline(request):
    m = request.node.get_closest_marker("deadline")
    d = Deadline(labmod.scaled(m.args[0] if m else DEFAULT_DEADLINE))
    d.arm()
    try:
        yield d
    finally:
        d.disarm()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A test that failed other than through Lab.fail (overall deadline, plain
    assert, exception) still gets the lab report (both peers' stderr etc.)."""
    outcome = yield
    rep = outcome.get_result()
    lab = getattr(item, "_psk_lab", None)
    if lab is not None and rep.failed and call.excinfo is not None \
            and not isinstance(call.excinfo.value, labmod.LabError):
        rep.sections.append(("peersock lab report", lab.report()))


def _make_lab(request, deadline, with_mailbox):
    # The lab's teardown first disarms the overall deadline so that it cannot
    # interrupt the clean-up itself.
    lab = labmod.Lab(on_close=deadline.disarm)
    request.node._psk_lab = lab
    try:
        if with_mailbox:
            lab.start_mailbox()
    except BaseException:
        lab.close()
        raise
    return lab


# What AddressSanitizer, LeakSanitizer and UBSan print when they find
# something. In the sanitizer pass (tests/run_all.sh) they also change the exit
# status, but a peer that is stopped by the test (SIGTERM) or whose status the
# test does not check would hide a report: so every process's stderr is read.
SANITIZER_REPORT_RE = re.compile(r"ERROR: (AddressSanitizer|LeakSanitizer)|runtime error: |"
                                 r"WARNING: AddressSanitizer|SUMMARY: UndefinedBehaviorSanitizer")


def sanitizer_reports(lab):
    found = []
    for p in lab.procs:
        for line in p.lines("stderr"):
            if SANITIZER_REPORT_RE.search(line):
                found.append(f"{p.name}: {line.strip()}")
                break
    return found


def _close_and_check(lab):
    lab.close()
    found = sanitizer_reports(lab)
    if found:
        pytest.fail("sanitizer report in a process's stderr:\n  " + "\n  ".join(found) + "\n" + lab.report(),
                    pytrace=False)


@pytest.fixture
def harness_lab(request, deadline, environment_ok):
    """Lab with mailbox, for the harness's own tests (no peersock binary needed)."""
    lab = _make_lab(request, deadline, with_mailbox=True)
    try:
        yield lab
    finally:
        _close_and_check(lab)


@pytest.fixture
def ns_lab(request, deadline, peersock_binary):
    lab = _make_lab(request, deadline, with_mailbox=False)
    try:
        yield lab
    finally:
        _close_and_check(lab)


@pytest.fixture
def lab(request, deadline, peersock_binary):
    lab = _make_lab(request, deadline, with_mailbox=True)
    try:
        yield lab
    finally:
        _close_and_check(lab)
