"""--help and --version."""
import re

import pytest

from lab import REPO, scaled


def project_version():
    m = re.search(r"version:\s*'([^']+)'", (REPO / "meson.build").read_text())
    assert m, "no version in meson.build"
    return m.group(1)


def run(lab, args):
    p = lab.peersock(f"peersock {' '.join(args)}", args)
    rc = p.wait_exit(scaled(10))
    return rc, p.text("stdout") + "\n" + p.text("stderr")


@pytest.mark.deadline(30)
def test_help_lists_subcommands(ns_lab):
    rc, out = run(ns_lab, ["--help"])
    ns_lab.check(rc == 0, f"--help exited with status {rc}")
    for sub in ("connect", "listen", "stdio-a", "stdio-b"):
        ns_lab.check(re.search(rf"(?<![\w-]){re.escape(sub)}(?![\w-])", out) is not None,
                     f"--help does not list the subcommand {sub!r}")


@pytest.mark.deadline(30)
def test_version_names_version_and_openssl(ns_lab):
    rc, out = run(ns_lab, ["--version"])
    ns_lab.check(rc == 0, f"--version exited with status {rc}")
    v = project_version()
    ns_lab.check(v in out, f"--version does not print the project version {v}")
    ns_lab.check(re.search(r"OpenSSL 3\.5", out) is not None, "--version does not mention 'OpenSSL 3.5'")
