#!/usr/bin/python3
"""scripts/fuzz.py: mutation fuzzing of mwtc's inputs, against the contract that no input, however
malformed, ends mwtc by a signal (LANGUAGE.md section 2) nor trips the sanitizers.

    python3 scripts/fuzz.py [--mwtc build-asan/mwtc] [--mode mwt|ckpt|idx|arch|repl|cli] [--seconds S | --runs N]
                            [--seed N] [--out DIR]

mwt:  mutates the .mwt files of tests/ and examples/ (bytes, tokens, splices of two files) and runs
      `mwtc check` and, on every second one, `mwtc dump ir`: the whole binary and the lowering and
      passes behind the front end (unit/test_fuzz mangles programs through the front end only).
ckpt: trains a tiny synthetic model once, then mutates its checkpoint and runs `mwtc eval` and
      `mwtc report` on it.
idx:  writes a small IDX data set (some files gzipped), or SVHN's MAT-files (tests/data/svhn's two, half the time
      with the training file again as extra_32x32.mat and extra = true),
      mutates one file at a time and runs `mwtc train` on a model reading it.
arch: writes random valid models (convs of any kernel, stride and padding, pools, residual blocks
      with and without a shortcut, modular blocks, masks, batchnorm, dropout, gap or flatten and
      linear layers, on synthetic images of 1 to 3 channels and planes of 5 to 20 pixels a side,
      2 to 10 classes) and training plans (batches that leave a short last one, every schedule,
      momentum with and without nesterov and weight decay, each loss with masks), and runs each
      through all of mwtc: `check`; `train` on one thread and on 2 to 24, whose checkpoints must
      be the same bytes (the same seed gives the same result whatever the thread count);
      `modularize` and `reuse`, likewise on one thread and on many; `report --json`, `eval
      --module`; `emit` of a module or of a reuse's, linked by the C compiler into
      tests/aot/aot_main.c and run, which checks its scores to the bit across calls of 1 to 17
      images and 6 threads. Every step must exit 0.
repl: pipes sessions into `mwtc repl` (with and without a file): lines of programs, whole or cut
      at any line (so that items run on over lines, or never close), mutated lines, the REPL's
      commands with options of every kind (valid, out of range, unknown, quotes left open, ~/), and
      its ':' commands, on a tiny model that trains in a moment, so that the commands reach their
      work.
cli:  runs mwtc with random command lines: every command and option, in any order, with values valid
      and not (out of range, not numbers, empty, paths that are not there or are directories),
      options given twice or without their value, on the tiny model and a checkpoint of it.
A run fails when mwtc dies by a signal, exits other than 0, 1 or 2 (arch: other than 0, or an
invariant above breaks), a sanitizer reports, or it runs past 20 s (arch: 120 s); each failing
input is kept in --out (default /tmp/mwtc-fuzz) with its command.
Exits 1 when any run failed. With --runs the inputs are the same for a given --seed (ctest runs it
so: tests/CMakeLists.txt); with --seconds, how many of them run depends on the machine.
"""
import argparse
import gzip
import json
import os
import random
import re
import shutil
import struct
import subprocess
import sys
import tempfile
import time
import zlib

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SAN = {"ASAN_OPTIONS": "exitcode=99:detect_leaks=1:abort_on_error=0",
       "UBSAN_OPTIONS": "halt_on_error=1:exitcode=98:print_stacktrace=1"}
TOKENS = ["model", "block", "dataset", "train", "on", "modularize", "reuse", "as", "modular", "residual",
          "import", "{", "}", "(", ")", "[", "]", ",", "=", ":", "->", "+", "-", "*", "/", "conv", "mask",
          "linear", "maxpool", "avgpool", "gap", "flatten", "relu", "batchnorm", "dropout", "0", "1", "-1",
          "999999999999", "0.0", "1e308", "1e-300", "\"\"", "\"x\"", "k", "classes", "shape", "\n", "#",
          "synthetic", "idx", "cifar10", "cifar100", "svhn", "extra", "true", "cohesion", "coupling", "cross_entropy",
          "threshold", "epochs"]


def mutate_text(rng, text, others):
    b = bytearray(text.encode("utf-8", "surrogateescape"))
    numbers_only = rng.random() < 0.5   # a program that still parses, with odd sizes: deeper than the parser
    for _ in range(rng.randint(1, 4)):
        op = 5 if numbers_only else rng.randrange(6)
        pos = rng.randrange(len(b) + 1) if b else 0
        if op == 0 and b:                      # flip a byte
            b[min(pos, len(b) - 1)] = rng.randrange(256)
        elif op == 1 and b:                    # delete a run
            del b[pos:pos + rng.randint(1, 12)]
        elif op == 2:                          # insert a token
            b[pos:pos] = (" " + rng.choice(TOKENS) + " ").encode()
        elif op == 3 and b:                    # duplicate a run
            n = rng.randint(1, 40)
            b[pos:pos] = b[pos:pos + n]
        elif op == 4 and others:               # splice a part of another file
            o = rng.choice(others).encode()
            a = rng.randrange(len(o) + 1)
            b[pos:pos] = o[a:a + rng.randint(1, 200)]
        else:                                  # change a number
            m = list(re.finditer(rb"\d+(\.\d+)?", bytes(b)))
            if m:
                x = rng.choice(m)
                b[x.start():x.end()] = rng.choice([b"0", b"1", b"2", b"3", b"7", b"65536", b"2147483647",
                                                  b"4294967297", b"0.5", b"1e9", b"-3"])
    return bytes(b)


