"""tests/cli/cli_setup.py: what the Python CLI tests share: their two arguments (--mwtc PATH, --tmp
DIR), and DIR made afresh with the test's program in it as s.mwt; `mwtc repl` on a terminal (a pty)."""
import argparse
import os
import pty
import re
import select
import shutil
import sys
import time


def setup(program):
    """The parsed arguments, mwtc's path made absolute; DIR emptied, with s.mwt holding program."""
    ap = argparse.ArgumentParser()
    ap.add_argument("--mwtc", required=True)
    ap.add_argument("--tmp", required=True)
    a = ap.parse_args()
    a.mwtc = os.path.abspath(a.mwtc)
    shutil.rmtree(a.tmp, ignore_errors=True)
    os.makedirs(a.tmp)
    with open(os.path.join(a.tmp, "s.mwt"), "w") as f:
        f.write(program)
    return a


class Repl:
    """mwtc repl s.mwt (or args) under a pty, in DIR: what it wrote so far, keys sent to it as a terminal
    sends them (Ctrl-C, Tab)."""
    current = None   # the session fail() shows

    def __init__(self, mwtc, tmp, args=("s.mwt",)):
        self.pid, self.fd = pty.fork()
        if self.pid == 0:
            os.chdir(tmp)
            os.environ["HOME"] = tmp   # the history file goes there
            os.execv(mwtc, [mwtc, "repl"] + list(args))
        self.out = ""
        Repl.current = self

    def read(self, timeout):
        r, _, _ = select.select([self.fd], [], [], timeout)
        if r:
            try:
                self.out += os.read(self.fd, 65536).decode(errors="replace")
            except OSError:   # the child closed the terminal
                return False
        return True

    def wait_for(self, text, since, timeout=300):
        t0 = time.time()
        while self.out.find(text, since) < 0:
            if time.time() - t0 > timeout or not self.read(0.05):
                fail("no %r after %d s" % (text, timeout))
        return self.out.find(text, since)

    def wait_bar(self, what, percent, since, timeout=300):
        """Until the bar `what` shows `percent` or more."""
        t0 = time.time()
        bar = re.compile(re.escape(what) + r" \[[#.]+\] +(\d+)%")
        while not any(int(m.group(1)) >= percent for m in bar.finditer(self.out, since)):
            if time.time() - t0 > timeout or not self.read(0.05):
                fail("the %s bar never showed %d%% in %d s" % (what, percent, timeout))

    def send(self, keys):
        os.write(self.fd, keys.encode())

    def quit(self):
        """:quit, and the exit status once it has left (failing if it does not leave by itself)."""
        self.send(":quit\n")
        t0 = time.time()
        while self.read(0.1) and time.time() - t0 < 30:
            pass
        _, status = os.waitpid(self.pid, 0)
        if not os.WIFEXITED(status):
            fail("the REPL did not exit by itself: status %d" % status)
        return os.WEXITSTATUS(status)


def fail(msg):
    print("FAIL: " + msg)
    if Repl.current is not None:
        print("the session wrote:\n" + Repl.current.out[-3000:])
    sys.exit(1)
