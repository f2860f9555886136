#!/usr/bin/env python3
"""Generate high-precision reference values for fmg's per-sample maths.

Writes reference_values.hpp beside this script. Every value is computed with
mpmath from the textbook formulas, independently of fmg's kernels:

    schedules   linear              a = 1 - t,            b = t
                variance_preserving a = cos(pi t / 2),    b = sin(pi t / 2)
                cosine              a = (1 + cos pi t)/2, b = (1 - cos pi t)/2
    marginal    rho_t(x) = sum_k w_k N(x; b mu_k, a^2 I)
    log gamma_k = l_k - logsumexp(l),  l_k = log w_k - |x - b mu_k|^2 / (2 a^2)
    velocity    v = (a'/a) x + (b' - a' b / a) m,  m = sum_k gamma_k mu_k

Inputs (times, points, atoms, log weights) are doubles, and the reference is
the exact value of the formula at those doubles, rounded to the nearest
double at the end. Flow endpoints come from mpmath.odefun (Taylor series) on
the schedule-free form of the flow, cross-checked against SciPy's DOP853 on
dx/dt = v(x, t) itself; see flow_endpoints().

Usage: python3 make_reference.py [--output PATH]    (needs mpmath, numpy,
scipy; about six minutes, most of it in mpmath.odefun)
"""

import argparse
import math
import sys
import time
from pathlib import Path

import mpmath as mp
import numpy as np
from mpmath import libmp
from scipy.integrate import solve_ivp

WORK_DPS = 80  # digits carried through every evaluation
mp.mp.dps = 50

SCHEDULES = ("linear", "variance_preserving", "cosine")

# The double nearest 1 - 1e-12. Python's 1.0 - 1e-12 rounds to the same
# double, which main() checks.
T_NEAR_ONE = float(libmp.to_float((mp.mpf(1) - mp.mpf("1e-12"))._mpf_, rnd="n"))
BASE_TIMES = (0.0, 0.25, 0.5, 0.9, 0.999, T_NEAR_ONE)

# Flow endpoints: integrate from t = 0 to the double nearest 1 - 1e-3.
T_END = 1.0 - 1e-3
FLOW_STARTS = ((0.3, -0.7), (-1.2, 0.4), (1.5, 1.1), (0.05, -0.02),
               (-0.6, -1.9))


def to_double(value):
    """Round an mpf to the nearest double (mpmath's float() truncates)."""
    return float(libmp.to_float(mp.mpf(value)._mpf_, rnd="n"))


def float32(value):
    """Round a double to the nearest float32 and back."""
    return float(np.float32(value))


def with_float_times(times):
    """Return times plus the float32 roundings of those not exact in float,
    kept only when they stay below 1, so float kernels have exact inputs."""
    out = list(times)
    for t in times:
        tf = float32(t)
        if tf != t and tf < 1.0 and tf not in out:
            out.append(tf)
    return sorted(out)


def schedule(kind, t):
    """Return (a, b, a', b') at the double t, from the textbook formulas."""
    # sinpi and cospi take the argument over pi, so they are exact zeros
    # where the schedules vanish, such as a(1).
    with mp.workdps(2 * WORK_DPS):
        t = mp.mpf(t)
        half_pi = mp.pi / 2
        if kind == "linear":
            values = (1 - t, t, mp.mpf(-1), mp.mpf(1))
        elif kind == "variance_preserving":
            values = (mp.cospi(t / 2), mp.sinpi(t / 2),
                      -half_pi * mp.sinpi(t / 2), half_pi * mp.cospi(t / 2))
        elif kind == "cosine":
            values = ((1 + mp.cospi(t)) / 2, (1 - mp.cospi(t)) / 2,
                      -half_pi * mp.sinpi(t), half_pi * mp.sinpi(t))
        else:
            raise ValueError(f"unknown schedule {kind!r}")
    return tuple(+v for v in values)


class Mixture:
    """A mixture given by double atoms (K x d) and double log weights."""

    def __init__(self, name, atoms, log_weights, note):
        self.name = name
        self.atoms = [[float(v) for v in row] for row in atoms]
        self.log_weights = [float(v) for v in log_weights]
        self.note = note
        self.num_atoms = len(self.atoms)
        self.dim = len(self.atoms[0])
        self.mp_atoms = [[mp.mpf(v) for v in row] for row in self.atoms]
        self.mp_log_weights = [mp.mpf(v) for v in self.log_weights]


def log_weights_of(weights):
    """Return the doubles nearest log w_k for decimal weights (strings)."""
    return [to_double(mp.log(mp.mpf(w))) for w in weights]


