"""``seqdiff`` command line: ``seqdiff {train,sample,eval} [hydra overrides]``.

Hydra composes the configuration (so ``--help`` lists the config groups, ``-m``
sweeps, ``--cfg job`` prints the config); the command itself runs on the resolved
plain dict. Errors that are the user's to fix print one line and exit with status 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import sys
from pathlib import Path

COMMANDS = ("train", "sample", "eval")


def config_dir() -> Path:
    """``$SEQDIFF_CONFIG_DIR``, else the configs installed with the package (``seqdiff.configs``,
    the repository's ``configs/`` folder: mapped there by ``pyproject.toml`` for editable and
    wheel installs alike)."""
    env = os.environ.get("SEQDIFF_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    import importlib.util

    spec = importlib.util.find_spec("seqdiff.configs")
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(p) for p in spec.submodule_search_locations]
    for c in candidates:
        if (c / "config.yaml").exists():
            return c
    raise SystemExit(
        "error: seqdiff configs not found (looked in "
        + (", ".join(str(c) for c in candidates) or "the installed package seqdiff.configs")
        + "); reinstall seqdiff (pip install seqdiff, or pip install -e . from a clone), or set SEQDIFF_CONFIG_DIR"
    )


def _registered_commands() -> dict:
    """``seqdiff NAME`` commands that installed packages register (:mod:`seqdiff.registry`);
    the built-in commands win over a registered one of the same name."""
    from seqdiff.registry import entries

    builtin = {*COMMANDS, "import", "export"}
    return {name: ep for name, ep in entries("seqdiff.commands").items() if name not in builtin}


def _usage() -> str:
    from seqdiff.registry import summary

    root = config_dir()
    groups = []
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        opts = sorted(f.stem for f in d.glob("*.yaml"))
        if opts:
            groups.append(f"  {d.relative_to(root).as_posix():<18} {', '.join(opts)}")
    registered = [f"  {name:<8} {summary(ep)}" for name, ep in _registered_commands().items()]
    return "\n".join(
        [
            "usage: seqdiff {train,sample,eval} [group=option ...] [key=value ...] [--debug]",
            "       seqdiff import hf_dir=PATH out=DIR [tokenizer=DIR]   |   seqdiff export checkpoint=RUN out=DIR",
            "       seqdiff COMMAND --help   (the commands installed packages register, below)",
            "",
            "commands:",
            "  train    train a model (no arguments: the quickstart on a synthetic DNA source)",
            "  sample   draw sequences from a run: seqdiff sample checkpoint=RUN_DIR num_samples=8",
            "  eval     NELBO with confidence intervals and sample statistics: seqdiff eval checkpoint=RUN_DIR",
            "  import   a public checkpoint (MDLM-OWT, Caduceus, HyenaDNA) as a run: seqdiff import hf_dir=PATH out=runs/NAME",
            "  export   a DiT / Caduceus run in the public layout: seqdiff export checkpoint=RUN out=DIR",
            *registered,
            "",
            "config groups (in " + str(root) + "):",
            *groups,
            "",
            "`seqdiff train --help` shows the composed configuration; `seqdiff train --cfg job` prints it.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    from seqdiff.errors import SeqdiffError

    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        return _main(argv)
    except SeqdiffError as e:  # e.g. a command registered twice by two installed packages
        if "--debug" in argv:
            raise
        print(f"error: {e}", file=sys.stderr)
        return 2


def _main(argv: list[str]) -> int:
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from seqdiff import __version__

        print(f"seqdiff {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command in ("import", "export"):  # key=value arguments, no Hydra job (seqdiff/cli/interop.py)
        from seqdiff.cli.interop import main as interop_main

        return interop_main(command, rest)
    if command not in COMMANDS:
        registered = _registered_commands()
        if command in registered:  # plain argparse, no Hydra (e.g. seqdiff download, seqdiff tokenizer)
            from seqdiff.registry import load

            return load("seqdiff.commands", command, section=f"seqdiff {command}")(rest)
        print(f"error: unknown command {command!r}; choose one of {', '.join([*COMMANDS, 'import', 'export', *registered])}",
              file=sys.stderr)
        return 2
    debug = "--debug" in rest
    rest = [a for a in rest if a != "--debug"]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        rest.append("debug=true")
    base: list[str] = []
    if command != "train":
        # sample/eval write next to the checkpoint, not into a fresh run directory.
        rest = ["hydra.output_subdir=null", "hydra.run.dir=.", *rest]
        from seqdiff.cli.reopen import base_overrides

        base = base_overrides(rest, config_dir())  # the checkpoint's group options (seqdiff/cli/reopen.py)
    return _run_hydra(command, rest, base)


def _run_hydra(command: str, overrides: list[str], base: list[str] = ()) -> int:
    import hydra
    import torch
    from omegaconf import DictConfig

    # Subnormal floats (Adam moments, gradients of a zero-initialised head, fading SSM
    # adjoints) run ~100x slower on x86; whole CPU training steps were 2x slower. The
    # flag is per thread and OpenMP workers inherit it when they are created, so set it
    # before torch starts its thread pool.
    torch.set_flush_denormal(True)

    from seqdiff.cli.commands import dispatch

    status = {"code": 0}

    @hydra.main(config_path=str(config_dir()), config_name="config", version_base="1.3")
    def _task(cfg: DictConfig) -> None:
        status["code"] = dispatch(cfg)

    saved = sys.argv
    # Hydra's argparse takes the overrides as one run of positionals: value-less flags
    # such as -m/--multirun go in front of command=..., wherever the user wrote them.
    flags = [a for a in overrides if a in ("-m", "--multirun", "-r", "--run", "--resolve")]
    rest = [a for a in overrides if a not in flags]
    # ``base`` goes before command=..., the user's overrides after it (seqdiff/cli/reopen.py tells them apart)
    sys.argv = [f"seqdiff {command}", *flags, *base, f"command={command}", *rest]
    try:
        with _one_line_hydra_errors([*base, *overrides]):
            _task()
    finally:
        sys.argv = saved
    return status["code"]


@contextlib.contextmanager
def _one_line_hydra_errors(overrides: list[str]):
    """Hydra reports a bad override or config option over several lines (and a traceback
    for some); report it as one ``error:`` line with exit status 2 instead. With
    ``--debug`` (``HYDRA_FULL_ERROR=1``) Hydra re-raises and the traceback is shown.
    Anything that is not a configuration problem keeps Hydra's own report."""
    import hydra._internal.hydra as hydra_core
    import hydra._internal.utils as hydra_utils

    original = hydra_utils.run_and_report

    def run_and_report(func):
        try:
            return func()
        except Exception as ex:
            if os.environ.get("HYDRA_FULL_ERROR") == "1":
                raise
            msg = describe_hydra_error(ex, overrides)
            if msg is None:
                return original(lambda ex=ex: _reraise(ex))
            print(f"error: {msg}", file=sys.stderr)
            sys.exit(2)

    hydra_utils.run_and_report = run_and_report
    hydra_core.run_and_report = run_and_report
    try:
        yield
    finally:
        hydra_utils.run_and_report = original
        hydra_core.run_and_report = original


