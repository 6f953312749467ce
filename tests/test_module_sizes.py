"""No module over 500 lines: a file that grows past it is split into modules that each do
one thing (docs/contributing.md says how a study's helpers are named)."""

from __future__ import annotations

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
FOLDERS = ("harness", "studies", "benchmarks", "tools")
LIMIT = 500


def line_counts(root: Path, folders: tuple[str, ...]) -> dict[str, int]:
    """Lines of every .py file under ``folders`` of ``root``, by path relative to it."""
    return {str(path.relative_to(root)): len(path.read_text(encoding="utf-8").splitlines())
            for folder in folders for path in sorted((root / folder).rglob("*.py"))}


def oversized(counts: dict[str, int], limit: int = LIMIT) -> list[str]:
    return [f"{path} ({lines} lines)" for path, lines in sorted(counts.items()) if lines > limit]


def test_no_module_is_over_500_lines():
    counts = line_counts(REPO, FOLDERS)
    assert len(counts) > 50  # the folders were found
    too_long = oversized(counts)
    assert not too_long, f"modules over {LIMIT} lines: {', '.join(too_long)}"


def test_the_check_names_each_module_over_the_limit(tmp_path):
    (tmp_path / "harness").mkdir()
    (tmp_path / "harness" / "short.py").write_text("x = 1\n" * LIMIT)
    (tmp_path / "harness" / "long.py").write_text("x = 1\n" * (LIMIT + 1))
    assert oversized(line_counts(tmp_path, ("harness",))) == [f"harness/long.py ({LIMIT + 1} lines)"]
