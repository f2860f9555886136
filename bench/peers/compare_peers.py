#!/usr/bin/env python3
"""Compare `fmg sample --backend cpu` with peer ODE tools on one problem.

Problem (as in scipy_flow.py): the built-in example, atoms (2.4, 0),
(-1.4, 2), (-1.4, -2) with weights 0.45, 0.30, 0.25, linear schedule,
Dormand-Prince at rtol 1e-8 and atol 1e-10, from t = 0 to t = 1 - eps with
eps = 1e-3. For each N, the same N base samples (numpy default_rng(seed)
.standard_normal((N, 2)), written to x0.npy) go to every tool:

- fmg: `fmg sample --starts x0.npy`, each sample with its own step.
- odeint: Boost.Odeint controlled runge_kutta_dopri5 per sample in an OpenMP
  loop (bench/peers/odeint_flow.cpp, built as fmg_odeint_flow).
- scipy: solve_ivp RK45 on all samples as one system (scipy_flow.py).
- torchdiffeq: dopri5 on all samples as one batch tensor.
- diffrax: Dopri5 with PIDController, vmap over samples, jit; compilation
  is timed apart.

Every tool's endpoints of the first min(N, --accuracy-samples) samples are
compared with reference endpoints from fmg_flow_reference, which runs fmg's
per-sample Dormand-Prince at rtol 1e-13 and atol 1e-14 in double. That
reference is itself checked against SciPy's DOP853 at the same tolerances
on a few samples. Errors are Euclidean distances.

Rates count integration time only. fmg's comes from its summary and the
peers' from around their solve call, so process start-up and file input
and output are left out. The fastest of --repeat runs counts. A peer whose run at some N
is predicted, from its rate at the previous N, to take longer than
--time-limit seconds is skipped at that N and the later ones, and the table
says so.

Prints a Markdown table and writes the JSON record to --output.

    python3 bench/peers/compare_peers.py
    python3 bench/peers/compare_peers.py --n 600,2000 --peers odeint,diffrax

Needs numpy and scipy; torch with torchdiffeq, and jax with diffrax, for
those peers (a peer whose package is missing is reported and skipped).
"""

import argparse
import datetime
import importlib.util
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scipy_flow import (ATOL, EPS, REFERENCE_ATOL, REFERENCE_RTOL,  # noqa: E402
                        RTOL, run_fmg, run_reference)

REPO_ROOT = Path(__file__).resolve().parents[2]
PEERS_DIR = Path(__file__).resolve().parent
ALL_PEERS = ["odeint", "scipy", "torchdiffeq", "diffrax"]
PYTHON_MODULES = {"scipy": ["scipy"], "torchdiffeq": ["torch", "torchdiffeq"],
                  "diffrax": ["jax", "diffrax"]}


