"""How much of each page of a PDF report is used: renders the pages with pdftoppm
(poppler-utils) and measures, per page, how far down the text block its content reaches.

    python tools/page_usage.py results/report/mini/report.pdf [--below 0.4] [--dpi 50]

Prints one line per page ("page 3: 87% used") and lists the pages under ``--below``; exits
1 when there are any, so a check can fail on them. The text block is the report's A4 page
less its 2.2 cm margins; the page number below it is not content.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

# The report's geometry (harness.report.render): A4, 2.2 cm margins on every side.
PAGE_CM, MARGIN_CM = 29.7, 2.2
TOP, BOTTOM = MARGIN_CM / PAGE_CM, 1 - MARGIN_CM / PAGE_CM
INK = 200  # a grey level below this is ink, not paper


def page_images(pdf: Path, folder: Path, dpi: int) -> list[Path]:
    """The PDF's pages as PNG files, rendered by pdftoppm."""
    if shutil.which("pdftoppm") is None:
        raise SystemExit("page_usage: pdftoppm not found; install poppler-utils")
    subprocess.run(["pdftoppm", "-r", str(dpi), "-png", str(pdf), str(folder / "page")], check=True)
    return sorted(folder.glob("page-*.png"))


def used_fraction(image: np.ndarray) -> float:
    """The share of the text block's height above the page's lowest content."""
    height = image.shape[0]
    top, bottom = int(TOP * height), int(BOTTOM * height)
    rows = np.flatnonzero((image[top:bottom] < INK).any(axis=1))
    return 0.0 if rows.size == 0 else float(rows.max() + 1) / (bottom - top)


def page_usage(pdf: Path, dpi: int = 50) -> list[float]:
    from PIL import Image

    with tempfile.TemporaryDirectory() as folder:
        return [used_fraction(np.asarray(Image.open(p).convert("L")))
                for p in page_images(pdf, Path(folder), dpi)]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("pdf", type=Path)
    parser.add_argument("--below", type=float, default=0.4, help="list pages used less than this")
    parser.add_argument("--dpi", type=int, default=50)
    args = parser.parse_args(argv)
    if not args.pdf.is_file():
        print(f"page_usage: {args.pdf} is not a file", file=sys.stderr)
        return 2
    usage = page_usage(args.pdf, args.dpi)
    for number, used in enumerate(usage, start=1):
        print(f"page {number}: {used:.0%} used")
    sparse = [n for n, used in enumerate(usage, start=1) if used < args.below]
    # The last page ends the report where it ends: it is not a layout fault.
    sparse = [n for n in sparse if n != len(usage)]
    if sparse:
        print(f"pages under {args.below:.0%} used: {', '.join(map(str, sparse))}")
        return 1
    print(f"no page under {args.below:.0%} used (the last page aside)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