def evaluate(mix, kind, t, x):
    """Evaluate the marginal, responsibilities and velocity at (x, t).

    Besides the values, returns for each output an error scale S. Let every
    input (x, atoms, log weights, a, b) and every rounded intermediate move
    by a relative amount delta. Then S is a first-order bound on the change
    of the output, per unit of delta. A floating-point evaluation with unit
    roundoff u is then expected within a small multiple of u * S. The d-term
    sums get a sqrt(d) factor, the typical growth of independent rounding
    errors in recursive summation.
    """
    with mp.workdps(WORK_DPS):
        a, b, da, db = schedule(kind, t)
        x = [mp.mpf(v) for v in x]
        d, num_atoms = mix.dim, mix.num_atoms
        two_a2 = 2 * a * a

        l_terms, perturb = [], []
        for k in range(num_atoms):
            mu = mix.mp_atoms[k]
            diffs = [x[j] - b * mu[j] for j in range(d)]
            dist2 = mp.fsum(e * e for e in diffs)
            spread = mp.fsum(2 * abs(diffs[j]) * (abs(x[j]) + abs(b * mu[j]))
                             for j in range(d))
            lw = mix.mp_log_weights[k]
            l_terms.append(lw - dist2 / two_a2)
            perturb.append((spread + (2 + mp.sqrt(d)) * dist2) / two_a2
                           + abs(lw) + 1)

        l_max = max(l_terms)
        lse = l_max + mp.log(mp.fsum(mp.exp(l - l_max) for l in l_terms))
        log_gamma = [l - lse for l in l_terms]
        gamma = [mp.exp(g) for g in log_gamma]
        mean_perturb = mp.fsum(g * p for g, p in zip(gamma, perturb))

        log_norm = d * (mp.log(2 * mp.pi) / 2 + mp.log(a))
        log_density = lse - log_norm
        log_density_scale = (mean_perturb + d * (mp.log(2 * mp.pi) / 2
                                                 + abs(mp.log(a)))
                             + abs(log_density))
        log_gamma_scales = [p + mean_perturb for p in perturb]

        m = [mp.fsum(gamma[k] * mix.mp_atoms[k][j] for k in range(num_atoms))
             for j in range(d)]
        c_noise = da / a
        c_mean = db - da * b / a
        velocity = [c_noise * x[j] + c_mean * m[j] for j in range(d)]
        velocity_scale = mp.mpf(0)
        for j in range(d):
            mean_error = mp.fsum(
                gamma[k] * (abs(mix.mp_atoms[k][j] - m[j]) * perturb[k]
                            + abs(mix.mp_atoms[k][j]))
                for k in range(num_atoms))
            scale_j = (2 * abs(c_noise) * (abs(x[j]) + abs(b * m[j]))
                       + abs(db * m[j])
                       + (abs(db) + abs(c_noise * b)) * mean_error)
            velocity_scale = max(velocity_scale, scale_j)

    return {
        "log_density": log_density,
        "log_density_scale": log_density_scale,
        "log_gamma": log_gamma,
        "log_gamma_scales": log_gamma_scales,
        "velocity": velocity,
        "velocity_scale": velocity_scale,
    }


def trajectory_point(kind, t, z, mu):
    """Return b(t) mu + a(t) z rounded to doubles: a point near the path of
    a sample bound for atom mu, where x - b m is of the order of a."""
    a, b, _, _ = schedule(kind, t)
    return [to_double(b * mp.mpf(m) + a * mp.mpf(zj)) for m, zj in zip(mu, z)]


def build_mixtures():
    builtin = Mixture(
        "builtin", [[2.4, 0.0], [-1.4, 2.0], [-1.4, -2.0]],
        log_weights_of(["0.45", "0.30", "0.25"]),
        "built-in example, weights 0.45, 0.30, 0.25")
    far = Mixture(
        "far_apart", [[0.0, 0.0], [1000.0, 0.0]],
        log_weights_of(["0.5", "0.5"]),
        "two atoms 1000 apart, equal weights")
    d = 2048
    high_dim = Mixture(
        "high_dim",
        [[math.cos(k * j) for j in range(d)] for k in range(3)],
        log_weights_of(["0.5", "0.3", "0.2"]),
        "d = 2048, mu_kj = cos(k j), weights 0.5, 0.3, 0.2")
    single = Mixture("single", [[1.5, -0.5]], [0.0], "one atom")
    return [builtin, far, high_dim, single]


