#!/usr/bin/env python3
"""Draw the flow-matching and OT figures of a 2-D mixture from fmg's output.

Every number on the figures comes from fmg. fmg sample gives the flow's
trajectories and atom labels, fmg density the marginal density log rho_t on a
grid, and fmg crosscheck the error curves of the closed-form velocity against
the autodiff one. fmg ot gives the Laguerre cells, the straight
optimal-transport paths and the transport costs. This script only runs fmg,
reads its .npy arrays and JSON summaries, and plots them.

Five figures, each saved as PNG and PDF in the output folder:

  mixture_marginal_density        rho_t (linear schedule) at t = 0.15, 0.5, 0.9
  mixture_velocity_crosscheck     velocity error curves for the three schedules
  mixture_trajectories_linear     flow trajectories, coloured by their atom
  mixture_trajectories_schedules  the same for the three schedules side by side
  mixture_ot_contrast             OT paths into Laguerre cells next to the flow

Example, from the repository root after building fmg:

  python3 scripts/fmg_figures.py --out figures
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

REPOSITORY_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_FMG = REPOSITORY_ROOT / "build" / "host" / "cli" / "fmg"
DEFAULT_SEED = 20260617

SCHEDULES = ("linear", "variance-preserving", "cosine")
FIGURE_NAMES = (
    "mixture_marginal_density",
    "mixture_velocity_crosscheck",
    "mixture_trajectories_linear",
    "mixture_trajectories_schedules",
    "mixture_ot_contrast",
)
DENSITY_TIMES = (0.15, 0.5, 0.9)
PLOT_LIMITS = (-5.0, 5.0)
# Colour of samples whose integration failed (fmg labels them -1).
FAILED_COLOR = "black"
# Floor under the error curves on the log axis, where an error of exactly 0
# would otherwise leave a gap.
ERROR_FLOOR = 1e-18

try:
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.collections import LineCollection
    from matplotlib.colors import ListedColormap
except ImportError as error:
    sys.exit(
        f"fmg_figures: error: {error}. This script needs numpy and matplotlib; "
        "install them with scripts/install-deps.sh"
    )


class FigureError(Exception):
    """A failed fmg run or an fmg output that cannot be plotted."""


@dataclass(frozen=True)
class Settings:
    """Sizes of the computations behind the figures."""

    samples: int
    trajectory_points: int
    density_grid: int
    cell_grid: int
    crosscheck_samples: int
    crosscheck_times: int
    ot_trajectory_points: int
    cost_samples: int
    dpi: int


def make_settings(quick: bool, samples: int | None) -> Settings:
    """Return the full-size settings, or small ones for a fast test run."""
    if quick:
        return Settings(
            samples=samples or 150,
            trajectory_points=41,
            density_grid=60,
            cell_grid=80,
            crosscheck_samples=50,
            crosscheck_times=8,
            ot_trajectory_points=12,
            cost_samples=2000,
            dpi=72,
        )
    return Settings(
        samples=samples or 600,
        trajectory_points=121,
        density_grid=240,
        cell_grid=240,
        crosscheck_samples=200,
        crosscheck_times=40,
        ot_trajectory_points=60,
        cost_samples=100000,
        dpi=150,
    )


# --- running fmg -----------------------------------------------------------


class FmgRunner:
    """Runs fmg subcommands with their files in one data folder."""

    def __init__(self, fmg: Path, data_dir: Path, mixture: Path | None):
        self.fmg = fmg
        self.data_dir = data_dir
        self.mixture = mixture

    def path(self, name: str) -> Path:
        return self.data_dir / name

    def run(self, subcommand: str, arguments: list[str]) -> None:
        """Run `fmg SUBCOMMAND ARGUMENTS`, raising FigureError on failure."""
        command = [str(self.fmg), subcommand]
        if self.mixture is not None:
            command += ["--mixture", str(self.mixture)]
        command += arguments
        try:
            result = subprocess.run(
                command, cwd=self.data_dir, capture_output=True, text=True
            )
        except OSError as error:
            raise FigureError(f"failed to run {self.fmg}: {error}") from error
        if result.returncode != 0:
            if result.returncode < 0:
                failure = f"was killed by signal {-result.returncode}"
            else:
                failure = f"failed with exit status {result.returncode}"
            output = result.stderr.strip() or result.stdout.strip()
            last_lines = "\n".join(output.splitlines()[-15:]) or "(no output)"
            raise FigureError(
                f"fmg {subcommand} {failure}.\ncommand: {' '.join(command)}\n{last_lines}"
            )

    def load_array(self, name: str, shape: tuple, dtype=None) -> np.ndarray:
        """Load an .npy file that fmg wrote, checking its shape and type.

        A `None` in `shape` accepts any length on that axis.
        """
        path = self.path(name)
        try:
            array = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as error:
            raise FigureError(f"failed to read fmg output {path}: {error}") from error
        matches = array.ndim == len(shape) and all(
            expected is None or expected == actual
            for expected, actual in zip(shape, array.shape)
        )
        if not matches:
            raise FigureError(
                f"fmg output {path} has shape {array.shape}, expected {shape}"
            )
        if dtype is not None and array.dtype != np.dtype(dtype):
            raise FigureError(
                f"fmg output {path} has type {array.dtype}, expected {np.dtype(dtype)}"
            )
        return array

    def load_json(self, name: str) -> dict:
        path = self.path(name)
        try:
            with open(path, encoding="utf-8") as file:
                return json.load(file)
        except (OSError, ValueError) as error:
            raise FigureError(f"failed to read fmg summary {path}: {error}") from error


def tagged_name(name: str, schedule: str) -> str:
    """Insert "_<schedule>" before ".npy", as fmg does with --schedule all."""
    stem, dot, extension = name.rpartition(".")
    return f"{stem}_{schedule}.{extension}" if dot else f"{name}_{schedule}"


def json_field(summary: dict, keys: tuple, source: str):
    """Return summary[keys[0]][keys[1]]..., raising FigureError if missing."""
    value = summary
    for key in keys:
        try:
            value = value[key]
        except (KeyError, IndexError, TypeError):
            path = ".".join(str(key) for key in keys)
            raise FigureError(f"fmg summary {source} has no field {path}") from None
    return value


def as_float_array(values) -> np.ndarray:
    """Convert a JSON list to floats, reading null (how JSON writes a
    non-finite number) as inf."""
    return np.array([np.inf if v is None else v for v in values], dtype=float)


# --- fmg outputs -----------------------------------------------------------


@dataclass
class FlowRun:
    """Trajectories of one schedule and the atom each sample reached."""

    schedule: str
    trajectories: np.ndarray  # (M, T, 2)
    labels: np.ndarray  # (M,), -1 for failed samples


@dataclass
class FigureData:
    """Every fmg output that the five figures show."""

    atoms: np.ndarray  # (K, 2)
    weights: np.ndarray  # (K,)
    base: np.ndarray  # (N, 2)
    flows: dict  # schedule name -> FlowRun
    density_axis: np.ndarray  # grid coordinates of x and y
    log_density: np.ndarray  # (times, ny, nx)
    crosscheck: list  # dicts with schedule, times, max_abs_error
    cell_axis: np.ndarray
    cells: np.ndarray  # (ny, nx) Laguerre labels
    ot_trajectories: np.ndarray  # (N, T, 2)
    ot_labels: np.ndarray  # (N,)
    ot_summary: dict


def run_sample(runner: FmgRunner, settings: Settings, seed: int):
    """Integrate the flow under every schedule from the same base samples."""
    n = settings.samples
    runner.run(
        "sample",
        [
            "--schedule", "all", "-n", str(n), "--quiet", "--seed", str(seed),
            "--trajectories", str(n),
            "--trajectory-points", str(settings.trajectory_points),
            "--trajectories-out", "traj.npy", "--labels-out", "labels.npy",
            "--base-out", "base.npy", "--summary", "sample.json",
        ],
    )
    summary = runner.load_json("sample.json")
    atoms = np.array(json_field(summary, ("mixture", "atoms"), "sample.json"), float)
    weights = np.array(
        json_field(summary, ("mixture", "weights"), "sample.json"), float
    )
    if atoms.ndim != 2 or atoms.shape[1] != 2:
        raise FigureError(
            f"the mixture has atoms of shape {atoms.shape}, but the figures need "
            "atoms of dimension 2"
        )

    base = runner.load_array("base.npy", (n, 2), np.float64)
    flows = {}
    for schedule in SCHEDULES:
        trajectories = runner.load_array(
            tagged_name("traj.npy", schedule),
            (n, settings.trajectory_points, 2),
            np.float64,
        )
        labels = runner.load_array(tagged_name("labels.npy", schedule), (n,), np.int32)
        flows[schedule] = FlowRun(schedule, trajectories, labels)
    return atoms, weights, base, flows


def run_density(runner: FmgRunner, settings: Settings):
    """Evaluate log rho_t of the linear schedule on the square plot window."""
    low, high = PLOT_LIMITS
    grid = settings.density_grid
    runner.run(
        "density",
        [
            "--schedule", "linear",
            "--times", ",".join(str(t) for t in DENSITY_TIMES),
            "--x-range", f"{low},{high}", "--y-range", f"{low},{high}",
            "--grid", str(grid), "--out", "logrho.npy",
        ],
    )
    log_density = runner.load_array(
        "logrho.npy", (len(DENSITY_TIMES), grid, grid), np.float64
    )
    # fmg includes both ends of each axis.
    return np.linspace(low, high, grid), log_density


def run_crosscheck(runner: FmgRunner, settings: Settings, seed: int) -> list:
    """Compare the closed-form and autodiff velocities over time."""
    runner.run(
        "crosscheck",
        [
            "--schedule", "all", "-n", str(settings.crosscheck_samples),
            "--seed", str(seed),
            "--times", f"0.05:0.97:{settings.crosscheck_times}",
            "--summary", "crosscheck.json",
        ],
    )
    summary = runner.load_json("crosscheck.json")
    curves = []
    for index, curve in enumerate(json_field(summary, ("curves",), "crosscheck.json")):
        for field in ("schedule", "times", "max_abs_error"):
            json_field(summary, ("curves", index, field), "crosscheck.json")
        times = np.array(curve["times"], dtype=float)
        errors = as_float_array(curve["max_abs_error"])
        if times.shape != errors.shape:
            raise FigureError(
                f"crosscheck.json curve {curve['schedule']} has {times.size} times "
                f"but {errors.size} errors"
            )
        curves.append({"schedule": curve["schedule"], "times": times, "errors": errors})
    if not curves:
        raise FigureError("crosscheck.json contains no curves")
    return curves


def run_ot(runner: FmgRunner, settings: Settings, samples: int, seed: int):
    """Solve the semi-discrete OT problem, label a grid and trace OT paths."""
    low, high = PLOT_LIMITS
    axis = np.linspace(low, high, settings.cell_grid)
    grid_x, grid_y = np.meshgrid(axis, axis)
    points = np.column_stack([grid_x.ravel(), grid_y.ravel()])
    np.save(runner.path("grid.npy"), points)
    runner.run(
        "ot",
        [
            "--route", "exact", "--quiet", "--summary", "ot.json",
            "--seed", str(seed), "--cost-samples", str(settings.cost_samples),
            "--points", "grid.npy", "--labels-out", "cells.npy",
            "--starts", "base.npy",
            "--ot-trajectories", str(samples),
            "--trajectory-points", str(settings.ot_trajectory_points),
            "--ot-trajectories-out", "ot_traj.npy",
            "--start-labels-out", "ot_labels.npy",
        ],
    )
    summary = runner.load_json("ot.json")
    for key in ("ot", "flow"):
        json_field(summary, ("transport_cost", key), "ot.json")
    cells = runner.load_array("cells.npy", (points.shape[0],), np.int32)
    ot_trajectories = runner.load_array(
        "ot_traj.npy", (samples, settings.ot_trajectory_points, 2), np.float64
    )
    ot_labels = runner.load_array("ot_labels.npy", (samples,), np.int32)
    return axis, cells.reshape(grid_x.shape), ot_trajectories, ot_labels, summary


def collect_data(runner: FmgRunner, settings: Settings, seed: int) -> FigureData:
    """Run fmg sample, density, crosscheck and ot, and load their outputs."""
    atoms, weights, base, flows = run_sample(runner, settings, seed)
    density_axis, log_density = run_density(runner, settings)
    crosscheck = run_crosscheck(runner, settings, seed)
    cell_axis, cells, ot_trajectories, ot_labels, ot_summary = run_ot(
        runner, settings, base.shape[0], seed
    )
    return FigureData(
        atoms=atoms, weights=weights, base=base, flows=flows,
        density_axis=density_axis, log_density=log_density,
        crosscheck=crosscheck, cell_axis=cell_axis, cells=cells,
        ot_trajectories=ot_trajectories, ot_labels=ot_labels,
        ot_summary=ot_summary,
    )


# --- drawing ---------------------------------------------------------------


def atom_colors(count: int) -> list:
    """Fixed colour per atom: tab10 without its grey, cycled past 9 atoms."""
    palette = [plt.get_cmap("tab10")(i) for i in range(10) if i != 7]
    return [palette[k % len(palette)] for k in range(count)]


def label_colors(labels: np.ndarray, colors: list) -> list:
    return [colors[k] if k >= 0 else FAILED_COLOR for k in labels]


def format_square_axes(ax, title: str) -> None:
    ax.set_title(title)
    ax.set_aspect("equal")
    ax.set_xlim(*PLOT_LIMITS)
    ax.set_ylim(*PLOT_LIMITS)


def mark_atoms(ax, atoms: np.ndarray, colors: list, size: float = 90) -> None:
    ax.scatter(
        atoms[:, 0], atoms[:, 1], c=colors, s=size, edgecolor="white",
        linewidth=1.2, zorder=5,
    )


def draw_paths(ax, paths: np.ndarray, labels: np.ndarray, colors: list) -> None:
    """Draw (M, T, 2) paths as thin lines coloured by their atom."""
    lines = LineCollection(
        list(paths), colors=label_colors(labels, colors), linewidths=0.4,
        alpha=0.35,
    )
    ax.add_collection(lines)


def plot_flow(ax, run: FlowRun, atoms: np.ndarray, colors: list, title: str) -> None:
    draw_paths(ax, run.trajectories, run.labels, colors)
    starts = run.trajectories[:, 0, :]
    ax.scatter(starts[:, 0], starts[:, 1], s=3, c="0.4", alpha=0.5, linewidths=0)
    mark_atoms(ax, atoms, colors)
    format_square_axes(ax, title)


def basin_fractions(labels: np.ndarray, count: int) -> np.ndarray:
    return np.bincount(labels[labels >= 0], minlength=count) / labels.size


def format_vector(values: np.ndarray, digits: int = 3) -> str:
    return "(" + ", ".join(f"{value:.{digits}f}" for value in values) + ")"


def figure_marginal_density(data: FigureData, colors: list):
    grid_x, grid_y = np.meshgrid(data.density_axis, data.density_axis)
    # Taller than the panels need, so the title has room above them.
    fig, axes = plt.subplots(
        1, len(DENSITY_TIMES), figsize=(12, 4.6), layout="constrained"
    )
    for ax, t, log_rho in zip(axes, DENSITY_TIMES, data.log_density):
        ax.contourf(grid_x, grid_y, np.exp(log_rho), levels=30, cmap="magma")
        mark_atoms(ax, data.atoms, colors, size=60)
        format_square_axes(ax, f"$\\rho_t$ (linear, $t={t}$)")
    fig.suptitle("Closed-form marginal: a Gaussian blob splitting into the atoms")
    return fig


def figure_velocity_crosscheck(data: FigureData, samples: int):
    fig, ax = plt.subplots(figsize=(7, 4.2), layout="constrained")
    for curve in data.crosscheck:
        finite = np.isfinite(curve["errors"])
        label = curve["schedule"]
        if not finite.all():
            # A gap in the curve would hide a failed evaluation, so say so.
            label += f" (non-finite at {np.count_nonzero(~finite)} times)"
        errors = np.where(finite, curve["errors"], np.nan)
        ax.semilogy(
            curve["times"], np.maximum(errors, ERROR_FLOOR), marker=".",
            label=label,
        )
    ax.set_xlabel("$t$")
    ax.set_ylabel(r"$\max_x\,|v_{\rm closed}-v_{\rm autodiff}|_\infty$")
    ax.set_title(
        f"Closed-form vs. autodiff velocity ({samples} base samples)",
    )
    ax.grid(True, which="major", alpha=0.3)
    ax.legend()
    return fig


def figure_trajectories_linear(data: FigureData, colors: list):
    run = data.flows["linear"]
    fractions = basin_fractions(run.labels, len(data.atoms))
    fig, ax = plt.subplots(figsize=(5.6, 6.0), layout="constrained")
    plot_flow(
        ax, run, data.atoms, colors,
        f"Flow-matching trajectories (linear schedule, N = {run.labels.size})",
    )
    ax.set_xlabel(
        f"basin fractions {format_vector(fractions)}, "
        f"weights {format_vector(data.weights)}",
        fontsize=9,
    )
    return fig


def figure_trajectories_schedules(data: FigureData, colors: list):
    fig, axes = plt.subplots(
        1, len(SCHEDULES), figsize=(13.5, 5.2), layout="constrained"
    )
    for ax, schedule in zip(axes, SCHEDULES):
        run = data.flows[schedule]
        plot_flow(ax, run, data.atoms, colors, schedule)
        fractions = basin_fractions(run.labels, len(data.atoms))
        ax.set_xlabel(f"basin fractions {format_vector(fractions)}", fontsize=9)
    fig.suptitle("Same endpoints, different paths — the schedule bends the trajectories")
    return fig


def draw_cells(ax, axis: np.ndarray, cells: np.ndarray, colors: list) -> None:
    """Fill each grid point with the light colour of its Laguerre cell.

    Drawn as an image, not with contourf, because contouring integer labels
    interpolates between them, so the border of cells 0 and 2 would show a false
    band of cell 1.
    """
    half_step = 0.5 * (axis[1] - axis[0])
    low, high = axis[0] - half_step, axis[-1] + half_step
    # Label -1 (no cell) shows white, cell k the colour of atom k.
    cell_colors = ListedColormap(["white"] + list(colors))
    ax.imshow(
        cells + 1, origin="lower", extent=(low, high, low, high), cmap=cell_colors,
        vmin=-0.5, vmax=len(colors) + 0.5, interpolation="nearest", alpha=0.18,
    )


def cost_estimate(costs: dict, key: str) -> tuple:
    """Return (value, standard error or None) of costs[key], which fmg writes
    either as a number or as {"value": ..., "standard_error": ...}."""
    entry = costs[key]
    if isinstance(entry, dict):
        return float(entry["value"]), entry.get("standard_error")
    return float(entry), None


def format_cost(costs: dict, key: str) -> str:
    value, standard_error = cost_estimate(costs, key)
    text = f"$E|T(X_0)-X_0|^2 = {value:.3f}"
    if standard_error is not None:
        text += f" \pm {standard_error:.3f}"
    return text + "$"


def ot_caption(summary: dict) -> str:
    """Describe where the transport costs come from, and the potentials."""
    costs = summary["transport_cost"]
    caption = "Transport costs from fmg ot"
    if costs.get("samples") is not None:
        caption += f" on {costs['samples']} base samples"
    if "flow_minus_ot" in costs:
        value, standard_error = cost_estimate(costs, "flow_minus_ot")
        caption += f"; flow $-$ OT = {value:.4f}"
        if standard_error is not None:
            caption += f" $\pm$ {standard_error:.4f}"
    if costs.get("same_atom_fraction") is not None:
        caption += f"; same atom under both maps: {costs['same_atom_fraction']:.2%}"
    psi = summary.get("psi")
    if psi is not None:
        caption += f"\nLaguerre potentials $\psi$ = {format_vector(np.asarray(psi), 4)}"
    return caption


def figure_ot_contrast(data: FigureData, colors: list):
    costs = data.ot_summary["transport_cost"]
    fig, axes = plt.subplots(1, 2, figsize=(12, 6.6))

    ax = axes[0]
    draw_cells(ax, data.cell_axis, data.cells, colors)
    draw_paths(ax, data.ot_trajectories, data.ot_labels, colors)
    mark_atoms(ax, data.atoms, colors)
    format_square_axes(
        ax,
        "Optimal transport: straight lines into Laguerre cells\n"
        + format_cost(costs, "ot"),
    )

    plot_flow(
        axes[1], data.flows["linear"], data.atoms, colors,
        "Flow matching (linear): curved, independent coupling\n"
        + format_cost(costs, "flow"),
    )

    fig.suptitle("Flow matching $\\neq$ optimal transport (same marginals, different coupling)")
    # tight_layout keeps the panels inside the rectangle, which leaves strips
    # for the two-line caption and the suptitle. Constrained layout let a
    # two-line supxlabel overlap the tick labels (matplotlib 3.11).
    fig.text(0.5, 0.01, ot_caption(data.ot_summary), ha="center", va="bottom", fontsize=9)
    fig.tight_layout(rect=(0, 0.08, 1, 0.96))
    return fig


def save_figure(fig, out_dir: Path, name: str, dpi: int) -> list:
    """Save `fig` as NAME.png and NAME.pdf, each through a temporary file in
    `out_dir` renamed into place, so a reader never sees a partial file."""
    umask = os.umask(0)
    os.umask(umask)
    written = []
    for extension in ("png", "pdf"):
        target = out_dir / f"{name}.{extension}"
        descriptor, temporary = tempfile.mkstemp(
            dir=out_dir, prefix=f".{name}.", suffix=f".{extension}.tmp"
        )
        os.close(descriptor)
        try:
            # mkstemp creates the file readable by its owner only.
            os.chmod(temporary, 0o666 & ~umask)
            fig.savefig(
                temporary, format=extension, dpi=dpi, bbox_inches="tight",
                pad_inches=0.1,
            )
            os.replace(temporary, target)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise
        written.append(target)
    plt.close(fig)
    return written


def draw_figures(data: FigureData, settings: Settings, out_dir: Path) -> list:
    colors = atom_colors(len(data.atoms))
    figures = {
        "mixture_marginal_density": lambda: figure_marginal_density(data, colors),
        "mixture_velocity_crosscheck": lambda: figure_velocity_crosscheck(
            data, settings.crosscheck_samples
        ),
        "mixture_trajectories_linear": lambda: figure_trajectories_linear(data, colors),
        "mixture_trajectories_schedules": lambda: figure_trajectories_schedules(
            data, colors
        ),
        "mixture_ot_contrast": lambda: figure_ot_contrast(data, colors),
    }
    written = []
    for name in FIGURE_NAMES:
        written += save_figure(figures[name](), out_dir, name, settings.dpi)
    return written


# --- command line ----------------------------------------------------------


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def parse_arguments(argv: list) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Run fmg and draw the mixture figures "
        "(PNG and PDF) from its output."
    )
    parser.add_argument(
        "--fmg", type=Path, default=DEFAULT_FMG,
        help="path of the fmg program (default: build/host/cli/fmg in the repository)",
    )
    parser.add_argument(
        "--out", type=Path, default=Path("figures"),
        help="folder for the figures, created if missing (default: figures)",
    )
    parser.add_argument(
        "--mixture", type=Path,
        help="mixture JSON file passed to fmg (default: fmg's built-in three-atom example)",
    )
    parser.add_argument(
        "--n", type=positive_int,
        help="base samples whose trajectories are drawn (default 600, 150 with --quick)",
    )
    parser.add_argument(
        "--seed", type=int, default=DEFAULT_SEED,
        help=f"seed of fmg's base samples and transport-cost samples (default {DEFAULT_SEED})",
    )
    parser.add_argument(
        "--data", type=Path,
        help="keep fmg's arrays and JSON summaries in this folder "
        "(default: a temporary folder, removed at the end)",
    )
    parser.add_argument(
        "--quick", action="store_true",
        help="smaller grids, fewer times and samples, lower resolution (for tests)",
    )
    return parser.parse_args(argv)


def main(argv: list) -> int:
    arguments = parse_arguments(argv)
    settings = make_settings(arguments.quick, arguments.n)
    fmg = arguments.fmg.resolve()
    if not fmg.is_file():
        print(
            f"fmg_figures: error: fmg program not found at {fmg}; build it with "
            "scripts/build.sh or pass its path with --fmg",
            file=sys.stderr,
        )
        return 1
    mixture = arguments.mixture.resolve() if arguments.mixture else None
    out_dir = arguments.out.resolve()

    try:
        if arguments.data is not None:
            data_dir = arguments.data.resolve()
            data_dir.mkdir(parents=True, exist_ok=True)
            data = collect_data(FmgRunner(fmg, data_dir, mixture), settings, arguments.seed)
        else:
            with tempfile.TemporaryDirectory(prefix="fmg_figures.") as temporary:
                runner = FmgRunner(fmg, Path(temporary), mixture)
                data = collect_data(runner, settings, arguments.seed)
        out_dir.mkdir(parents=True, exist_ok=True)
        written = draw_figures(data, settings, out_dir)
    except FigureError as error:
        print(f"fmg_figures: error: {error}", file=sys.stderr)
        return 1

    for path in written:
        print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