def mutate_bytes(rng, data):
    b = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(5)
        pos = rng.randrange(len(b)) if b else 0
        if op == 0 and b:
            b[pos] ^= 1 << rng.randrange(8)
        elif op == 1 and b:
            b[pos] = rng.choice([0, 1, 0x7f, 0x80, 0xff])
        elif op == 2 and b:
            del b[pos:pos + rng.randint(1, 64)]
        elif op == 3:
            b = b[:rng.randrange(len(b) + 1)]
        elif len(b) >= 4:                      # a 32-bit field set to an edge value
            p = pos - pos % 4
            b[p:p + 4] = struct.pack("<I", rng.choice([0, 1, 0x7fffffff, 0xffffffff, len(b), 1 << 20]))
    return bytes(b)


class Runner:
    def __init__(self, mwtc, out, cwd):
        self.mwtc, self.out, self.cwd = mwtc, out, cwd
        self.runs = self.fails = 0
        self.rcs = {}
        self.limit, self.deadline = None, None
        self.env = dict(os.environ, **SAN)
        self.env.setdefault("MWT_STDLIB", os.path.join(ROOT, "stdlib"))
        self.env["MWTC_CACHE_DIR"] = os.path.join(cwd, "cache")   # compiled once, not per run

    def more(self):
        """Whether to make another input: --runs not reached, --seconds not past."""
        if self.limit is not None:
            return self.runs < self.limit
        return time.time() < self.deadline

    def fail(self, what, keep, text):
        """Keeps a failing input ({name: bytes}) and what went wrong in --out."""
        self.fails += 1
        d = os.path.join(self.out, "fail%04d" % self.fails)
        os.makedirs(d, exist_ok=True)
        for name, data in keep.items():
            with open(os.path.join(d, name), "wb") as f:
                f.write(data)
        with open(os.path.join(d, "cmd.txt"), "w") as f:
            f.write("%s\n%s" % (what, text[-4000:]))
        print("FAIL %s (kept in %s)" % (what, d), flush=True)

    def run(self, args, keep, ok=(0, 1, 2), timeout=20, stdin=None):
        """Runs mwtc with args in cwd (stdin: bytes to feed it, or none); a failure when it exits
        other than ok, or a sanitizer reports (keep: {name: bytes} to save then). Its exit code,
        and its stdout."""
        self.runs += 1
        try:
            p = subprocess.run([self.mwtc] + args, cwd=self.cwd, env=self.env, timeout=timeout,
                               input=stdin if stdin is not None else b"",
                               capture_output=True)
            rc, out, err = p.returncode, p.stdout.decode("utf-8", "replace"), p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, out, err = "timeout", "", ""
        self.rcs[rc] = self.rcs.get(rc, 0) + 1
        if rc not in ok or "Sanitizer" in err or "runtime error:" in err:
            self.fail("mwtc %s: rc %s" % (" ".join(args), rc), keep, err)
            return "failed", out
        return rc, out


def seeds_mwt(subs):
    out = []
    for sub in subs:
        d = os.path.join(ROOT, sub)
        for n in sorted(os.listdir(d)):
            if n.endswith(".mwt"):
                with open(os.path.join(d, n), encoding="utf-8", errors="surrogateescape") as f:
                    out.append(f.read())
    return out


def fuzz_mwt(r, rng):
    good = seeds_mwt(("tests/parse", "examples", "stdlib/nn", "stdlib/models"))
    texts = good + seeds_mwt(("tests/errors",))
    while r.more():   # mostly programs that check, so that the mutants get past the parser
        src = mutate_text(rng, rng.choice(good if rng.random() < 0.7 else texts), texts)
        path = os.path.join(r.cwd, "f.mwt")
        with open(path, "wb") as f:
            f.write(src)
        r.run(["check", "f.mwt"], {"f.mwt": src})
        if rng.random() < 0.5:
            r.run(["dump", "ir", "f.mwt"], {"f.mwt": src})


TINY = """dataset syn = synthetic(n = 64, test = 32, seed = 2) { classes = 3  shape = [1, 8, 8] }
model tiny(classes = 3) : [1, 8, 8] -> [classes] {
    conv(4) relu
    modular { conv(6) batchnorm relu maxpool(2) }
    flatten linear(classes)
}
train tiny on syn { epochs = 1  batch = 16  loss = cross_entropy + 0.5 * cohesion + 1.5 * coupling }
modularize tiny { threshold = 0.9 }
"""