def point_cases(mixtures):
    """Yield (mixture index, schedule, t, x) for every evaluated point."""
    times = with_float_times(BASE_TIMES)
    builtin_points = [(0.0, 0.0), (0.5, -0.3), (-3.0, 4.0), (2.401, -0.002)]
    for kind in SCHEDULES:
        for t in times:
            for x in builtin_points:
                yield 0, kind, t, list(x)
        for t in with_float_times((0.9, 0.999, T_NEAR_ONE)):
            yield 0, kind, t, trajectory_point(kind, t, (0.3, -0.7),
                                               mixtures[0].atoms[0])

    far_points = [(250.0, 1.0), (250.001, 0.0), (10.0, -2.0), (499.0, 0.5)]
    for kind in SCHEDULES:
        for t in times:
            for x in far_points:
                yield 1, kind, t, list(x)

    high_dim_x = [math.sin(j + 1) for j in range(mixtures[2].dim)]
    for t in with_float_times((0.5, 0.99)):
        yield 2, "linear", t, high_dim_x

    for kind in SCHEDULES:
        for t in times:
            for x in [(0.25, 0.75), (1.5, -0.5)]:
                yield 3, kind, t, list(x)


def flow_endpoints(mixture):
    """Integrate the flow of the built-in example for each schedule.

    Primary method: with y = x / a and r = b / a the flow becomes
    dy/dr = m(y; r), where m uses l_k = log w_k - |y - r mu_k|^2 / 2, and
    every schedule shares this ODE. It is integrated in tau = log(1 + r) by
    mpmath.odefun (Taylor series) at two settings, and x_end = a(t_end)
    y(r(t_end)). Check: SciPy DOP853 on dx/dt = v(x, t) at rtol 1e-13, atol
    1e-15 and at rtol 1e-11, atol 1e-13.
    """
    mus = mixture.atoms
    log_w = mixture.log_weights

    def make_rhs_tau():
        """Return the right-hand side in tau, with the mixture converted at
        the working precision of the caller."""
        mus_mp = [[mp.mpf(v) for v in mu] for mu in mus]
        log_w_mp = [mp.mpf(v) for v in log_w]

        def rhs_tau(tau, y):
            r = mp.expm1(tau)
            l_terms = [lw - ((y[0] - r * mu[0]) ** 2
                             + (y[1] - r * mu[1]) ** 2) / 2
                       for lw, mu in zip(log_w_mp, mus_mp)]
            l_max = max(l_terms)
            e = [mp.exp(l - l_max) for l in l_terms]
            total = mp.fsum(e)
            return [(1 + r) * mp.fsum(ek * mu[j] for ek, mu in zip(e, mus_mp))
                    / total for j in range(2)]

        return rhs_tau

    mus_np = np.array(mus)
    log_w_np = np.array(log_w)

    def velocity_np(kind, t, x):
        a, b, da, db = (float(v) for v in schedule(kind, t))
        diffs = x[None, :] - b * mus_np
        l_terms = log_w_np - np.sum(diffs * diffs, axis=1) / (2 * a * a)
        gamma = np.exp(l_terms - l_terms.max())
        m = gamma @ mus_np / gamma.sum()
        return (da / a) * x + (db - da * b / a) * m

    settings = ((30, mp.mpf(10) ** -25), (40, mp.mpf(10) ** -34))
    results = {}
    for start in FLOW_STARTS:
        r_ends = {}
        for kind in SCHEDULES:
            a, b, _, _ = schedule(kind, T_END)
            r_ends[kind] = (a, b / a)
        solutions = []
        for dps, tol in settings:
            with mp.workdps(dps):
                y0 = [mp.mpf(start[0]), mp.mpf(start[1])]
                solution = mp.odefun(make_rhs_tau(), 0, y0, tol=tol)
                ends = {}
                for kind in SCHEDULES:
                    a, r_end = r_ends[kind]
                    y = solution(mp.log1p(r_end))
                    ends[kind] = [a * y[0], a * y[1]]
                solutions.append(ends)

        for kind in SCHEDULES:
            precise, coarse = solutions[1][kind], solutions[0][kind]
            tight = solve_ivp(lambda t, x: velocity_np(kind, t, x), (0.0, T_END),
                              np.array(start), method="DOP853", rtol=1e-13,
                              atol=1e-15)
            loose = solve_ivp(lambda t, x: velocity_np(kind, t, x), (0.0, T_END),
                              np.array(start), method="DOP853", rtol=1e-11,
                              atol=1e-13)
            end = [to_double(v) for v in precise]
            results[(kind, start)] = {
                "end": end,
                "odefun_agreement": float(max(abs(p - c) for p, c in
                                              zip(precise, coarse))),
                "dop853_tight": float(np.max(np.abs(tight.y[:, -1] - end))),
                "dop853_loose": float(np.max(np.abs(loose.y[:, -1] - end))),
            }
    return results


