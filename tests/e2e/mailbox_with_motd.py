"""Debian's magic-wormhole mailbox server with a message of the day.

The packaged server has no option for a motd (wormhole_mailbox_server's
make_server leaves welcome["motd"] commented out), so this wrapper wraps
make_server before twistd loads the plugin, adds PEERSOCK_TEST_MOTD to the
welcome the real server sends, and runs twistd with the arguments given:

    /usr/bin/python3 mailbox_with_motd.py -n --pidfile= wormhole-mailbox --port=...

Used by tests that need a hostile relay's text in a real server's welcome."""
import os
import sys

from wormhole_mailbox_server import server

_make_server = server.make_server


def make_server_with_motd(*args, **kwargs):
    s = _make_server(*args, **kwargs)
    s.get_welcome()["motd"] = os.environ["PEERSOCK_TEST_MOTD"]
    return s


server.make_server = make_server_with_motd

from twisted.scripts.twistd import run  # noqa: E402  (after the patch, which the plugin imports)

if __name__ == "__main__":
    sys.argv[0] = "twistd"
    run()