def fuzz_ckpt(r, rng):
    with open(os.path.join(r.cwd, "tiny.mwt"), "w") as f:
        f.write(TINY)
    if r.run(["tiny.mwt", "--quiet"], {})[0] != 0:
        sys.exit("fuzz: the tiny model does not run")
    with open(os.path.join(r.cwd, "tiny.ckpt"), "rb") as f:
        good = f.read()
    while r.more():
        data = mutate_bytes(rng, good)
        if rng.random() < 0.8 and len(data) > 4:   # past the checksum, into what the loader checks next
            data = data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]))
        with open(os.path.join(r.cwd, "m.ckpt"), "wb") as f:
            f.write(data)
        cmd = rng.choice([["eval", "tiny.mwt", "--ckpt", "m.ckpt"], ["report", "tiny.mwt", "--ckpt", "m.ckpt"],
                          ["eval", "tiny.mwt", "--ckpt", "m.ckpt", "--module", "1"]])
        r.run(cmd + ["--quiet"], {"m.ckpt": data, "tiny.mwt": TINY.encode()})


def idx_file(dims, payload):
    return struct.pack(">BBBB", 0, 0, 8, len(dims)) + b"".join(struct.pack(">I", d) for d in dims) + payload


def fuzz_idx(r, rng):
    d = os.path.join(r.cwd, "data")
    os.makedirs(d, exist_ok=True)
    rnd = random.Random(7)
    files = {}
    for split, n in (("train", 48), ("t10k", 24)):
        files["%s-images-idx3-ubyte" % split] = idx_file([n, 8, 8], bytes(rnd.randrange(256) for _ in range(n * 64)))
        files["%s-labels-idx1-ubyte" % split] = idx_file([n], bytes(rnd.randrange(3) for _ in range(n)))
    src = TINY.replace("synthetic(n = 64, test = 32, seed = 2)", 'idx("data")')
    with open(os.path.join(r.cwd, "tidx.mwt"), "w") as f:
        f.write(src)
    names = sorted(files)
    # SVHN's MAT-files: scipy's two (one compressed, one not) from tests/data/svhn
    sv = os.path.join(r.cwd, "svhn")
    os.makedirs(sv, exist_ok=True)
    here = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "data", "svhn")
    mats = {n: open(os.path.join(here, n), "rb").read() for n in ("train_32x32.mat", "test_32x32.mat")}
    svhn_src = ('dataset sv = svhn("svhn"%s) { classes = 10  shape = [3, 32, 32] }\n'
                "model tiny : [3, 32, 32] -> [10] { conv(4, stride = 4) relu modular { conv(6) relu } gap linear(10) }\n"
                "train tiny on sv { epochs = 1  batch = 2  loss = cross_entropy + cohesion + coupling }\n")
    while r.more():
        if rng.random() < 0.3:
            # half the time extra = true, with the training file again as extra_32x32.mat
            extra = rng.random() < 0.5
            used = dict(mats, **{"extra_32x32.mat": mats["train_32x32.mat"]}) if extra else mats
            victim = rng.choice(sorted(used))
            kept = {n: mutate_bytes(rng, b) if n == victim else b for n, b in used.items()}
            for n in os.listdir(sv):
                os.remove(os.path.join(sv, n))
            for n, b in kept.items():
                with open(os.path.join(sv, n), "wb") as f:
                    f.write(b)
            src = svhn_src % (", extra = true" if extra else "")
            kept["tsvhn.mwt"] = src.encode()
            with open(os.path.join(r.cwd, "tsvhn.mwt"), "w") as f:
                f.write(src)
            r.run(["train", "tsvhn.mwt", "--quiet", "-o", "x.ckpt"], kept)
            continue
        for n in os.listdir(d):
            os.remove(os.path.join(d, n))
        victim = rng.choice(names)
        for n in names:
            data = mutate_bytes(rng, files[n]) if n == victim else files[n]
            if rng.random() < 0.3:
                data = gzip.compress(data, mtime=0)
                if n == victim and rng.random() < 0.5:
                    data = mutate_bytes(rng, data)
                n += ".gz"
            with open(os.path.join(d, n), "wb") as f:
                f.write(data)
        kept = {n: open(os.path.join(d, n), "rb").read() for n in os.listdir(d)}
        kept["tidx.mwt"] = src.encode()
        r.run(["train", "tidx.mwt", "--quiet", "-o", "x.ckpt"], kept)