def _reraise(ex: BaseException):
    raise ex


def describe_hydra_error(ex: BaseException, overrides: list[str]) -> str | None:
    """One line for Hydra's configuration errors (None: not one of them)."""
    from hydra.errors import HydraException
    from omegaconf.errors import OmegaConfBaseException

    if not isinstance(ex, (HydraException, OmegaConfBaseException)):
        return None
    text = str(ex)
    from hydra.errors import OverrideParseException

    if isinstance(ex, OverrideParseException):
        return f"cannot parse the override {ex.override!r}: {_squash(ex.message)}"
    missing = re.search(r"Could not find '([^']+)'", text)
    if missing:  # an unknown option of a config group (backbone=..., experiment=...)
        group, _, option = missing.group(1).rpartition("/")
        if group:
            root = config_dir()
            options = sorted(f.stem for f in (root / group).glob("*.yaml"))
            return (f"{group}={option}: no such option in {root / group} "
                    f"(available: {', '.join(options) or 'none'})")
    override = re.search(r"Could not (?:override|append to) '([^']+)'", text)
    cause = ex.__cause__
    if override and cause is not None:
        key = override.group(1)
        if "not in struct" in str(cause) or "Key '" in str(cause):
            parent, _, leaf = key.rpartition(".")
            known = _known_keys(parent, overrides, key)
            hint = f"; {parent or 'the config'} has: {', '.join(known)}" if known else ""
            close = difflib.get_close_matches(leaf, known, n=1)
            did = f" (did you mean {parent + '.' if parent else ''}{close[0]}?)" if close else ""
            return f"{key}: no such key{did}{hint}; to add a new key write +{key}=..."
        return f"{key}: {_squash(str(cause))}"
    parts = [_squash(text)]
    if cause is not None and str(cause) and str(cause) not in text:
        parts.append(_squash(str(cause)))
    return "; ".join(p for p in parts if p)


def _squash(s: str) -> str:
    lines = [l.strip() for l in s.splitlines() if l.strip() and not l.strip().startswith(("full_key:", "object_type="))]
    return " ".join(lines)


def _known_keys(parent: str, overrides: list[str], bad: str) -> list[str]:
    """The keys of ``parent`` in the config composed without the bad override."""
    try:
        from hydra import compose, initialize_config_dir
        from hydra.core.global_hydra import GlobalHydra
        from omegaconf import DictConfig, OmegaConf

        GlobalHydra.instance().clear()
        keep = [o for o in overrides if o.split("=")[0].lstrip("+~") != bad and not o.startswith(("hydra.", "-"))]
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=keep)
        node = OmegaConf.select(cfg, parent) if parent else cfg
        return sorted(str(k) for k in node.keys()) if isinstance(node, DictConfig) else []
    except Exception:  # only a hint: the error line is printed without it
        return []


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
