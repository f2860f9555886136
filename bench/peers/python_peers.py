#!/usr/bin/env python3
"""Run one Python ODE library on the flow of the built-in example.

The problem is the one of scipy_flow.py: atoms (2.4, 0), (-1.4, 2),
(-1.4, -2), weights 0.45, 0.30, 0.25, linear schedule, Dormand-Prince at
rtol 1e-8 and atol 1e-10, from t = 0 to t_end = 1 - eps with eps = 1e-3.
Each tool is used the way its users batch samples:

- scipy: solve_ivp RK45 on all samples as one system (scipy_flow.run_scipy).
- torchdiffeq: odeint(method="dopri5") on all samples as one (N, 2) float64
  tensor, so one step size serves every sample and the error is an RMS over
  the whole batch. step_t=[t_end] makes the last step land on t_end; without
  it torchdiffeq steps past t_end and interpolates back, evaluating the
  velocity beyond t_end, towards its singularity at t = 1.
- diffrax: diffeqsolve with Dopri5 and PIDController(rtol, atol) for one
  sample, jax.vmap over samples (each sample keeps its own step size) and
  jax.jit, in float64. Compilation is timed apart from the solve.

Reads the (N, 2) starting points from --starts, writes the endpoints to
--out and prints one JSON record. The fastest of --repeat timed runs is
reported; every run starts from the same points.

    python3 bench/peers/python_peers.py diffrax --starts x0.npy --out end.npy
"""

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from scipy_flow import ATOL, ATOMS, EPS, LOG_WEIGHTS, RTOL, run_scipy  # noqa: E402


def time_runs(solve, repeat):
    """Call solve() `repeat` times; return the result of the fastest call
    and the list of wall times."""
    best, walls = None, []
    for _ in range(repeat):
        started = time.perf_counter()
        result = solve()
        walls.append(time.perf_counter() - started)
        if walls[-1] == min(walls):
            best = result
    return best, walls


def run_scipy_peer(x0, t_end, repeat, threads):
    """Run scipy's solve_ivp RK45 on the joined system of all samples."""
    import scipy

    (ends, _, nfev), walls = time_runs(lambda: run_scipy(x0, t_end), repeat)
    return ends, walls, {
        "tool": f"scipy {scipy.__version__} solve_ivp RK45, one system",
        "velocity_calls": nfev,
        "velocity_evaluations": nfev * len(x0),
    }


def run_torchdiffeq_peer(x0, t_end, repeat, threads):
    """Run torchdiffeq's dopri5 on all samples as one batch tensor."""
    import torch
    import torchdiffeq

    if threads:
        torch.set_num_threads(threads)
    atoms = torch.tensor(ATOMS, dtype=torch.float64)
    log_weights = torch.tensor(LOG_WEIGHTS, dtype=torch.float64)
    calls = [0]

    def velocity(t, x):
        # Under the linear schedule v = (m - x) / (1 - t), where m is the
        # posterior mean of the atoms and softmax does the log-sum-exp.
        calls[0] += 1
        a = 1.0 - t
        diffs = x[:, None, :] - t * atoms[None, :, :]
        logits = log_weights - (diffs * diffs).sum(dim=2) / (2.0 * a * a)
        mean = torch.softmax(logits, dim=1) @ atoms
        return (mean - x) / a

    y0 = torch.from_numpy(x0)
    times = torch.tensor([0.0, t_end], dtype=torch.float64)

    def solve():
        calls[0] = 0
        with torch.no_grad():
            path = torchdiffeq.odeint(
                velocity, y0, times, method="dopri5", rtol=RTOL, atol=ATOL,
                options={"step_t": torch.tensor([t_end],
                                                dtype=torch.float64)})
        return path[-1].numpy().copy(), calls[0]

    (ends, nfev), walls = time_runs(solve, repeat)
    return ends, walls, {
        "tool": (f"torchdiffeq {torchdiffeq.__version__} dopri5, torch "
                 f"{torch.__version__}, one batch tensor"),
        "threads": torch.get_num_threads(),
        "velocity_calls": nfev,
        "velocity_evaluations": nfev * len(x0),
    }


def run_diffrax_peer(x0, t_end, repeat, threads):
    """Run diffrax's Dopri5 per sample under jax.vmap, jit-compiled."""
    import jax

    jax.config.update("jax_enable_x64", True)
    import diffrax
    import jax.numpy as jnp

    atoms = jnp.asarray(ATOMS)
    log_weights = jnp.asarray(LOG_WEIGHTS)

    def velocity(t, x, args):
        a = 1.0 - t
        diffs = x[None, :] - t * atoms
        logits = log_weights - jnp.sum(diffs * diffs, axis=1) / (2.0 * a * a)
        return (jax.nn.softmax(logits) @ atoms - x) / a

    term = diffrax.ODETerm(velocity)
    solver = diffrax.Dopri5()
    controller = diffrax.PIDController(rtol=RTOL, atol=ATOL)

    def solve_one(start):
        solution = diffrax.diffeqsolve(
            term, solver, t0=0.0, t1=t_end, dt0=None, y0=start,
            stepsize_controller=controller)
        return (solution.ys[-1], solution.stats["num_steps"],
                solution.stats["num_accepted_steps"])

    starts = jnp.asarray(x0)
    started = time.perf_counter()
    compiled = jax.jit(jax.vmap(solve_one)).lower(starts).compile()
    compile_seconds = time.perf_counter() - started

    def solve():
        ends, steps, accepted = compiled(starts)
        ends.block_until_ready()
        return np.asarray(ends), np.asarray(steps), np.asarray(accepted)

    (ends, steps, accepted), walls = time_runs(solve, repeat)
    return ends, walls, {
        "tool": (f"diffrax {diffrax.__version__} Dopri5 + PIDController, "
                 f"jax {jax.__version__}, vmap + jit"),
        "compile_seconds": compile_seconds,
        "steps_total": int(steps.sum()),
        "steps_max": int(steps.max()),
        "accepted_steps_mean": float(accepted.mean()),
    }


PEERS = {
    "scipy": run_scipy_peer,
    "torchdiffeq": run_torchdiffeq_peer,
    "diffrax": run_diffrax_peer,
}


def main():
    parser = argparse.ArgumentParser(
        description="Run one Python ODE library on the built-in example's "
                    "flow and print a JSON record.")
    parser.add_argument("tool", choices=sorted(PEERS))
    parser.add_argument("--starts", type=Path, required=True,
                        help="(N, 2) float64 .npy starting points")
    parser.add_argument("--out", type=Path, default=None,
                        help="write the (N, 2) endpoints to this .npy file")
    parser.add_argument("--repeat", type=int, default=1,
                        help="timed runs; the fastest is reported (default 1)")
    parser.add_argument("--threads", type=int, default=0,
                        help="torch intra-op threads (default: torch's)")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error(f"invalid --repeat {args.repeat}: it must be at least 1")

    x0 = np.load(args.starts).astype(np.float64)
    if x0.ndim != 2 or x0.shape[1] != 2:
        sys.exit(f"error: {args.starts} has shape {x0.shape}; expected (N, 2)")
    ends, walls, record = PEERS[args.tool](x0, 1.0 - EPS, args.repeat,
                                           args.threads)
    wall = min(walls)
    record.update({
        "n": len(x0), "rtol": RTOL, "atol": ATOL, "eps": EPS,
        "wall_seconds": wall, "wall_seconds_all": walls,
        "samples_per_second": len(x0) / wall,
    })
    if args.out is not None:
        np.save(args.out, np.asarray(ends, dtype=np.float64))
    print(json.dumps(record))


if __name__ == "__main__":
    main()
