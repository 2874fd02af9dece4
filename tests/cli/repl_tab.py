#!/usr/bin/python3
"""tests/cli/repl_tab.py: Tab in `mwtc repl` on a terminal (a pty here) completes the word at the
cursor, and the line it completes is the one that runs: a command and its option, a model's name
after --model (`check --model tab` would fail: no such model), a checkpoint's file name after
--ckpt, and layers typed in a model's braces over two lines (a half-typed layer would not check).
What fits where is unit/test_repl_complete's; this is libedit's use of it.

    repl_tab.py --mwtc PATH --tmp DIR
"""
import os

from cli_setup import Repl, fail, setup  # noqa: E402 (this directory, first on the path)

PROGRAM = """dataset d = synthetic(n = 64, test = 16, seed = 1) { classes = 2  shape = [1, 8, 8] }
model tabby : [1, 8, 8] -> [2] { conv(4) relu gap linear(2) }
train tabby on d { epochs = 1  batch = 16 }
"""


def main():
    a = setup(PROGRAM)
    s = Repl(a.mwtc, a.tmp)
    at = s.wait_for("mwt> ", 0)
    # a command, an option and a model's name, each completed from a prefix
    s.send("chec\t --mo\ttab\t\n")
    end = s.wait_for("mwt> ", at + 1)
    if "total:" not in s.out[at:end] or "error" in s.out[at:end]:
        fail("`chec<Tab> --mo<Tab>tab<Tab>` did not run `check --model tabby`")
    at = end
    # a file's name after --ckpt: train writes one, eval reads it by its completed name
    s.send("train --quiet -o tabby_trained.ckpt\n")
    at = s.wait_for("mwt> ", s.wait_for("checkpoint tabby_trained.ckpt", at))
    s.send("eval --ckpt tabby_tr\t\n")
    end = s.wait_for("mwt> ", s.wait_for("test accuracy", at))
    if "error" in s.out[at:end]:
        fail("`eval --ckpt tabby_tr<Tab>` did not read tabby_trained.ckpt")
    at = end
    # layers in a model's braces, on the item's second line too
    s.send("model tab2 : [1, 8, 8] -> [2] { con\t(4) bat\t\n")
    at = s.wait_for("...> ", at)
    s.send("rel\tga\tlin\t(2) }\n")
    end = s.wait_for("mwt> ", at)
    if "linear -> 2" not in s.out[at:end] or "error" in s.out[at:end]:
        fail("the model typed with Tab did not check")
    # a block's parameter, by its own name: `ke` alone would not check
    s.send("block duo(width, kern = 3) { conv(width, k = kern) relu }\n")
    at = s.wait_for("mwt> ", s.wait_for("ok", at))
    s.send("model tab3 : [1, 8, 8] -> [2] { duo(4, ke\t= 1) gap linear(2) }\n")
    end = s.wait_for("mwt> ", at + 1)
    if "conv 1x1" not in s.out[at:end] or "error" in s.out[at:end]:
        fail("`duo(4, ke<Tab>= 1)` did not give the block's kern = 1")
    at = end
    status = s.quit()
    if status != 0:
        fail("the session exited %d" % status)
    if not os.path.exists(os.path.join(a.tmp, "tabby_trained.ckpt")):
        fail("no checkpoint")
    # a session of nothing (no file, no names yet): Tab still completes a command and an option
    s = Repl(a.mwtc, a.tmp, ())
    at = s.wait_for("mwt> ", 0)
    s.send("tra\t--ep\t1\n")
    end = s.wait_for("mwt> ", s.wait_for("error", at))
    if "has no train statement" not in s.out[at:end]:
        fail("`tra<Tab>--ep<Tab>1` in an empty session did not run `train --epochs 1`")
    if s.quit() != 0:
        fail("the empty session exited with an error")
    print("ok: Tab completed a command, options, a model, a file, layers and a block's parameter")


if __name__ == "__main__":
    main()