def newest_build_file(relative):
    """Return the newest build*/<relative> of the repository, or None."""
    candidates = sorted(REPO_ROOT.glob(f"build*/{relative}"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    return candidates[0] if candidates else None


def run_json_command(command, timeout):
    """Run a command that prints one JSON line and return that line
    parsed."""
    completed = subprocess.run(command, capture_output=True, text=True,
                               timeout=timeout)
    if completed.returncode != 0:
        raise RuntimeError(f"{shlex.join(command)} failed with exit status "
                           f"{completed.returncode}: "
                           f"{completed.stderr.strip()[-2000:]}")
    return json.loads(completed.stdout.strip().splitlines()[-1])


def endpoint_errors(ends, reference):
    """Return the max and median Euclidean distance over the reference's
    rows."""
    distances = np.linalg.norm(ends[:len(reference)] - reference, axis=1)
    return float(np.max(distances)), float(np.median(distances))


def cpu_model():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


class Runner:
    """Runs fmg and the peers on saved starting points in a work folder."""

    def __init__(self, args, workdir):
        self.args = args
        self.workdir = workdir
        self.commands = {}

    def fmg(self, starts_path, repeat):
        best, walls = None, []
        for _ in range(repeat):
            ends, process_wall, summary = run_fmg(
                self.args.fmg, starts_path, self.workdir, self.args.threads)
            run = summary["runs"][0]
            walls.append(run["wall_seconds"])
            if best is None or run["wall_seconds"] < best[1]["wall_seconds"]:
                best = (ends, run, process_wall)
        ends, run, process_wall = best
        self.commands["fmg"] = (
            f"{self.args.fmg} sample --schedule linear --method dopri5 "
            f"--rtol {RTOL!r} --atol {ATOL!r} --eps {EPS!r} --backend cpu "
            "--starts x0.npy --endpoints-out end.npy --summary summary.json "
            "--quiet" + (f" --threads {self.args.threads}"
                         if self.args.threads else ""))
        return ends, {
            "tool": f"fmg sample --backend cpu ({run.get('device', '')})",
            "wall_seconds": run["wall_seconds"],
            "wall_seconds_all": walls,
            "samples_per_second": run["samples_per_second"],
            "process_wall_seconds": process_wall,
            "device": run.get("device"),
            "velocity_evaluations": run.get("steps", {}).get(
                "total_evaluations"),
        }

    def odeint(self, starts_path, repeat, timeout):
        out_path = self.workdir / "end_odeint.npy"
        command = [str(self.args.odeint), "--starts", str(starts_path),
                   "--out", str(out_path), "--rtol", repr(RTOL),
                   "--atol", repr(ATOL), "--eps", repr(EPS)]
        if self.args.threads:
            command += ["--threads", str(self.args.threads)]
        self.commands["odeint"] = shlex.join(command)
        best, walls = None, []
        for _ in range(repeat):
            record = run_json_command(command, timeout)
            walls.append(record["wall_seconds"])
            if best is None or record["wall_seconds"] < best["wall_seconds"]:
                best = record
                ends = np.load(out_path)
        return ends, {**best, "wall_seconds_all": walls}

    def python_peer(self, tool, starts_path, repeat, timeout):
        out_path = self.workdir / f"end_{tool}.npy"
        command = [sys.executable, str(PEERS_DIR / "python_peers.py"), tool,
                   "--starts", str(starts_path), "--out", str(out_path),
                   "--repeat", str(repeat)]
        if tool == "torchdiffeq":
            command += ["--threads", str(self.args.torch_threads)]
        self.commands[tool] = shlex.join(command)
        record = run_json_command(command, timeout)
        return np.load(out_path), record


def missing_modules(tool):
    return [name for name in PYTHON_MODULES.get(tool, [])
            if importlib.util.find_spec(name) is None]


def check_reference(args, x0, reference):
    """Return the distance between fmg's reference and SciPy's DOP853 at
    the same tolerances on the first --reference-check samples."""
    count = min(args.reference_check, len(x0))
    if count == 0:
        return None
    started = time.perf_counter()
    dop853 = run_reference(x0[:count], 1.0 - EPS)
    distances = np.linalg.norm(dop853 - reference[:count], axis=1)
    return {"samples": count, "max_distance": float(distances.max()),
            "method": "scipy solve_ivp DOP853 per sample",
            "wall_seconds": time.perf_counter() - started}


def run_size(args, runner, n, rates, skipped, results):
    """Run every tool at sample count n and append the records; return the
    reference check of this N's reference."""
    x0 = np.random.default_rng(args.seed).standard_normal((n, 2))
    starts_path = runner.workdir / "x0.npy"
    np.save(starts_path, x0)
    checked = min(n, args.accuracy_samples)
    subset_path = runner.workdir / "x0_reference.npy"
    reference_path = runner.workdir / "reference.npy"
    np.save(subset_path, x0[:checked])
    reference_record = run_json_command(
        [str(args.reference), "--starts", str(subset_path),
         "--out", str(reference_path), "--eps", repr(EPS)], None)
    if reference_record["failures"]:
        raise RuntimeError(f"the reference failed on "
                           f"{reference_record['failures']} samples")
    reference = np.load(reference_path)
    runner.commands["reference"] = (f"{args.reference} --starts "
                                    "x0_reference.npy --out reference.npy "
                                    f"--eps {EPS!r}")
    check = check_reference(args, x0, reference)
    if check is not None:
        print(f"N = {n}: reference within {check['max_distance']:.2g} of "
              f"DOP853 on {check['samples']} samples", file=sys.stderr)

    for tool in ["fmg"] + args.peers:
        base = {"n": n, "tool_name": tool, "accuracy_samples": checked,
                "reference_seconds": reference_record["wall_seconds"]}
        if tool in skipped:
            results.append({**base, "skipped": skipped[tool]})
            continue
        estimate = n / rates[tool] if tool in rates else None
        if tool != "fmg" and estimate is not None and estimate > args.time_limit:
            skipped[tool] = (f"skipped from N = {n:,}: predicted "
                             f"{estimate:.3g} s at its rate at a smaller N, "
                             f"over the {args.time_limit:g} s limit")
            results.append({**base, "skipped": skipped[tool]})
            continue
        repeat = args.repeat
        if estimate is not None and estimate > 0:
            repeat = max(1, min(repeat, int(args.time_limit // estimate)))
        # Generous: imports and diffrax's compilation come on top.
        timeout = 3 * args.time_limit * repeat + 300
        print(f"N = {n}: {tool} ({repeat} run{'s' if repeat > 1 else ''})",
              file=sys.stderr)
        try:
            if tool == "fmg":
                ends, record = runner.fmg(starts_path, repeat)
            elif tool == "odeint":
                ends, record = runner.odeint(starts_path, repeat, timeout)
            else:
                ends, record = runner.python_peer(tool, starts_path, repeat,
                                                  timeout)
        except subprocess.TimeoutExpired:
            skipped[tool] = f"timed out after {timeout:.0f} s at N = {n:,}"
            results.append({**base, "skipped": skipped[tool]})
            continue
        max_error, median_error = endpoint_errors(ends, reference)
        rates[tool] = record["samples_per_second"]
        results.append({**base, **record, "repeat": repeat,
                        "max_error": max_error,
                        "median_error": median_error})
    return check


def markdown_table(results):
    """Format the results as a Markdown table, one row per (N, tool) with
    rates, the fmg / tool ratio and errors."""
    lines = ["| N | tool | wall time | samples/s | fmg / tool | max error "
             "| median error | notes |",
             "|---|---|---|---|---|---|---|---|"]
    fmg_rates = {r["n"]: r["samples_per_second"] for r in results
                 if r.get("tool_name") == "fmg" and "samples_per_second" in r}
    for r in results:
        if "skipped" in r:
            lines.append(f"| {r['n']:,} | {r['tool_name']} | | | | | | "
                         f"{r['skipped']} |")
            continue
        notes = []
        if r.get("compile_seconds") is not None:
            notes.append(f"compile {r['compile_seconds']:.2f} s")
        if r.get("velocity_calls") is not None:
            notes.append(f"{r['velocity_calls']} batched velocity calls")
        if r.get("threads") is not None:
            plural = "" if r["threads"] == 1 else "s"
            notes.append(f"{r['threads']} thread{plural}")
        if r.get("device"):
            notes.append(r["device"])
        ratio = fmg_rates.get(r["n"], math.nan) / r["samples_per_second"]
        lines.append(
            f"| {r['n']:,} | {r['tool_name']} | {r['wall_seconds']:.3g} s "
            f"| {r['samples_per_second']:,.0f} | {ratio:.3g} "
            f"| {r['max_error']:.2g} | {r['median_error']:.2g} "
            f"| {', '.join(notes)} |")
    return "\n".join(lines)


def parse_args():
    parser = argparse.ArgumentParser(
        description="Compare fmg's CPU backend with Boost.Odeint, SciPy, "
                    "torchdiffeq and diffrax on the built-in example's flow.")
    parser.add_argument("--n", default="600,2000,20000",
                        help="comma-separated sample counts "
                             "(default 600,2000,20000)")
    parser.add_argument("--peers", default=",".join(ALL_PEERS),
                        help="comma-separated peers among "
                             f"{','.join(ALL_PEERS)} (default: all)")
    parser.add_argument("--seed", type=int, default=20260617,
                        help="seed of numpy's default_rng for the base "
                             "samples")
    parser.add_argument("--repeat", type=int, default=3,
                        help="timed runs per tool and N; the fastest counts "
                             "(default 3)")
    parser.add_argument("--time-limit", type=float, default=60.0,
                        help="skip a peer whose run is predicted to take "
                             "longer, in seconds (default 60)")
    parser.add_argument("--accuracy-samples", type=int, default=2000,
                        help="samples compared with the reference "
                             "(default 2000)")
    parser.add_argument("--reference-check", type=int, default=20,
                        help="samples on which the reference is checked "
                             "against SciPy's DOP853 (default 20)")
    parser.add_argument("--threads", type=int, default=None,
                        help="OpenMP threads of fmg and odeint (default: "
                             "their default, all cores)")
    parser.add_argument("--torch-threads", type=int, default=1,
                        help="torch intra-op threads (default 1: on a busy "
                             "2-core machine two threads made each batched "
                             "call about 100 times slower)")
    parser.add_argument("--fmg", type=Path, default=None,
                        help="fmg program (default: the newest "
                             "build*/host/cli/fmg)")
    parser.add_argument("--odeint", type=Path, default=None,
                        help="fmg_odeint_flow program (default: the newest "
                             "build*/bench/flow/fmg_odeint_flow)")
    parser.add_argument("--reference", type=Path, default=None,
                        help="fmg_flow_reference program (default: the "
                             "newest build*/bench/flow/fmg_flow_reference)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for the .npy files (default: a "
                             "temporary folder, removed after)")
    parser.add_argument("--output", type=Path,
                        default=Path("compare_peers.json"),
                        help="JSON record (default compare_peers.json)")
    args = parser.parse_args()

    try:
        args.n_values = [int(float(item)) for item in args.n.split(",")]
    except ValueError:
        parser.error(f"invalid --n '{args.n}': expected comma-separated "
                     "counts such as 600,2000")
    if any(n < 1 for n in args.n_values):
        parser.error(f"invalid --n '{args.n}': every count must be at least 1")
    args.peers = [p for p in args.peers.split(",") if p]
    unknown = [p for p in args.peers if p not in ALL_PEERS]
    if unknown:
        parser.error(f"unknown peer(s) {', '.join(unknown)}; valid: "
                     f"{', '.join(ALL_PEERS)}")
    if args.repeat < 1:
        parser.error(f"invalid --repeat {args.repeat}: it must be at least 1")
    if args.accuracy_samples < 1:
        parser.error(f"invalid --accuracy-samples {args.accuracy_samples}: "
                     "it must be at least 1")
    defaults = {"fmg": "host/cli/fmg",
                "odeint": "bench/flow/fmg_odeint_flow",
                "reference": "bench/flow/fmg_flow_reference"}
    for name, relative in defaults.items():
        path = getattr(args, name) or newest_build_file(relative)
        if path is None or not (path.is_file() and os.access(path, os.X_OK)):
            parser.error(f"{name} program not found at "
                         f"{path or 'build*/' + relative}; build it or pass "
                         f"--{name} PATH")
        setattr(args, name, path.resolve())
    return args


def main():
    args = parse_args()
    results, skipped, rates = [], {}, {}
    for tool in args.peers:
        missing = missing_modules(tool)
        if missing:
            skipped[tool] = f"not installed: {', '.join(missing)}"

    load_before = os.getloadavg()
    started = datetime.datetime.now(datetime.timezone.utc)
    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        runner = Runner(args, workdir)
        checks = [run_size(args, runner, n, rates, skipped, results)
                  for n in args.n_values]

    table = markdown_table(results)
    record = {
        "benchmark": "compare_peers",
        "problem": {"mixture": "built-in three-atom example",
                    "schedule": "linear", "method": "Dormand-Prince 5(4)",
                    "rtol": RTOL, "atol": ATOL, "eps": EPS,
                    "seed": args.seed,
                    "reference": {"tool": "fmg_flow_reference",
                                  "rtol": REFERENCE_RTOL,
                                  "atol": REFERENCE_ATOL}},
        "machine": {"cpu": cpu_model(), "cpus": os.cpu_count(),
                    "platform": platform.platform(),
                    "python": platform.python_version(),
                    "numpy": np.__version__,
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg()},
        "started": started.isoformat(timespec="seconds"),
        "reference_checks": checks,
        "commands": runner.commands,
        "results": results,
        "table": table,
    }
    args.output.write_text(json.dumps(record, indent=2) + "\n")
    print(table)


if __name__ == "__main__":
    main()