def repl_command(rng):
    """A REPL command line: mostly ones that reach their work on the tiny session, some with
    options out of range, unknown or malformed."""
    ck = rng.choice(["m.ckpt"] * 18 + ["none.ckpt", "tiny.mwt", "'m.ckpt", "\"m.ckpt", "~/m.ckpt", "''"])
    mods = rng.choice(["0", "1", "2", "0,2", "2,1,0"] * 2 + ["3", "-1", "0,0", "a", "", "1,", "999999999999"])
    thr = rng.choice(["0.9", "0.5", "0.95", "1", "0", "-1", "2", "nan", "1e-300", "x"])
    groups = [   # a group, then a command of it: each command word about as often
        ["train --quiet --epochs 1 -o m.ckpt", "train --quiet -o m.ckpt --limit %d" % rng.choice([0, 1, 16, 64]),
         "train --quiet --model %s -o m.ckpt" % rng.choice(["tiny", "t2", "nope"]),
         "train --quiet --threads %s -o m.ckpt" % rng.choice(["1", "3", "0", "-2", "x"]), "train --epochs",
         "train -o", "train --help"],
        ["eval --quiet --ckpt %s" % ck, "eval --quiet --ckpt %s --module %s --json" % (ck, mods), "eval",
         "eval --ckpt 'm.ckpt"],
        ["modularize --quiet --ckpt %s --threshold %s" % (ck, thr), "modularize --quiet --ckpt %s --sweep" % ck],
        ["report --ckpt %s" % ck, "report --ckpt %s --json --threshold %s" % (ck, thr),
         "report --ckpt %s --svg r.svg" % ck, "report --svg"],
        ["reuse --quiet --ckpt %s" % ck],
        ["emit --ckpt %s --module %s -o e.o" % (ck, mods), "emit --ckpt %s --module %s -o e.o --json" % (ck, mods),
         "emit --ckpt %s --module %s" % (ck, mods), "emit"],
        ["dump ast", "dump ir", "dump llvm --model tiny", "dump ir --model nope", "dump", "dump x", "dump --help"],
        ["check", "check --json", "check --model t2", "check --bogus", "check " + "a " * rng.randint(120, 140)],
        ["run --quiet --epochs 1", "run --quiet --seed 3 --limit 32", "--help", "--version"]]
    cmd = rng.choice(rng.choice(groups + groups[1:6]))   # the commands on a checkpoint twice as often
    return cmd


def top_items(texts):
    """The programs' top-level items (a line at column 0 up to where its braces close), as text."""
    items = []
    for t in texts:
        cur, depth = [], 0
        for line in t.split("\n"):
            if not cur and (not line or line[0] in " \t#}"):
                continue
            cur.append(line)
            depth += line.split("#")[0].count("{") - line.split("#")[0].count("}")
            if depth <= 0:
                items.append("\n".join(cur))
                cur, depth = [], 0
    return items


def repl_session(rng, texts, items):
    """A REPL session's input: whole items of programs, runs of their lines cut anywhere, commands,
    ':' commands and mutated lines, mixed."""
    out = []
    for _ in range(rng.randint(1, 14)):
        x = rng.random()
        if x < 0.25:
            out.append(rng.choice(items))
        elif x < 0.35:
            lines = rng.choice(texts).split("\n")
            a = rng.randrange(len(lines))
            out += lines[a:a + rng.choice([1, 2, 3, len(lines)])]
        elif x < 0.75:
            out.append(repl_command(rng))
        elif x < 0.83:
            out.append(rng.choice([":show", ":reset", ":help", ":quit", ":q", ":bogus", ":", "quit", "show",
                                   "reset", "help", "  :show  ", "#", "", "\t", "}", "{", "model", "model {"]))
        else:
            src = rng.choice(out) if out and rng.random() < 0.5 else rng.choice(rng.choice(texts).split("\n"))
            out.append(mutate_text(rng, src, texts).decode("utf-8", "surrogateescape"))
    if rng.random() < 0.5:   # a checkpoint for the commands after it to work on
        out.insert(rng.randrange(min(1, len(out)) + 1), "train --quiet --epochs 1 -o m.ckpt")
    # A mutated number can ask for a legitimately long run: `run --epochs 65536` of the tiny set took
    # 62-83 s (a checkpoint written and synced after every epoch), over the session's timeout on a
    # loaded machine, where a timeout stands for a hang. Such counts are cut to 100 (the same code
    # runs them); the rng draws no differently, so a seed's sessions are otherwise the same.
    out = [re.sub(r"(--epochs\s+)(\d{4,})", r"\g<1>100", line) for line in out]
    text = "\n".join(out)
    if rng.random() < 0.8:
        text += "\n"   # the last line without its newline, some of the time
    return text.encode("utf-8", "surrogateescape")


