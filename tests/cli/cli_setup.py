"""tests/cli/cli_setup.py: what the Python CLI tests share: their two arguments (--mwtc PATH, --tmp
DIR), and DIR made afresh with the test's program in it as s.mwt."""
import argparse
import os
import shutil


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
