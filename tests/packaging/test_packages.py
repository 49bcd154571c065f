"""pyproject.toml ships every package: the ``packages`` list names each package directory of
seqdiff/ and recipes/ (installed as seqdiff_recipes), and the package data covers every
non-Python file the configs and recipes hold, so a new subpackage or a new config file is
never silently missing from the wheel (tests/packaging/test_wheel.py installs one)."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SETUPTOOLS = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]
#: import name -> directory in the repository
ROOTS = {"seqdiff": ROOT / "seqdiff", "seqdiff_recipes": ROOT / "recipes", "seqdiff.configs": ROOT / "configs"}


def source_dirs(top: Path) -> list[Path]:
    return [d for d in [top, *sorted(top.rglob("*"))] if d.is_dir() and d.name != "__pycache__"
            and not any(p.name == "__pycache__" for p in d.parents)]


def test_package_dirs_map_as_the_wheel_expects():
    assert SETUPTOOLS["package-dir"] == {"seqdiff_recipes": "recipes", "seqdiff.configs": "configs"}


def test_every_package_directory_is_listed_and_every_listed_package_exists():
    expected, orphans = set(), []
    for name, top in (("seqdiff", ROOTS["seqdiff"]), ("seqdiff_recipes", ROOTS["seqdiff_recipes"])):
        for d in source_dirs(top):
            if not any(d.glob("*.py")):
                continue
            if not (d / "__init__.py").exists():  # a namespace directory: setuptools' list would skip it
                orphans.append(d.relative_to(ROOT).as_posix())
            expected.add(".".join([name, *d.relative_to(top).parts]))
    expected.add("seqdiff.configs")
    assert not orphans, f"Python files outside a package (add an __init__.py): {orphans}"
    listed = set(SETUPTOOLS["packages"])
    assert listed == expected, f"missing from pyproject: {sorted(expected - listed)}; stale: {sorted(listed - expected)}"


def test_every_data_file_is_package_data():
    """Each non-Python file under configs/ and recipes/ matches a package-data glob."""
    unshipped = []
    for name in ("seqdiff.configs", "seqdiff_recipes"):
        top = ROOTS[name]
        shipped = {f for pattern in SETUPTOOLS["package-data"].get(name, []) for f in top.glob(pattern)}
        data = {f for f in top.rglob("*") if f.is_file() and f.suffix not in (".py", ".pyc") and "__pycache__" not in f.parts}
        unshipped += sorted(f.relative_to(ROOT).as_posix() for f in data - shipped)
    assert not unshipped, f"not package data (extend [tool.setuptools.package-data]): {unshipped}"