def fuzz_repl(r, rng):
    r.reached = [0, 0]
    r.env["HOME"] = os.path.join(r.cwd, "home")   # where ~/ goes, and the history file
    os.makedirs(r.env["HOME"], exist_ok=True)
    with open(os.path.join(r.cwd, "tiny.mwt"), "w") as f:
        f.write(TINY)
    t2 = TINY.replace("tiny", "t2").replace("syn", "s2")
    texts = [TINY, TINY, t2] + seeds_mwt(("tests/parse", "tests/errors"))
    items = top_items([TINY, TINY, t2, t2]) + top_items(texts)
    while r.more():
        data = repl_session(rng, texts, items)
        for n in ("m.ckpt", "e.o", "e.h", "r.svg"):   # each session starts from the same files
            if os.path.exists(os.path.join(r.cwd, n)):
                os.remove(os.path.join(r.cwd, n))
        args = ["repl", "tiny.mwt"] if rng.random() < 0.5 else ["repl"]
        rc, out = r.run(args, {"in.txt": data, "tiny.mwt": TINY.encode()}, timeout=120, stdin=data)
        for k, needle in enumerate(("trained ", "e.h")):   # how deep the sessions reach (text or --json)
            r.reached[k] += needle in out


CLI_VALUES = {   # per option, valid values first
    "--epochs": ["1", "2", "0", "-1", "100001", "1e3", "x", "", "99999999999999999999", " 1"],
    "--limit": ["16", "1", "64", "1000000", "0", "-5", "x", "9223372036854775808"],
    "--threads": ["1", "2", "3", "1024", "0", "1025", "-1", "two"],
    "--seed": ["0", "7", "18446744073709551616", "-1", "s"],
    "-o": ["out.ckpt", "m2.ckpt", "e.o", ".", "nodir/x.ckpt", "", "tiny.mwt.ckpt"],
    "--ckpt": ["m.ckpt", "m.ckpt", "none.ckpt", "tiny.mwt", ".", "", "e.o"],
    "--module": ["0", "1,2", "2,0", "0,1,2", "3", "-1", "0,,1", "", "a", "1,1"],
    "--threshold": ["0.9", "0.5", "1", "0", "1.5", "-0.1", "nan", "inf", "x", "0.9x"],
    "--svg": ["r.svg", "nodir/r.svg", ".", ""],
    "--model": ["tiny", "nope", ""],
    "--resume": ["m.ckpt", "none.ckpt", "tiny.mwt", ""],
    "--cpu": ["native", "x86-64", "x86-64-v4", "znver4", "bogus", ""],
}
CLI_FLAGS = ["--quiet", "--json", "--sweep", "--help", "--version", "--", "-", "--bogus", "-x"]


def cli_args(rng):
    """A random command line (without the program): a command (or none: the main job), a file, then
    options in any order, some of them repeated, unknown, or missing their value."""
    cmd = rng.choice(["check", "train", "eval", "modularize", "report", "reuse", "emit", "dump", None, None,
                      "repl", "bogus", "--help", "--version"])
    args = [cmd] if cmd else []
    if cmd == "dump":
        args.append(rng.choice(["ast", "ir", "llvm", "x", "tiny.mwt"]))
    if rng.random() < 0.9:
        args.append(rng.choice(["tiny.mwt"] * 6 + ["tiny", "none.mwt", ".", "", "m.ckpt", "-"]))
    for _ in range(rng.randint(0, 5)):
        if rng.random() < 0.75:
            opt = rng.choice(list(CLI_VALUES))
            vals = CLI_VALUES[opt]
            args.append(opt)
            if rng.random() < 0.95:   # else its value missing (the next option taken, or nothing)
                args.append(vals[0] if rng.random() < 0.4 else rng.choice(vals))
        else:
            args.append(rng.choice(CLI_FLAGS))
    if rng.random() < 0.3:
        rng.shuffle(args)
    return args


def fuzz_cli(r, rng):
    with open(os.path.join(r.cwd, "tiny.mwt"), "w") as f:
        f.write(TINY)
    if r.run(["tiny.mwt", "--quiet", "-o", "m.ckpt"], {})[0] != 0:
        sys.exit("fuzz: the tiny model does not run")
    with open(os.path.join(r.cwd, "m.ckpt"), "rb") as f:
        good = f.read()
    while r.more():
        args = cli_args(rng)
        # args.txt: the arguments quoted (cmd.txt joins them with blanks, where an empty one vanishes)
        r.run(args, {"args.txt": " ".join(repr(a) for a in args).encode(), "tiny.mwt": TINY.encode()}, timeout=60)
        with open(os.path.join(r.cwd, "m.ckpt"), "wb") as f:   # whatever the run wrote over it
            f.write(good)


