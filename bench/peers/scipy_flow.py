#!/usr/bin/env python3
"""Compare fmg's CPU backend with SciPy on the flow of the built-in example.

The SciPy route integrates all N samples as one system of size N * d with
scipy.integrate.solve_ivp(method="RK45"), the velocity vectorised in numpy
with a log-sum-exp, at rtol 1e-8 and atol 1e-10, from t = 0 to
t_end = 1 - eps with eps = 1e-3, linear schedule. fmg runs the same base
samples through `fmg sample --method dopri5` at the same tolerances. Both
endpoints are compared with a tighter reference: DOP853 per sample at
rtol 1e-13, atol 1e-14, on the first --reference-samples samples.

The two routes control different errors. RK45 on the joined system takes
one step size for every sample and measures the error as an RMS over all
N * d components. fmg's Dormand-Prince steps each sample on its own and
measures an RMS over its d components.

Prints a JSON record and writes it to --output; nothing else is written
outside --workdir. Needs numpy and scipy.

    python3 bench/peers/scipy_flow.py --n 2000 --fmg build/host/cli/fmg
    python3 bench/peers/scipy_flow.py --scipy-only   # without fmg
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy
from scipy.integrate import solve_ivp

REPO_ROOT = Path(__file__).resolve().parents[2]

# The built-in example: atoms mu_k and weights w_k.
ATOMS = np.array([[2.4, 0.0], [-1.4, 2.0], [-1.4, -2.0]])
LOG_WEIGHTS = np.log(np.array([0.45, 0.30, 0.25]))

RTOL = 1e-8
ATOL = 1e-10
EPS = 1e-3
REFERENCE_RTOL = 1e-13
REFERENCE_ATOL = 1e-14


def linear_velocity(x, t):
    """Return v(x, t) of the linear schedule (a = 1 - t, b = t) for x of
    shape (N, d): v = (a'/a) x + (b' - a' b / a) m, with the posterior mean
    m = sum_k gamma_k mu_k and gamma a softmax of
    log w_k - |x - b mu_k|^2 / (2 a^2)."""
    a, b, da, db = 1.0 - t, t, -1.0, 1.0
    diffs = x[:, None, :] - b * ATOMS[None, :, :]
    log_terms = LOG_WEIGHTS[None, :] - np.sum(diffs * diffs, axis=2) / (2 * a * a)
    log_terms -= log_terms.max(axis=1, keepdims=True)
    gamma = np.exp(log_terms)
    gamma /= gamma.sum(axis=1, keepdims=True)
    mean = gamma @ ATOMS
    return (da / a) * x + (db - da * b / a) * mean


def run_scipy(x0, t_end):
    """Integrate every sample as one RK45 system; return endpoints, the
    wall time and the number of velocity evaluations."""
    shape = x0.shape

    def rhs(t, flat):
        return linear_velocity(flat.reshape(shape), t).ravel()

    started = time.perf_counter()
    solution = solve_ivp(rhs, (0.0, t_end), x0.ravel(), method="RK45",
                         rtol=RTOL, atol=ATOL)
    wall = time.perf_counter() - started
    if not solution.success:
        raise RuntimeError(f"SciPy RK45 failed: {solution.message}")
    return solution.y[:, -1].reshape(shape), wall, int(solution.nfev)


def run_reference(x0, t_end):
    """Integrate each sample on its own with DOP853 at tight tolerances."""
    ends = np.empty_like(x0)
    for i, start in enumerate(x0):
        solution = solve_ivp(
            lambda t, x: linear_velocity(x[None, :], t)[0], (0.0, t_end),
            start, method="DOP853", rtol=REFERENCE_RTOL, atol=REFERENCE_ATOL)
        if not solution.success:
            raise RuntimeError(f"reference DOP853 failed on sample {i}: "
                               f"{solution.message}")
        ends[i] = solution.y[:, -1]
    return ends


def run_fmg(binary, starts_path, workdir, threads):
    """Run `fmg sample` on the saved base samples; return the endpoints,
    the process wall time and the parsed summary."""
    endpoints_path = workdir / "end.npy"
    summary_path = workdir / "summary.json"
    command = [
        str(binary), "sample", "--schedule", "linear", "--method", "dopri5",
        "--rtol", repr(RTOL), "--atol", repr(ATOL), "--eps", repr(EPS),
        "--backend", "cpu", "--starts", str(starts_path),
        "--endpoints-out", str(endpoints_path), "--summary", str(summary_path),
        "--quiet",
    ]
    if threads is not None:
        command += ["--threads", str(threads)]
    started = time.perf_counter()
    completed = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - started
    if completed.returncode != 0:
        raise RuntimeError(
            f"fmg failed with exit status {completed.returncode}: "
            f"{' '.join(command)}\n{completed.stderr.strip()}")
    endpoints = np.load(endpoints_path)
    if endpoints.shape != (len(np.load(starts_path)), 2):
        raise RuntimeError(f"{endpoints_path} has shape {endpoints.shape}; "
                           "expected (N, 2)")
    summary = json.loads(summary_path.read_text())
    return endpoints.astype(np.float64), wall, summary


def endpoint_errors(ends, reference):
    """Return the max and median over samples of the infinity-norm error."""
    errors = np.max(np.abs(ends[:len(reference)] - reference), axis=1)
    return float(np.max(errors)), float(np.median(errors))


def parse_args():
    parser = argparse.ArgumentParser(
        description="Compare fmg's CPU backend with SciPy's solve_ivp on the "
                    "flow of the built-in example (linear schedule).")
    parser.add_argument("--n", type=int, default=2000,
                        help="number of base samples (default 2000; RK45 on "
                             "the joined system slows down as N grows)")
    parser.add_argument("--seed", type=int, default=20260617,
                        help="seed of numpy's default_rng for the base samples")
    parser.add_argument("--fmg", type=Path,
                        default=REPO_ROOT / "build" / "host" / "cli" / "fmg",
                        help="path to the fmg program (default: "
                             "build/host/cli/fmg in the repository)")
    parser.add_argument("--threads", type=int, default=None,
                        help="CPU threads for fmg (default: fmg's default)")
    parser.add_argument("--reference-samples", type=int, default=200,
                        help="samples checked against the DOP853 reference "
                             "(default 200; the reference is slow)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="folder for x0.npy, end.npy and summary.json "
                             "(default: a temporary folder, removed after)")
    parser.add_argument("--output", type=Path, default=None,
                        help="write the JSON record to this file")
    parser.add_argument("--scipy-only", action="store_true",
                        help="skip fmg and time SciPy alone")
    args = parser.parse_args()
    if args.n < 1:
        parser.error(f"invalid --n {args.n}: it must be at least 1")
    if args.reference_samples < 1:
        parser.error(f"invalid --reference-samples {args.reference_samples}: "
                     "it must be at least 1")
    return args


def main():
    args = parse_args()
    if not args.scipy_only and not (args.fmg.is_file()
                                    and os.access(args.fmg, os.X_OK)):
        sys.exit(f"error: fmg program not found or not executable at "
                 f"{args.fmg}; build it (cmake --build <build> --target fmg) "
                 "and pass --fmg PATH, or run with --scipy-only")

    t_end = 1.0 - EPS
    x0 = np.random.default_rng(args.seed).standard_normal((args.n, 2))
    subset = min(args.reference_samples, args.n)

    with tempfile.TemporaryDirectory() as scratch:
        workdir = args.workdir or Path(scratch)
        workdir.mkdir(parents=True, exist_ok=True)
        starts_path = workdir / "x0.npy"
        np.save(starts_path, x0)

        scipy_ends, scipy_wall, scipy_nfev = run_scipy(x0, t_end)
        if not args.scipy_only:
            fmg_ends, fmg_process_wall, summary = run_fmg(
                args.fmg, starts_path, workdir, args.threads)

    started = time.perf_counter()
    reference = run_reference(x0[:subset], t_end)
    reference_wall = time.perf_counter() - started

    scipy_max, scipy_median = endpoint_errors(scipy_ends, reference)
    record = {
        "benchmark": "scipy_flow",
        "problem": {"mixture": "built-in three-atom example",
                    "schedule": "linear", "eps": EPS, "t_end": t_end,
                    "n": args.n, "seed": args.seed, "dim": 2},
        "scipy": {
            "method": "solve_ivp RK45, all samples as one system",
            "rtol": RTOL, "atol": ATOL,
            "wall_seconds": scipy_wall,
            "samples_per_second": args.n / scipy_wall,
            "velocity_evaluations": scipy_nfev,
            "max_endpoint_error": scipy_max,
            "median_endpoint_error": scipy_median,
        },
        "reference": {"method": "solve_ivp DOP853 per sample",
                      "rtol": REFERENCE_RTOL, "atol": REFERENCE_ATOL,
                      "samples": subset, "wall_seconds": reference_wall},
        "machine": {"platform": platform.platform(),
                    "processor": platform.processor() or platform.machine(),
                    "cpus": os.cpu_count(),
                    "python": platform.python_version(),
                    "numpy": np.__version__, "scipy": scipy.__version__},
    }
    if not args.scipy_only:
        run = summary["runs"][0]
        fmg_max, fmg_median = endpoint_errors(fmg_ends, reference)
        record["fmg"] = {
            "method": "fmg sample --method dopri5 --backend cpu",
            "binary": str(args.fmg),
            "rtol": RTOL, "atol": ATOL,
            "wall_seconds": run["wall_seconds"],
            "samples_per_second": run["samples_per_second"],
            "process_wall_seconds": fmg_process_wall,
            "max_endpoint_error": fmg_max,
            "median_endpoint_error": fmg_median,
        }
        # Integration time against integration time; fmg's process time
        # also counts start-up and file input and output.
        record["samples_per_second_ratio_fmg_over_scipy"] = (
            run["samples_per_second"] / record["scipy"]["samples_per_second"])

    text = json.dumps(record, indent=2)
    print(text)
    if args.output:
        args.output.write_text(text + "\n")


if __name__ == "__main__":
    main()
