#!/usr/bin/env python3
"""Check that fmg_figures.py wrote every figure as a readable PNG and PDF.

Usage: check_figures.py FOLDER

Each of the five figures must exist as NAME.png and NAME.pdf, be non-empty,
start with the PNG signature or "%PDF-", and each PNG must decode with
matplotlib to an image that is not a single uniform colour. Exits with
status 1 and lists every failure otherwise.
"""

import sys
from pathlib import Path

FIGURE_NAMES = (
    "mixture_marginal_density",
    "mixture_velocity_crosscheck",
    "mixture_trajectories_linear",
    "mixture_trajectories_schedules",
    "mixture_ot_contrast",
)
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
PDF_SIGNATURE = b"%PDF-"

try:
    import numpy as np
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.image
except ImportError as error:
    sys.exit(
        f"check_figures: error: {error}. The figure tests need numpy and "
        "matplotlib; install them with scripts/install-deps.sh"
    )


def check_signature(path: Path, signature: bytes) -> list:
    """Return the problems of a file that should start with `signature`."""
    if not path.is_file():
        return [f"{path}: missing"]
    size = path.stat().st_size
    if size == 0:
        return [f"{path}: empty"]
    with open(path, "rb") as file:
        head = file.read(len(signature))
    if head != signature:
        return [f"{path}: starts with {head!r}, expected {signature!r}"]
    return []


def check_png_image(path: Path) -> list:
    """Return the problems of a PNG that should decode to a non-uniform image."""
    try:
        image = matplotlib.image.imread(path)
    except Exception as error:  # any decoder failure is a test failure
        return [f"{path}: cannot be decoded: {error}"]
    if image.ndim < 2 or image.shape[0] < 2 or image.shape[1] < 2:
        return [f"{path}: decoded to an image of shape {image.shape}"]
    # Compare whole pixels: the spread of all values together would count
    # an opaque black image (RGB 0, alpha 1) as non-uniform.
    if np.all(image == image[0, 0]):
        return [f"{path}: every pixel has the same colour"]
    return []


def check_folder(folder: Path) -> list:
    problems = []
    for name in FIGURE_NAMES:
        png = folder / f"{name}.png"
        png_problems = check_signature(png, PNG_SIGNATURE)
        if not png_problems:
            png_problems = check_png_image(png)
        problems += png_problems
        problems += check_signature(folder / f"{name}.pdf", PDF_SIGNATURE)
    return problems


def main(argv: list) -> int:
    if len(argv) != 1:
        print("usage: check_figures.py FOLDER", file=sys.stderr)
        return 2
    folder = Path(argv[0])
    problems = check_folder(folder)
    for problem in problems:
        print(f"check_figures: {problem}", file=sys.stderr)
    if problems:
        return 1
    print(f"check_figures: {2 * len(FIGURE_NAMES)} files in {folder} are valid")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
