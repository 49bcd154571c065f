"""seqdiff/registry.py: what installed packages register (entry points), found without the
core naming any package below it.

The repository's recipes register through the same ``pyproject.toml`` entry points a
third-party package would declare; the second half installs such a package (a real
``.dist-info`` on ``sys.path``, as pip writes it) and runs its command through the CLI.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from seqdiff import registry
from seqdiff.errors import ConfigError
from seqdiff.utils.instantiate import TRUSTED_PREFIXES, locate


def test_the_recipes_entries_are_found_in_this_install():
    import seqdiff_recipes.dna as dna
    import seqdiff_recipes.dna.download as download
    import seqdiff_recipes.text.cli as text_cli
    import seqdiff_recipes.text.metrics as metrics
    import seqdiff_recipes.text.zero_shot as zero_shot

    expected = {
        ("seqdiff.commands", "download"): download.main,
        ("seqdiff.commands", "tokenizer"): text_cli.main,
        ("seqdiff.judges", "hf_causal_lm"): metrics.HFCausalJudge,
        ("seqdiff.protocols", "mdlm_zero_shot"): zero_shot.protocol_data,
        ("seqdiff.domain_classes", "dna"): dna.DNADomain,
        ("seqdiff.data_sources", "fasta"): dna.FastaData,
    }
    for (group, name), obj in expected.items():
        assert registry.load(group, name, section="test") is obj
        assert registry.get(group, name, section="test").dist.name == "seqdiff"  # this project's metadata
    assert registry.target("seqdiff.domain_classes", "dna", section="test") == "seqdiff_recipes.dna.DNADomain"
    assert registry.trusted_prefixes() == ("seqdiff.", "seqdiff_recipes.")
    assert tuple(TRUSTED_PREFIXES) == registry.trusted_prefixes()


def test_every_group_the_core_reads_is_declared_in_pyproject():
    import tomllib

    declared = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]["entry-points"]
    assert set(declared) == set(registry.GROUPS)
    for group, table in declared.items():
        assert set(table) == set(registry.names(group)), group


def test_unknown_names_are_one_line_errors_listing_the_registered_ones():
    with pytest.raises(ConfigError, match=r"^eval.judge: 'gpt9' is not registered \(entry point group seqdiff.judges: hf_causal_lm\)$"):
        registry.load("seqdiff.judges", "gpt9", section="eval.judge")
    with pytest.raises(ValueError, match="unknown entry point group"):
        registry.entries("seqdiff.nothing")


def test_help_reads_command_summaries_without_importing_them():
    code = ("import sys; from seqdiff.cli.main import _usage; u = _usage();"
            " print('download' in u, 'HG38 files' in u, 'tokenizer' in u,"
            " any(m.startswith('seqdiff_recipes') for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["True", "True", "True", "False"]


# ------------------------------------------------------------------ a third-party package
def install_fake(root: Path, dist: str, module: str, entry_points: str, source: str) -> Path:
    """A distribution as pip leaves it in site-packages: the module and its .dist-info."""
    root.mkdir(parents=True, exist_ok=True)
    (root / f"{module}.py").write_text(source)
    info = root / f"{dist.replace('-', '_')}-0.1.dist-info"  # pip's file name: the normalised name
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(textwrap.dedent(entry_points))
    return root


PLUGIN = '''"""``seqdiff hello NAME``: greets (a third-party command)."""


def main(argv):
    print("hello " + " ".join(argv))
    return 0


class Thing:
    pass
'''


@pytest.fixture
def plugin(tmp_path, monkeypatch):
    root = install_fake(tmp_path / "site", "seqdiff-hello", "seqdiff_hello", """
        [seqdiff.commands]
        hello = seqdiff_hello:main
        [seqdiff.trusted]
        seqdiff_hello = seqdiff_hello
        """, PLUGIN)
    monkeypatch.syspath_prepend(str(root))
    registry.refresh()
    yield root
    monkeypatch.undo()
    registry.refresh()


def test_a_third_party_package_registers_a_command_and_trusted_targets(plugin):
    assert "seqdiff_hello." in registry.trusted_prefixes()
    assert locate("seqdiff_hello.Thing", trusted=registry.trusted_prefixes()).__name__ == "Thing"
    with pytest.raises(ConfigError, match="untrusted"):  # still refused: not registered
        locate("json.JSONDecoder", trusted=registry.trusted_prefixes())
    env = {"PYTHONPATH": str(plugin), "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "seqdiff", "hello", "world"], capture_output=True, text=True, env=env)
    assert run.returncode == 0 and run.stdout == "hello world\n", run.stderr
    usage = subprocess.run([sys.executable, "-m", "seqdiff", "--help"], capture_output=True, text=True, env=env).stdout
    assert "  hello    seqdiff hello NAME: greets (a third-party command)." in usage
    bad = subprocess.run([sys.executable, "-m", "seqdiff", "hellp"], capture_output=True, text=True, env=env)
    assert bad.returncode == 2 and "hello" in bad.stderr.splitlines()[-1]


def test_a_name_registered_twice_is_an_error_naming_both(plugin, tmp_path, monkeypatch):
    other = install_fake(tmp_path / "site2", "seqdiff-other", "seqdiff_other", """
        [seqdiff.commands]
        hello = seqdiff_other:main
        """, PLUGIN)
    monkeypatch.syspath_prepend(str(other))
    registry.refresh()
    with pytest.raises(ConfigError, match=r"seqdiff.commands:hello is registered twice: .*seqdiff-(other|hello) 0.1.* and .*seqdiff-(hello|other) 0.1"):
        registry.entries("seqdiff.commands")
    env = {"PYTHONPATH": f"{plugin}:{other}", "PATH": "/usr/bin:/bin"}
    run = subprocess.run([sys.executable, "-m", "seqdiff", "hello"], capture_output=True, text=True, env=env)
    assert run.returncode == 2 and run.stderr.startswith("error: entry point seqdiff.commands:hello is registered twice")
