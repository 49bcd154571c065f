"""``seqdiff`` command line: ``seqdiff {train,sample,eval} [hydra overrides]``.

Hydra composes the configuration (so ``--help`` lists the config groups, ``-m``
sweeps, ``--cfg job`` prints the config); the command itself runs on the resolved
plain dict. Errors that are the user's to fix print one line and exit with status 2;
``--debug`` shows the traceback.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

COMMANDS = ("train", "sample", "eval")


def config_dir() -> Path:
    """``$SEQDIFF_CONFIG_DIR``, else the ``configs/`` tree next to the package."""
    env = os.environ.get("SEQDIFF_CONFIG_DIR")
    candidates = [Path(env)] if env else []
    candidates.append(Path(__file__).resolve().parents[2] / "configs")
    for c in candidates:
        if (c / "config.yaml").exists():
            return c
    raise SystemExit(
        "error: seqdiff configs not found (looked in "
        + ", ".join(str(c) for c in candidates)
        + "); install with `pip install -e .` from a clone, or set SEQDIFF_CONFIG_DIR"
    )


def _usage() -> str:
    root = config_dir()
    groups = []
    for d in sorted(p for p in root.rglob("*") if p.is_dir()):
        opts = sorted(f.stem for f in d.glob("*.yaml"))
        if opts:
            groups.append(f"  {d.relative_to(root).as_posix():<18} {', '.join(opts)}")
    return "\n".join(
        [
            "usage: seqdiff {train,sample,eval} [group=option ...] [key=value ...] [--debug]",
            "       seqdiff download hg38 --dir DIR [--source URL_OR_DIR]",
            "       seqdiff tokenizer train --corpus PATH --kind bpe --vocab-size N --out DIR",
            "",
            "commands:",
            "  train    train a model (no arguments: the quickstart on a synthetic DNA source)",
            "  sample   draw sequences from a run: seqdiff sample checkpoint=RUN_DIR num_samples=8",
            "  eval     NELBO with confidence intervals and sample statistics: seqdiff eval checkpoint=RUN_DIR",
            "  download fetch a dataset (resumable, verified): seqdiff download hg38 --dir data/hg38",
            "  tokenizer train a text tokenizer once and reuse it: seqdiff tokenizer train --corpus input.txt --out tok",
            "",
            "config groups (in " + str(root) + "):",
            *groups,
            "",
            "`seqdiff train --help` shows the composed configuration; `seqdiff train --cfg job` prints it.",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv or argv[0] in ("-h", "--help", "help"):
        print(_usage())
        return 0
    if argv[0] in ("-V", "--version"):
        from seqdiff import __version__

        print(f"seqdiff {__version__}")
        return 0
    command, rest = argv[0], argv[1:]
    if command == "download":  # plain argparse, no Hydra; located like a config _target_
        from seqdiff.utils.instantiate import locate

        return locate("recipes.dna.download.main", section="download")(rest)
    if command == "tokenizer":  # plain argparse too (recipes/text/cli.py)
        from seqdiff.utils.instantiate import locate

        return locate("recipes.text.cli.main", section="tokenizer")(rest)
    if command not in COMMANDS:
        print(f"error: unknown command {command!r}; choose one of {', '.join(COMMANDS)}, download, tokenizer", file=sys.stderr)
        return 2
    debug = "--debug" in rest
    rest = [a for a in rest if a != "--debug"]
    if debug:
        os.environ["HYDRA_FULL_ERROR"] = "1"
        rest.append("debug=true")
    if command != "train":
        # sample/eval write next to the checkpoint, not into a fresh run directory.
        rest = ["hydra.output_subdir=null", "hydra.run.dir=.", *rest]
    return _run_hydra(command, rest)


def _run_hydra(command: str, overrides: list[str]) -> int:
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
    sys.argv = [f"seqdiff {command}", f"command={command}", *overrides]
    try:
        _task()
    finally:
        sys.argv = saved
    return status["code"]


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
