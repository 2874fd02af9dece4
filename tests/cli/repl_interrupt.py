#!/usr/bin/python3
"""tests/cli/repl_interrupt.py: in `mwtc repl` on a terminal (a pty here), Ctrl-C during modularize
stops it between two batches of images, with an error that says so, and the session goes on: once
while it counts the kernel frequencies (which then are not stored in the checkpoint), once while it
runs the modules. A modularize left alone afterwards gives the same report as one never stopped.
The sweep's stop (between chunks, and modules not yet started skip their work) is not driven here:
its four modules take a fraction of a second, too short to stop in reliably.

    repl_interrupt.py --mwtc PATH --tmp DIR
"""
import os
import re
import shutil
import subprocess

from cli_setup import Repl, fail, setup  # noqa: E402 (this directory, first on the path)

# Each pass takes many batches (64 images a batch) and a second or more. After one epoch every
# module keeps every kernel, so the modules' pass runs one module (the others copy its scores):
# the bar gives the model's own pass 8000 of 48000 units (17%), that module 10000 (to 38%).
PROGRAM = """dataset d = synthetic(n = 4096, test = 8000, seed = 4) { classes = 4  shape = [3, 32, 32] }
model m : [3, 32, 32] -> [4] {
    modular { conv(32) batchnorm relu conv(32) batchnorm relu }
    gap linear(4) }
train m on d { epochs = 1  batch = 64  loss = cross_entropy + cohesion + 1.5 * coupling }
modularize m { threshold = 0.9 }
"""


def main():
    a = setup(PROGRAM)
    r = subprocess.run([a.mwtc, "train", "s.mwt", "-o", "m.ckpt", "--quiet"], cwd=a.tmp, capture_output=True)
    if r.returncode != 0:
        fail("train: exit %d: %s" % (r.returncode, r.stderr.decode()[-2000:]))
    shutil.copy(os.path.join(a.tmp, "m.ckpt"), os.path.join(a.tmp, "trained.ckpt"))

    s = Repl(a.mwtc, a.tmp)
    at = s.wait_for("mwt> ", 0)
    stopped = []
    for phase, text in (("frequencies", "kernel frequencies over"), ("modules", "4 modules on")):
        s.send("modularize --ckpt m.ckpt\n")
        at = s.wait_for(text, at)
        if phase == "modules":   # past the model's own pass (17% of the bar): into the modules'
            s.wait_bar("modules", 20, at)
        s.send("\x03")   # the terminal turns it into SIGINT for the REPL
        prompt = s.wait_for("mwt> ", at)
        if "mwtc: error: stopped by Ctrl-C before it finished" not in s.out[at:prompt]:
            fail("modularize ran on after Ctrl-C in its %s" % phase)
        at = prompt
        stopped.append(phase)
        if phase == "frequencies":
            # nothing counted on part of the images was stored: the checkpoint is the trained one
            with open(os.path.join(a.tmp, "m.ckpt"), "rb") as f1, \
                    open(os.path.join(a.tmp, "trained.ckpt"), "rb") as f2:
                if f1.read() != f2.read():
                    fail("the checkpoint changed after modularize was stopped in its frequencies")
    # the session goes on: a command after them works
    s.send("check\n")
    at = s.wait_for("total:", at)
    s.quit()

    # after all that, modularize gives what it gives on the trained checkpoint never stopped
    def report(ckpt):
        r = subprocess.run([a.mwtc, "modularize", "s.mwt", "--ckpt", ckpt, "--json", "--quiet"], cwd=a.tmp,
                           capture_output=True)
        if r.returncode != 0:
            fail("modularize --ckpt %s: exit %d: %s" % (ckpt, r.returncode, r.stderr.decode()[-2000:]))
        return re.sub(r'"[a-z_]*seconds": [0-9.e+-]+', "", r.stdout.decode())
    if report("m.ckpt") != report("trained.ckpt"):
        fail("modularize after the stops differs from modularize of the trained checkpoint")
    print("ok: Ctrl-C stopped modularize in its %s; the session went on" % " and in its ".join(stopped))


if __name__ == "__main__":
    main()
