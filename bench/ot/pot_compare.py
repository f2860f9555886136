#!/usr/bin/env python3
"""Compare POT's exact LP route to the semi-discrete potentials with fmg's
exact 2-D Newton solve, on the three-atom example.

POT route (as in the mixture notebook): draw N = 60,000 samples of N(0, I_2)
with numpy.random.default_rng(seed).standard_normal, build the cost
|x - mu|^2 / 2, solve the discrete OT problem with ot.emd (uniform source
weights, target weights w), and read psi from the dual potential v of the
atoms, shifted so that psi_0 = 0. The true residual max_k |m_k - w_k| of that
psi is then measured with fmg's exact cell masses (fmg_ot_bench
--evaluate-psi), and fmg's own exact solve is timed (fmg_ot_bench).

Writes pot_compare.json and pot_compare.md (one Markdown table row) to
--out, and prints both.

Needs numpy and POT (pip install pot).
"""

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

ATOMS = np.array([[2.4, 0.0], [-1.4, 2.0], [-1.4, -2.0]])
WEIGHTS = np.array([0.45, 0.30, 0.25])
EXACT_PSI = np.array([0.0, -0.7875089379, -1.181375982])


def find_bench(repository: Path) -> Path:
    """Return the newest fmg_ot_bench under a build directory of the repository."""
    candidates = sorted(repository.glob("build*/bench/ot/fmg_ot_bench"),
                        key=lambda p: p.stat().st_mtime, reverse=True)
    if not candidates:
        sys.exit("fmg_ot_bench not found under build*/bench/ot/; build the "
                 "target fmg_ot_bench or pass --bench PATH")
    return candidates[0]


def run_json(command: list) -> dict:
    """Run a command that prints one JSON document and return it parsed."""
    completed = subprocess.run(command, capture_output=True, text=True)
    if completed.returncode != 0:
        sys.exit(f"{' '.join(command)} failed with exit status "
                 f"{completed.returncode}: {completed.stderr.strip()}")
    return json.loads(completed.stdout)


def pot_potentials(samples: int, seed: int, repeat: int) -> dict:
    """Solve the notebook's sampled LP with POT and return psi and timings."""
    import ot

    start = time.perf_counter()
    x = np.random.default_rng(seed).standard_normal((samples, 2))
    cost = ot.dist(x, ATOMS) / 2.0  # squared Euclidean / 2
    source = np.full(samples, 1.0 / samples)
    setup_seconds = time.perf_counter() - start

    lp_seconds = []
    log = None
    for _ in range(repeat):
        start = time.perf_counter()
        _, log = ot.emd(source, WEIGHTS, cost, log=True, numItermax=10_000_000)
        lp_seconds.append(time.perf_counter() - start)
    dual = np.asarray(log["v"])
    return {
        "psi": (dual - dual[0]).tolist(),
        "lp_time_s": min(lp_seconds),
        "lp_times_s": lp_seconds,
        "setup_time_s": setup_seconds,
        "lp_warning": log.get("warning"),
        "pot_version": ot.__version__,
    }


def main() -> None:
    repository = Path(__file__).resolve().parents[2]
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bench", type=Path, help="path of fmg_ot_bench "
                        "(default: newest build*/bench/ot/fmg_ot_bench)")
    parser.add_argument("--samples", type=int, default=60_000,
                        help="Gaussian samples of the POT LP (default 60000)")
    parser.add_argument("--seed", type=int, default=20260617,
                        help="numpy seed of the POT samples (default: the "
                        "notebook's 20260617)")
    parser.add_argument("--repeat", type=int, default=3,
                        help="runs of each timed solve; the fastest is "
                        "reported (default 3)")
    parser.add_argument("--out", type=Path, default=repository / "out" / "ot",
                        help="directory of pot_compare.json and "
                        "pot_compare.md (default: out/ot)")
    args = parser.parse_args()
    bench = args.bench or find_bench(repository)

    pot = pot_potentials(args.samples, args.seed, args.repeat)
    psi_text = ",".join(repr(value) for value in pot["psi"])
    pot_exact = run_json([str(bench), f"--evaluate-psi={psi_text}"])
    fmg = run_json([str(bench), "--repeat", str(max(args.repeat, 5))])
    fmg_exact = fmg["exact_2d"]

    record = {
        "benchmark": "pot_compare",
        "machine": {
            "processor": platform.processor() or platform.machine(),
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "pot": pot["pot_version"],
        },
        "pot": {
            "route": "ot.emd on sampled Gaussian, psi = v - v[0]",
            "samples": args.samples,
            "seed": args.seed,
            "lp_time_s": pot["lp_time_s"],
            "lp_times_s": pot["lp_times_s"],
            "setup_time_s": pot["setup_time_s"],
            "lp_warning": pot["lp_warning"],
            "psi": pot["psi"],
            "psi_error": float(np.abs(np.array(pot["psi"]) - EXACT_PSI).max()),
            "true_residual": pot_exact["exact_residual"],
            "true_masses": pot_exact["exact_masses"],
        },
        "fmg_exact_2d": {
            "time_s": fmg_exact["time_s"],
            "iterations": fmg_exact["iterations"],
            "status": fmg_exact["status"],
            "psi": fmg_exact["psi"],
            "psi_error": float(np.abs(np.array(fmg_exact["psi"]) -
                                      EXACT_PSI).max()),
            "true_residual": fmg_exact["exact_residual"],
        },
        "fmg_monte_carlo_cpu": fmg["monte_carlo_cpu"],
        "command": " ".join([sys.executable] + sys.argv),
    }
    record["speedup"] = pot["lp_time_s"] / fmg_exact["time_s"]

    row = ("| three atoms, d = 2 | POT ot.emd, N = {n} | {pot_t:.3g} s | "
           "{pot_r:.3g} | fmg exact Newton | {fmg_t:.3g} s | {fmg_r:.3g} | "
           "{it} |").format(n=args.samples, pot_t=pot["lp_time_s"],
                            pot_r=pot_exact["exact_residual"],
                            fmg_t=fmg_exact["time_s"],
                            fmg_r=fmg_exact["exact_residual"],
                            it=fmg_exact["iterations"])
    header = ("| problem | reference | time | true residual | fmg | time | "
              "true residual | Newton steps |\n"
              "|---|---|---|---|---|---|---|---|")

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "pot_compare.json").write_text(json.dumps(record, indent=2) + "\n")
    (args.out / "pot_compare.md").write_text(header + "\n" + row + "\n")
    print(json.dumps(record, indent=2))
    print(header)
    print(row)


if __name__ == "__main__":
    main()
