#!/usr/bin/python3
"""tests/cli/interrupt.py: Ctrl-C (SIGINT) while `mwtc train` runs stops it after the step, with
the checkpoint of the last whole epoch intact, exit status 130 and a message that says how to go on;
`--resume` then goes on from it. A second Ctrl-C ends mwtc at once.

    interrupt.py --mwtc PATH --tmp DIR
"""
import os
import re
import signal
import subprocess
import sys
import time

from cli_setup import setup  # noqa: E402 (this directory, first on the path)

PROGRAM = """dataset d = synthetic(n = 512, test = 64, seed = 1) { classes = 3  shape = [1, 12, 12] }
model m : [1, 12, 12] -> [3] { conv(8) relu gap linear(3) }
train m on d { epochs = 100000  batch = 32  seed = 2 }
"""


def fail(msg):
    print("FAIL: " + msg)
    sys.exit(1)


def start(mwtc, tmp, ckpt):
    """mwtc train, and SIGINT's target once the first epoch's checkpoint is there."""
    p = subprocess.Popen([mwtc, "train", "s.mwt", "-o", ckpt], cwd=tmp, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE)
    t0 = time.time()
    while not os.path.exists(os.path.join(tmp, ckpt)):
        if p.poll() is not None or time.time() - t0 > 120:
            fail("no checkpoint after the first epoch: %r" % (p.communicate()[1][-2000:],))
        time.sleep(0.01)
    time.sleep(0.05)   # into the second epoch
    return p


def main():
    a = setup(PROGRAM)

    # one Ctrl-C: the run stops after its step, says so, exits 130
    p = start(a.mwtc, a.tmp, "x.ckpt")
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    err = err.decode()
    if p.returncode != 130:
        fail("exit %d after one SIGINT, expected 130; stderr: %s" % (p.returncode, err[-2000:]))
    for want in ("stopping after this step", "mwtc: error: interrupted at epoch",
                 "the checkpoint holds the epochs before it", "mwtc: note: mwtc train s.mwt --resume x.ckpt"):
        if want not in err:
            fail("no %r in stderr: %s" % (want, err[-2000:]))
    epoch = int(re.search(r"interrupted at epoch (\d+)", err).group(1))
    if epoch < 2:
        fail("interrupted at epoch %d: the checkpoint was there, so at least the second" % epoch)

    # the checkpoint is whole, and a resume goes on from it for one more epoch
    r = subprocess.run([a.mwtc, "eval", "s.mwt", "--ckpt", "x.ckpt"], cwd=a.tmp, capture_output=True)
    if r.returncode != 0:
        fail("eval of the interrupted run's checkpoint: exit %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
    r = subprocess.run([a.mwtc, "train", "s.mwt", "--resume", "x.ckpt", "--epochs", str(epoch), "--quiet"],
                       cwd=a.tmp, capture_output=True)
    if r.returncode != 0 or ("trained %d epochs" % epoch) not in r.stdout.decode():
        fail("resume to epoch %d: exit %d: %s %s" % (epoch, r.returncode, r.stdout.decode()[-1000:],
                                                     r.stderr.decode()[-2000:]))

    # two: mwtc ends at once (by the signal), or had stopped already after the first
    p = start(a.mwtc, a.tmp, "y.ckpt")
    p.send_signal(signal.SIGINT)
    p.send_signal(signal.SIGINT)
    p.communicate(timeout=120)
    if p.returncode not in (130, -signal.SIGINT):
        fail("exit %d after two SIGINTs, expected 130 or the signal" % p.returncode)
    print("ok: stopped at epoch %d with exit 130, resumed; two Ctrl-C: exit %d" % (epoch, p.returncode))


if __name__ == "__main__":
    main()
