#!/usr/bin/python3
"""scripts/fuzz.py: mutation fuzzing of mwtc's inputs, against the contract that no input, however
malformed, ends mwtc by a signal (LANGUAGE.md section 2) nor trips the sanitizers.

    python3 scripts/fuzz.py [--mwtc build-asan/mwtc] [--mode mwt|ckpt|idx] [--seconds S | --runs N]
                            [--seed N] [--out DIR]

mwt:  mutates the .mwt files of tests/ and examples/ (bytes, tokens, splices of two files) and runs
      `mwtc check` and, on every second one, `mwtc dump ir`: the whole binary and the lowering and
      passes behind the front end (unit/test_fuzz mangles programs through the front end only).
ckpt: trains a tiny synthetic model once, then mutates its checkpoint and runs `mwtc eval` and
      `mwtc report` on it.
idx:  writes a small IDX data set (some files gzipped), mutates one file at a time and runs
      `mwtc eval` on a model reading it.
A run fails when mwtc dies by a signal, exits other than 0, 1 or 2, a sanitizer reports, or it
runs past 20 s; each failing input is kept in --out (default /tmp/mwtc-fuzz) with its command.
Exits 1 when any run failed. With --runs the inputs are the same for a given --seed (ctest runs it
so: tests/CMakeLists.txt); with --seconds, how many of them run depends on the machine.
"""
import argparse
import gzip
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
          "synthetic", "idx", "cifar10", "cohesion", "coupling", "cross_entropy", "threshold", "epochs"]


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

    def run(self, args, keep):
        """Runs mwtc with args in cwd; keep: {name: bytes} to save when it fails."""
        self.runs += 1
        try:
            p = subprocess.run([self.mwtc] + args, cwd=self.cwd, env=self.env, stdin=subprocess.DEVNULL,
                               capture_output=True, timeout=20)
            rc, err = p.returncode, p.stderr.decode("utf-8", "replace")
        except subprocess.TimeoutExpired:
            rc, err = "timeout", ""
        self.rcs[rc] = self.rcs.get(rc, 0) + 1
        bad = rc not in (0, 1, 2) or "Sanitizer" in err or "runtime error:" in err
        if bad:
            self.fails += 1
            d = os.path.join(self.out, "fail%04d" % self.fails)
            os.makedirs(d, exist_ok=True)
            for name, data in keep.items():
                with open(os.path.join(d, name), "wb") as f:
                    f.write(data)
            with open(os.path.join(d, "cmd.txt"), "w") as f:
                f.write("mwtc %s\nrc %s\n%s" % (" ".join(args), rc, err[-4000:]))
            print("FAIL rc=%s: mwtc %s (kept in %s)" % (rc, " ".join(args), d), flush=True)
        return rc


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
    if r.run(["tiny.mwt", "--quiet"], {}) != 0:
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
    while r.more():
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


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--mwtc", default=os.path.join(ROOT, "build-asan", "mwtc"))
    ap.add_argument("--mode", choices=["mwt", "ckpt", "idx"], default="mwt")
    ap.add_argument("--seconds", type=float, default=60)
    ap.add_argument("--runs", type=int, help="stop after N runs of mwtc instead of after --seconds")
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--out", default="/tmp/mwtc-fuzz")
    a = ap.parse_args()
    rng = random.Random(a.seed)
    cwd = tempfile.mkdtemp(prefix="mwtc-fuzz-")
    r = Runner(os.path.abspath(a.mwtc), os.path.join(a.out, a.mode), cwd)
    r.limit, r.deadline = a.runs, time.time() + a.seconds
    {"mwt": fuzz_mwt, "ckpt": fuzz_ckpt, "idx": fuzz_idx}[a.mode](r, rng)
    shutil.rmtree(cwd, ignore_errors=True)
    print("fuzz %s: %d runs, %d failed; exit codes %s" % (a.mode, r.runs, r.fails, sorted(r.rcs.items(), key=str)))
    return 1 if r.fails else 0


if __name__ == "__main__":
    sys.exit(main())
