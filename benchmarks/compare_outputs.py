"""Compare two evalkit output folders: identical apart from timings and config dumps?

For refactors that must not change behaviour (issue 28): run the same evaluation with the old and
the new build (same dataset, models, `tracking=none`, one warm vector store), then

    python benchmarks/compare_outputs.py <old output folder> <new output folder>

`.npz` files are compared by array, JSON by key, text by line. Numbers are masked only where they
are timings: lines that name latency / seconds / ms, time stamps, the latency table, the latency
gate (its outcome follows the measured timings); logger names in cli.log are masked (module
renames). Config dumps (.hydra/, config.yaml) and latency.json are not compared. Prints each
difference and a RESULT line.
"""

import difflib
import io
import json
import re
import sys
from pathlib import Path

import numpy as np

TIMING_KEY = re.compile(
    r"latency|seconds|_s$|_ms$|p95|p50|p99|qps|throughput|elapsed|duration|time|probe|age", re.I
)
NUM = re.compile(r"[-+]?\d[\d,]*\.?\d*(?:e[-+]?\d+)?")
TIMING_LINE = re.compile(
    r"latency|\bms\b|\d\s?s\b|seconds|/s\b|p95|per second|elapsed|took|\d\d:\d\d:\d\d|\d{4}-\d\d-\d\d",
    re.I,
)

LOGGER = re.compile(r"\]\[evalkit[\w.]*\]\[")


def mask_text(t):
    out, table = [], False
    for line in t.replace("<tr>", "\n<tr>").splitlines():
        # module renames change logger names
        line = LOGGER.sub("][evalkit.<logger>][", line)
        table = line.lstrip().startswith(("|", "<tr>", "<table>")) and (
            table or bool(re.search(r"p95|latency", line, re.I))
        )
        if "latency_p95" in line:
            line = "<latency gate row: measured timings>"
        out.append(NUM.sub("#", line) if table or TIMING_LINE.search(line) else line)
    return out


def is_latency_gate(x):
    return isinstance(x, dict) and any(
        isinstance(v, str) and "latency_p95" in v for v in x.values()
    )


def cmp_json(a, b, path=""):
    out = []
    if isinstance(a, dict) and isinstance(b, dict):
        if any(isinstance(v, str) and "latency_p95" in v for v in (*a.values(), *b.values())):
            return out  # the latency gate: decided by measured timings
        for k in sorted(set(a) | set(b)):
            if TIMING_KEY.search(k):
                continue
            if k not in a or k not in b:
                out.append(f"{path}.{k}: only in {'new' if k in b else 'old'}")
            else:
                out += cmp_json(a[k], b[k], f"{path}.{k}")
    elif (
        isinstance(a, list)
        and isinstance(b, list)
        and len(a := [x for x in a if not is_latency_gate(x)])
        == len(b := [x for x in b if not is_latency_gate(x)])
    ):
        for i, (x, y) in enumerate(zip(a, b)):
            out += cmp_json(x, y, f"{path}[{i}]")
    elif isinstance(a, str) and isinstance(b, str) and TIMING_LINE.search(a):
        if mask_text(a) != mask_text(b):
            out.append(f"{path}: {a!r} != {b!r}")
    elif a != b and not (a != a and b != b):
        out.append(f"{path}: {a!r} != {b!r}")
    return out


def main(old, new):
    old, new = Path(old), Path(new)
    fo = {p.relative_to(old) for p in old.rglob("*") if p.is_file()}
    fn = {p.relative_to(new) for p in new.rglob("*") if p.is_file()}
    bad = 0
    for f in sorted(fo ^ fn):
        print(f"ONLY IN {'new' if f in fn else 'old'}: {f}")
        bad += 1
    for f in sorted(fo & fn):
        a, b = (old / f).read_bytes(), (new / f).read_bytes()
        if a == b:
            continue
        s = str(f)
        if s.startswith(".hydra") or s.endswith("config.yaml") or s.endswith("latency.json"):
            print(f"(config/timing file differs, ignored: {f})")
            continue
        if s.endswith(".npz"):
            za, zb = np.load(io.BytesIO(a)), np.load(io.BytesIO(b))
            if set(za) == set(zb) and all(np.array_equal(za[k], zb[k], equal_nan=True) for k in za):
                continue
            print(f"DIFF arrays: {f}")
            bad += 1
            continue
        if s.endswith(".json"):
            d = cmp_json(json.loads(a), json.loads(b))
            if d:
                print(f"DIFF {f}:")
                [print("   ", x) for x in d[:20]]
                bad += 1
            continue
        try:
            ta, tb = a.decode(), b.decode()
        except UnicodeDecodeError:
            print(f"DIFF binary: {f}")
            bad += 1
            continue
        ma, mb = mask_text(ta), mask_text(tb)
        if ma != mb:
            print(f"DIFF {f}:")
            for line in list(difflib.unified_diff(ma, mb, lineterm="", n=0))[:30]:
                print("   ", line[:220])
            bad += 1
    print("RESULT:", "identical apart from timings/config" if not bad else f"{bad} files differ")


if __name__ == "__main__":
    main(*sys.argv[1:3])