class Arch:
    """A random model's layers, written as text while its shape [c, h, w] is followed, so that
    every layer fits what comes before it (LANGUAGE.md's shape rules)."""

    def __init__(self, rng, c, h, w):
        self.rng, self.c, self.h, self.w = rng, c, h, w
        self.masks = 0

    def conv_args(self, out, k, stride, pad):
        """conv's arguments, the defaults left out at random; the shape after it."""
        rng, args = self.rng, [str(out)]
        if k != 3 or rng.random() < 0.3:
            args.append("k = %d" % k)
        if stride != 1 or rng.random() < 0.2:
            args.append("stride = %d" % stride)
        if pad != k // 2 or rng.random() < 0.2:
            args.append("pad = %d" % pad)
        if rng.random() < 0.2:
            args.append("bias = false")
        self.c, self.h, self.w = out, (self.h + 2 * pad - k) // stride + 1, (self.w + 2 * pad - k) // stride + 1
        return "conv(%s)" % ", ".join(args)

    def conv(self, same=False):
        """A conv whose output plane is at least 1x1 (same: the input's shape, for a residual
        body without a shortcut)."""
        rng = self.rng
        if same:
            k = rng.choice([1, 3, 3, 5])
            return self.conv_args(self.c, k, 1, k // 2)
        out = rng.choice([4, 6, 8, 12, 16, 17, 24, 32, 33])
        k = rng.choice([1, 2, 3, 3, 3, 4, 5, 7])
        stride = rng.choice([1, 1, 1, 1, 1, 1, 1, 2, 2, 3])
        # the padding: mostly "same", else any from none to the whole kernel (outputs that see
        # only padding at the edges are valid, and take every kernel's overhang paths)
        pad = k // 2 if rng.random() < 0.7 else rng.randint(0, k)
        while k > 1 and (self.h + 2 * pad < k or self.w + 2 * pad < k):
            k, pad = k - 1, min(pad, k - 1)
        return self.conv_args(out, k, stride, pad)

    def pool(self):
        rng, m = self.rng, min(self.h, self.w)
        if m < 2:
            return ""
        k = rng.choice([2, 2, 3]) if m >= 3 else 2
        stride = rng.choice([k, k, 1, 2])
        self.h, self.w = (self.h - k) // stride + 1, (self.w - k) // stride + 1
        name = "maxpool" if rng.random() < 0.7 else "avgpool"
        return "%s(%d)" % (name, k) if stride == k else "%s(%d, stride = %d)" % (name, k, stride)

    def unit(self, modular):
        """A conv with what may follow it: batchnorm, a mask (outside modular), relu, a pool,
        dropout."""
        rng, t = self.rng, [self.conv()]
        if rng.random() < 0.6:
            t.append("batchnorm")
        if not modular and rng.random() < 0.25:
            t.append("mask")
            self.masks += 1
        self.masks += modular
        if rng.random() < 0.8:
            t.append("relu")
        if rng.random() < 0.35:
            t.append(self.pool())
        if rng.random() < 0.1:
            t.append("dropout(0.%d)" % rng.randint(1, 5))
        return " ".join(x for x in t if x)

    def residual(self, modular):
        """A residual block: a body that keeps the shape, or (with or without a shortcut given)
        one whose first conv changes the width or the stride."""
        rng = self.rng
        c0, h0, w0 = self.c, self.h, self.w
        if rng.random() < 0.5:   # the shape kept: the input itself is added
            body = [self.conv(same=True), "batchnorm" if rng.random() < 0.5 else "", "relu",
                    self.conv(same=True)]
            self.masks += 2 * modular
            return "residual { %s } relu" % " ".join(x for x in body if x)
        out, stride = rng.choice([8, 12, 16, 24]), rng.choice([1, 2]) if min(h0, w0) >= 2 else 1
        body = [self.conv_args(out, 3, stride, 1), "batchnorm", "relu", self.conv_args(out, 3, 1, 1), "batchnorm"]
        self.masks += 2 * modular
        head = "residual"
        if rng.random() < 0.4:   # a shortcut of its own: a 1x1 conv with the body's stride
            head = "residual(shortcut = { conv(%d, k = 1, stride = %d) })" % (out, stride)
        self.masks += modular   # the automatic shortcut's conv, or the given one, is in modular too
        return "%s { %s } relu" % (head, " ".join(body))

    def layers(self, modular_block):
        rng, t = self.rng, [self.unit(False)]
        if modular_block:
            inner = [self.unit(True)]
            for _ in range(rng.randint(0, 2)):
                inner.append(self.residual(True) if rng.random() < 0.3 else self.unit(True))
            t.append("modular { %s }" % " ".join(inner))
        for _ in range(rng.randint(0, 2)):
            t.append(self.residual(False) if rng.random() < 0.3 else self.unit(False))
        if rng.random() < 0.4:
            t.append("gap")
        else:
            t.append("flatten")
            if rng.random() < 0.5:
                t.append("linear(%d) relu" % rng.choice([8, 16, 20]))
        return t


def random_program(rng):
    """A random program that should check: its text, and whether its model has masks."""
    c, h = rng.choice([1, 1, 2, 3]), rng.randint(5, 20)
    w = h if rng.random() < 0.7 else rng.randint(5, 20)
    classes = rng.randint(2, 5) if rng.random() < 0.8 else rng.randint(6, 10)
    a = Arch(rng, c, h, w)
    body = a.layers(rng.random() < 0.85)
    masks = a.masks > 0
    loss = "cross_entropy"
    if masks:   # the modularity terms as the settings write them, or one alone, or unweighted
        loss = rng.choice(["cross_entropy + %g * cohesion + %g * coupling" % (rng.choice([0.5, 1]),
                                                                              rng.choice([1.5, 3])),
                           "cross_entropy + cohesion + coupling", "cross_entropy + 0.5 * cohesion",
                           "cross_entropy + 2 * coupling", "cross_entropy"])
    extra = ""
    if rng.random() < 0.3:
        extra += "  normalize = (0.5, 0.25)"
    if rng.random() < 0.3:
        extra += "  augment = [%s]" % rng.choice(["hflip", "random_crop(pad = 2)", "random_crop(pad = 1), hflip"])
    if rng.random() < 0.2:
        extra += "  names = [%s]" % ", ".join('"c%d"' % k for k in range(classes))
    # the plan: batches that do not divide the images (a short last batch), every schedule, and
    # the optimizer's other options
    opt = "sgd(lr = 0.02, momentum = 0.9%s%s)" % (rng.choice(["", "", ", nesterov = true"]),
                                                  rng.choice(["", "", ", weight_decay = 0.0005"]))
    n = rng.choice([48, 64, 50, 61])
    reuse = rng.sample(range(classes), rng.randint(2, classes)) if masks else []
    # a reuse fine-tunes on its classes' images alone, with the train statement's batch: at most
    # about half of them (the synthetic classes are only about balanced)
    batches = [b for b in (8, 16, 16, 5, 12, 24) if not reuse or b <= n * len(reuse) // classes // 2] or [4]
    plan = "epochs = %d  batch = %d  optimizer = %s  loss = %s  seed = %d%s" % (
        rng.choice([1, 1, 2]), rng.choice(batches), opt, loss, rng.randint(1, 99),
        rng.choice(["", "", "  schedule = cosine", "  schedule = constant", "  schedule = step(every = 1, gamma = 0.5)"]))
    src = ("dataset syn = synthetic(n = %d, test = 32, seed = %d) { classes = %d  shape = [%d, %d, %d]%s }\n"
           "model arch : [%d, %d, %d] -> [%d] {\n    %s\n    linear(%d)\n}\n"
           "train arch on syn { %s }\n") % (n, rng.randint(1, 99), classes, c, h, w, extra,
                                             c, h, w, classes, "\n    ".join(body), classes, plan)
    if masks:
        src += "modularize arch { threshold = %g  generators = %s }\n" % (rng.choice([0.5, 0.7, 0.9]),
                                                                         rng.choice(["keep", "drop"]))
        src += "reuse arch as pick { classes = [%s]  epochs = 1%s }\n" % (
            ", ".join(str(k) for k in reuse), rng.choice(["", "  generators = keep"]))
    return src, masks, classes, reuse


def run_json(r, args, keep, want):
    """Runs mwtc args, which must exit 0 and print a JSON object for which want(obj) holds: the
    object, or None (a failure, kept, unless mwtc's own)."""
    rc, out = r.run(args, keep, (0,), 120)
    if rc != 0:
        return None
    try:
        obj = json.loads(out)
        if want(obj):
            return obj
        why = "not what it should say"
    except (ValueError, KeyError, TypeError) as e:
        why = repr(e)
    r.fail("mwtc %s: its JSON: %s" % (" ".join(args), why), keep, out)
    return None


def same_files(r, a, b):
    with open(os.path.join(r.cwd, a), "rb") as f, open(os.path.join(r.cwd, b), "rb") as g:
        return f.read() == g.read()


def fuzz_arch(r, rng):
    cc = shutil.which("cc") or shutil.which("gcc") or shutil.which("clang")
    main_c = os.path.join(ROOT, "tests", "aot", "aot_main.c")
    r.rejected = r.single = 0
    while r.more():
        src, masks, classes, reuse = random_program(rng)
        keep = {"f.mwt": src.encode()}
        with open(os.path.join(r.cwd, "f.mwt"), "w") as f:
            f.write(src)
        rc, _ = r.run(["check", "f.mwt"], keep)
        if rc != 0:   # the generator's shapes gone wrong: said so, not a failure (rc 1 or 2)
            r.rejected += 1
            continue
        for n in ("a.ckpt", "b.ckpt"):
            if os.path.exists(os.path.join(r.cwd, n)):
                os.remove(os.path.join(r.cwd, n))
        threads = rng.choice([2, 3, 17, 24])
        if r.run(["train", "f.mwt", "-o", "a.ckpt", "--threads", "1", "--quiet"], keep, (0,), 120)[0] != 0 or \
                r.run(["train", "f.mwt", "-o", "b.ckpt", "--threads", str(threads), "--quiet"], keep, (0,), 120)[0] != 0:
            continue
        if not same_files(r, "a.ckpt", "b.ckpt"):
            r.fail("train on 1 and on %d threads: the checkpoints differ" % threads, keep, "")
            continue
        picked = sorted(rng.sample(range(classes), rng.randint(1, min(3, classes))))
        module, ckpt = ",".join(str(k) for k in picked), "a.ckpt"
        if masks:   # modularize on one thread and on many: the same checkpoint
            shutil.copyfile(os.path.join(r.cwd, "a.ckpt"), os.path.join(r.cwd, "b.ckpt"))
            if r.run(["modularize", "f.mwt", "--ckpt", "a.ckpt", "--quiet", "--threads", "1"], keep, (0,), 120)[0] != 0 \
                    or r.run(["modularize", "f.mwt", "--ckpt", "b.ckpt", "--quiet", "--threads", str(threads)], keep,
                             (0,), 120)[0] != 0:
                continue
            if not same_files(r, "a.ckpt", "b.ckpt"):
                r.fail("modularize on 1 and on %d threads: the checkpoints differ" % threads, keep, "")
                continue
            if not run_json(r, ["report", "f.mwt", "--ckpt", "a.ckpt", "--json"], keep,
                            lambda o: len(o["modules"]) == classes and 0 <= o["krr"] <= 1):
                continue
            if r.run(["eval", "f.mwt", "--ckpt", "a.ckpt", "--module", module, "--json"], keep, (0,), 120)[0] != 0:
                continue
            if rng.random() < 0.5:   # the module of some of the classes reused, with its fine-tuned head
                ru = run_json(r, ["reuse", "f.mwt", "--ckpt", "a.ckpt", "--json", "--quiet", "--threads", "1"], keep,
                              lambda o: isinstance(o["checkpoint"], str))
                if not ru:
                    continue
                ckpt = ru["checkpoint"]
                shutil.copyfile(os.path.join(r.cwd, ckpt), os.path.join(r.cwd, "r1.ckpt"))
                if r.run(["reuse", "f.mwt", "--ckpt", "a.ckpt", "--quiet", "--threads", str(threads)], keep, (0,),
                         120)[0] != 0:
                    continue
                if not same_files(r, ckpt, "r1.ckpt"):
                    r.fail("reuse on 1 and on %d threads: the checkpoints differ" % threads, keep, "")
                    continue
                module = ",".join(str(k) for k in rng.sample(reuse, rng.randint(1, len(reuse))))
                if r.run(["eval", "f.mwt", "--ckpt", ckpt, "--module", module, "--json"], keep, (0,), 120)[0] != 0:
                    continue
        em = run_json(r, ["emit", "f.mwt", "--ckpt", ckpt, "--module", module, "-o", "m.o", "--json"], keep,
                      lambda o: o["input_size"] > 0 and o["bulk"] in (1, 8))
        if not em or not cc:
            continue
        size = em["input_size"]
        r.single += em["bulk"] == 1   # emit found the bulk graph's bits not batch 1's: allowed, but counted
        with open(os.path.join(r.cwd, "img.bin"), "wb") as f:
            f.write(struct.pack("<%df" % (size * 40), *[rng.random() for _ in range(size * 40)]))
        p = subprocess.run([cc, "-std=c17", "-O1", "-pthread", "-I.", '-DMOD_H="m.h"', "-DRUN=m_run",
                            "-DIN=M_INPUT_SIZE", "-DOUT=M_OUTPUT_SIZE", main_c, "m.o", "-lm", "-o", "m.exe"],
                           cwd=r.cwd, capture_output=True)
        if p.returncode == 0:
            p = subprocess.run(["./m.exe", "img.bin", "scores.bin", "40"], cwd=r.cwd, capture_output=True, timeout=120)
        if p.returncode != 0:
            r.fail("the emitted module of %s: rc %d" % (module, p.returncode), keep,
                   p.stdout.decode("utf-8", "replace") + p.stderr.decode("utf-8", "replace"))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mwtc", default=os.path.join(ROOT, "build-asan", "mwtc"))
    ap.add_argument("--mode", choices=["mwt", "ckpt", "idx", "arch", "repl", "cli"], default="mwt")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--runs", type=int, help="stop after N runs of mwtc instead of after --seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="/tmp/mwtc-fuzz")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cwd = tempfile.mkdtemp(prefix="mwtc-fuzz-")
    r = Runner(os.path.abspath(a.mwtc), os.path.join(a.out, a.mode), cwd)
    r.limit, r.deadline = a.runs, time.time() + a.seconds
    {"mwt": fuzz_mwt, "ckpt": fuzz_ckpt, "idx": fuzz_idx, "arch": fuzz_arch, "repl": fuzz_repl, "cli": fuzz_cli}[a.mode](r, rng)
    shutil.rmtree(cwd, ignore_errors=True)
    print("fuzz %s: %d runs, %d failed; exit codes %s%s" % (a.mode, r.runs, r.fails, sorted(r.rcs.items(), key=str),
                                                            "; %d programs did not check, %d objects without a "
                                                            "bulk graph" % (r.rejected, r.single)
                                                            if a.mode == "arch" else
                                                            "; %d sessions trained, %d emitted" % tuple(r.reached)
                                                            if a.mode == "repl" else ""))
    return 1 if r.fails else 0


if __name__ == "__main__":
    sys.exit(main())