def literal(value):
    """Format a value as a C++ double literal with 17 significant digits."""
    number = to_double(value)
    if not math.isfinite(number):
        raise ValueError(f"reference value {value} is not a finite double")
    text = format(number, ".17g")
    if not any(c in text for c in ".e"):
        text += ".0"
    return text


def array_literal(values, per_line=4, indent="    "):
    items = [literal(v) for v in values]
    lines = [", ".join(items[i:i + per_line])
             for i in range(0, len(items), per_line)]
    return (",\n" + indent).join(lines)


SCHEDULE_ENUM = {
    "linear": "ScheduleKind::linear",
    "variance_preserving": "ScheduleKind::variance_preserving",
    "cosine": "ScheduleKind::cosine",
}


def write_header(path, mixtures, points, flows, flow_summary):
    out = []
    emit = out.append
    emit("// Generated by tests/reference/make_reference.py; do not edit.")
    emit("//")
    emit("// Reference values computed with mpmath at 80 significant digits from")
    emit("// the textbook formulas (a, b, a', b' of each schedule; the marginal")
    emit("// rho_t = sum_k w_k N(x; b mu_k, a^2 I); log responsibilities by")
    emit("// log-sum-exp; v = (a'/a) x + (b' - a' b / a) m), independently of the")
    emit("// kernels, then rounded to the nearest double. Inputs are the doubles")
    emit("// written here, taken as exact. The time near 1 is the double nearest")
    emit("// 1 - 1e-12, 0.99999999999900002212. Times such as 0.89999997615814209")
    emit("// are float32 roundings, so float kernels can be checked at exact times.")
    emit("//")
    emit("// Each *_scale is a first-order bound, per unit of relative")
    emit("// perturbation of every input and rounded intermediate, on the change")
    emit("// of that output; an evaluation with unit roundoff u should land")
    emit("// within a small multiple of u * scale.")
    emit("//")
    emit("// Flow endpoints: the flow from t = 0 to t_end = 0.999 (double) of the")
    emit("// built-in example, from mpmath.odefun (Taylor series) on the")
    emit("// schedule-free form dy/dr = m(y; r), y = x / a, r = b / a, in the")
    emit("// variable log(1 + r), at 40 digits with tolerance 1e-34; x_end =")
    emit("// a(t_end) y(r(t_end)).")
    for line in flow_summary:
        emit("// " + line)
    emit("#pragma once")
    emit("")
    emit('#include "kernels/common.hpp"')
    emit("")
    emit("namespace fmg::reference {")
    emit("")
    emit("/// Schedule values at one time.")
    emit("struct ScheduleCase {")
    emit("  ScheduleKind kind;")
    emit("  double t;")
    emit("  double a, b, da, db;")
    emit("};")
    emit("")
    emit("/// A mixture given by its atoms (K x d, row-major) and log weights.")
    emit("struct MixtureCase {")
    emit("  const char* name;")
    emit("  int num_atoms;")
    emit("  int dim;")
    emit("  const double* atoms;")
    emit("  const double* log_weights;")
    emit("};")
    emit("")
    emit("/// Marginal, responsibilities and velocity of one mixture at (x, t).")
    emit("struct PointCase {")
    emit("  int mixture;  ///< Index into mixture_cases.")
    emit("  ScheduleKind kind;")
    emit("  double t;")
    emit("  const double* x;  ///< dim entries.")
    emit("  double log_density;")
    emit("  double log_density_scale;")
    emit("  const double* log_responsibilities;       ///< num_atoms entries.")
    emit("  const double* log_responsibility_scales;  ///< num_atoms entries.")
    emit("  const double* velocity;                   ///< dim entries.")
    emit("  double velocity_scale;  ///< Bound over the components.")
    emit("};")
    emit("")
    emit("/// Endpoint at t_end of the flow of the built-in example (mixture 0).")
    emit("struct FlowEndpointCase {")
    emit("  ScheduleKind kind;")
    emit("  double t_end;")
    emit("  double start[2];")
    emit("  double end[2];")
    emit("};")
    emit("")

    emit("inline constexpr ScheduleCase schedule_cases[] = {")
    for kind in SCHEDULES:
        for t in with_float_times(BASE_TIMES + (1.0,)):
            a, b, da, db = schedule(kind, t)
            emit(f"    {{{SCHEDULE_ENUM[kind]}, {literal(t)},")
            emit(f"     {literal(a)}, {literal(b)}, {literal(da)}, {literal(db)}}},")
    emit("};")
    emit("")

    emit("namespace detail {")
    for i, mix in enumerate(mixtures):
        flat = [v for row in mix.atoms for v in row]
        emit(f"// {mix.note}")
        emit(f"inline constexpr double atoms_{i}[] = {{")
        emit("    " + array_literal(flat) + "};")
        emit(f"inline constexpr double log_weights_{i}[] = {{")
        emit("    " + array_literal(mix.log_weights) + "};")
    x_names = {}
    for i, (mix_index, kind, t, x, values) in enumerate(points):
        key = (mix_index, tuple(x))
        if key not in x_names:
            x_names[key] = f"x_{i}"
            emit(f"inline constexpr double x_{i}[] = {{")
            emit("    " + array_literal(x) + "};")
        emit(f"inline constexpr double log_gamma_{i}[] = {{")
        emit("    " + array_literal(values["log_gamma"]) + "};")
        emit(f"inline constexpr double log_gamma_scales_{i}[] = {{")
        emit("    " + array_literal(values["log_gamma_scales"]) + "};")
        emit(f"inline constexpr double velocity_{i}[] = {{")
        emit("    " + array_literal(values["velocity"]) + "};")
    emit("}  // namespace detail")
    emit("")

    emit("inline constexpr MixtureCase mixture_cases[] = {")
    for i, mix in enumerate(mixtures):
        emit(f'    {{"{mix.name}", {mix.num_atoms}, {mix.dim}, detail::atoms_{i},'
             f" detail::log_weights_{i}}},")
    emit("};")
    emit("")

    emit("inline constexpr PointCase point_cases[] = {")
    for i, (mix_index, kind, t, x, values) in enumerate(points):
        x_name = x_names[(mix_index, tuple(x))]
        emit(f"    {{{mix_index}, {SCHEDULE_ENUM[kind]}, {literal(t)}, detail::{x_name},")
        emit(f"     {literal(values['log_density'])}, "
             f"{literal(values['log_density_scale'])},")
        emit(f"     detail::log_gamma_{i}, detail::log_gamma_scales_{i},")
        emit(f"     detail::velocity_{i}, {literal(values['velocity_scale'])}}},")
    emit("};")
    emit("")

    emit("inline constexpr FlowEndpointCase flow_endpoint_cases[] = {")
    for (kind, start), record in flows.items():
        end = record["end"]
        emit(f"    {{{SCHEDULE_ENUM[kind]}, {literal(T_END)}, "
             f"{{{literal(start[0])}, {literal(start[1])}}},")
        emit(f"     {{{literal(end[0])}, {literal(end[1])}}}}},")
    emit("};")
    emit("")
    emit("}  // namespace fmg::reference")
    path.write_text("\n".join(out) + "\n")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path,
                        default=Path(__file__).with_name("reference_values.hpp"),
                        help="header to write (default: beside this script)")
    args = parser.parse_args()

    if 1.0 - 1e-12 != T_NEAR_ONE:
        sys.exit("1.0 - 1e-12 does not round to the double nearest 1 - 1e-12")

    mixtures = build_mixtures()
    started = time.time()
    points = []
    for mix_index, kind, t, x in point_cases(mixtures):
        values = evaluate(mixtures[mix_index], kind, t, x)
        points.append((mix_index, kind, t, x, values))
    print(f"{len(points)} point cases in {time.time() - started:.1f} s")

    started = time.time()
    flows = flow_endpoints(mixtures[0])
    print(f"{len(flows)} flow endpoints in {time.time() - started:.1f} s")
    odefun_gap = max(r["odefun_agreement"] for r in flows.values())
    tight_gap = max(r["dop853_tight"] for r in flows.values())
    loose_gap = max(r["dop853_loose"] for r in flows.values())
    flow_summary = [
        "Agreement, max over the 15 endpoints and both coordinates:",
        f"odefun at 30 digits, tolerance 1e-25: {odefun_gap:.1e};",
        f"SciPy DOP853 on dx/dt = v in double, rtol 1e-13, atol 1e-15: "
        f"{tight_gap:.1e};",
        f"the same at rtol 1e-11, atol 1e-13: {loose_gap:.1e}.",
    ]
    for line in flow_summary:
        print(line)
    for (kind, start), record in flows.items():
        print(f"  {kind:20s} {start}: end {record['end']}, "
              f"DOP853 {record['dop853_tight']:.1e} / "
              f"{record['dop853_loose']:.1e}")

    write_header(args.output, mixtures, points, flows, flow_summary)
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
