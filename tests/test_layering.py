"""The core never imports Hydra, recipes, tokenizers or file-format libraries."""

import ast
from pathlib import Path

import seqdiff

CORE = Path(seqdiff.__file__).parent
FORBIDDEN = {"hydra", "omegaconf", "seqdiff_recipes", "recipes", "tokenizers", "Bio", "pyfaidx"}
# Backbones that wrap transformers models may import it; the CLI may import Hydra.
ALLOWED = {"cli": {"hydra", "omegaconf"}, "backbones/hf_mlm.py": {"transformers"}}


def imported_modules(path: Path) -> set[str]:
    mods = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            mods |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            mods.add(node.module.split(".")[0])
    return mods


def test_core_imports_point_down_only():
    offenders = []
    for path in CORE.rglob("*.py"):
        rel = path.relative_to(CORE).as_posix()
        allowed = set()
        for prefix, extra in ALLOWED.items():
            if rel == prefix or rel.startswith(prefix + "/"):
                allowed |= extra
        bad = (imported_modules(path) & (FORBIDDEN | {"transformers"})) - allowed
        if bad:
            offenders.append(f"{rel}: {sorted(bad)}")
    assert not offenders, offenders


def test_importing_seqdiff_does_not_load_hydra_or_recipes():
    import subprocess
    import sys

    code = "import sys, seqdiff; print(sorted(m for m in ('hydra','seqdiff_recipes','tokenizers','transformers') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"


def test_opening_a_run_does_not_import_the_trainer_or_the_evaluator():
    """``import seqdiff`` loads nothing heavy (torch included); ``seqdiff.load`` and sampling need
    the run's pieces only, never ``seqdiff.train`` or ``seqdiff.eval``."""
    import subprocess
    import sys

    code = ("import sys, seqdiff; a = sorted(m for m in sys.modules if m.split('.')[0] in ('torch', 'seqdiff'));"
            " seqdiff.load; b = sorted(m for m in sys.modules if m.startswith(('seqdiff.train', 'seqdiff.eval')));"
            " print(a, b)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['seqdiff'] []", out
