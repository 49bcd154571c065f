"""``seqdiff import`` and ``seqdiff export``: public checkpoints in and out (no Hydra job).

    seqdiff import hf_dir=PATH out=DIR [tokenizer=DIR] [key=value ...]
    seqdiff export checkpoint=RUN out=DIR [ema=true|false]

``import`` reads a local Hugging Face directory (``config.json`` + ``model.safetensors``),
picks the format by ``model_type`` (:mod:`seqdiff.interop.registry`) and writes a normal run
directory; further ``key=value`` arguments are Hydra overrides of the run around the model
(e.g. ``data.fasta=...``). ``export`` writes a seqdiff DiT / Caduceus run in the public layout.
Errors are one ``error:`` line with exit status 2 (``--debug`` shows the traceback).
"""

from __future__ import annotations

import sys
import time
import traceback

from seqdiff.errors import ConfigError, SeqdiffError

RUN_SECTIONS = ("seed", "domain", "data", "backbone", "process", "sampler", "trainer")
USAGE = {
    "import": "seqdiff import hf_dir=PATH out=DIR [tokenizer=DIR] [seq_len=N (HyenaDNA)] [group=option key=value ...]",
    "export": "seqdiff export checkpoint=RUN_DIR out=DIR [ema=true|false]",
}


def compose_run(overrides: list[str]) -> dict:
    """The resolved run sections that ``seqdiff train OVERRIDES`` would use."""
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from seqdiff.cli.main import config_dir, describe_hydra_error

    GlobalHydra.instance().clear()
    try:
        with initialize_config_dir(config_dir=str(config_dir()), version_base="1.3"):
            cfg = compose(config_name="config", overrides=list(overrides))
        return {k: OmegaConf.to_container(cfg[k], resolve=True) if OmegaConf.is_config(cfg[k]) else cfg[k]
                for k in RUN_SECTIONS if k in cfg}
    except Exception as e:
        msg = describe_hydra_error(e, list(overrides))
        if msg is None:
            raise
        raise ConfigError(msg) from None
    finally:
        GlobalHydra.instance().clear()


def _parse(command: str, argv: list[str], known: tuple[str, ...]) -> tuple[dict[str, str], list[str]]:
    args, rest = {}, []
    for a in argv:
        key, eq, value = a.partition("=")
        if eq and key in known:
            args[key] = value
        elif a.startswith("-"):
            raise ConfigError(f"{command}: unknown option {a!r}; usage: {USAGE[command]}")
        else:
            rest.append(a)
    return args, rest


def _bool(value: str, key: str) -> bool:
    if value.lower() in ("true", "1", "yes"):
        return True
    if value.lower() in ("false", "0", "no"):
        return False
    raise ConfigError(f"{key}={value}: expected true or false")


def main(command: str, argv: list[str]) -> int:
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        if command == "import":
            run_import(argv)
        else:
            run_export(argv)
    except SeqdiffError as e:
        if debug:
            traceback.print_exc()
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def run_import(argv: list[str]) -> None:
    from seqdiff.interop.runs import import_checkpoint

    args, overrides = _parse("import", argv, ("hf_dir", "out", "tokenizer", "seq_len"))
    positional = [o for o in overrides if "=" not in o]  # seqdiff import HF_DIR OUT_DIR
    if positional and len(positional) <= 2 and not args.get("hf_dir"):
        args.update(dict(zip(("hf_dir", "out"), positional)))
        overrides = [o for o in overrides if "=" in o]
    for key in ("hf_dir", "out"):
        if not args.get(key):
            raise ConfigError(f"import: give {key}=...; usage: {USAGE['import']}")
    bad = [o for o in overrides if "=" not in o]
    if bad:
        raise ConfigError(f"import: cannot read {bad[0]!r}; usage: {USAGE['import']}")
    t0 = time.perf_counter()
    if _model_type(args["hf_dir"]) == "hyenadna":  # its own run around the model (an AR judge/baseline)
        from seqdiff.interop.hyenadna import import_hyenadna

        if overrides:
            raise ConfigError(f"import: a HyenaDNA import takes no overrides, got {overrides[0]!r}")
        seq_len = args.get("seq_len")
        try:
            seq_len = None if seq_len in (None, "") else int(seq_len)
        except ValueError:
            raise ConfigError(f"import: seq_len must be an integer, got {seq_len!r}") from None
        out = import_hyenadna(args["hf_dir"], args["out"], seq_len=seq_len)
    else:
        if args.get("seq_len"):
            raise ConfigError("import: seq_len= is for HyenaDNA imports; set data.seq_len=... instead")
        out = import_checkpoint(args["hf_dir"], args["out"], compose_run, tokenizer=args.get("tokenizer") or None,
                                overrides=overrides)
    from seqdiff.run import load

    exp = load(out)
    b = exp.config["backbone"]
    print(f"imported {args['hf_dir']} -> {out} ({b['_target_'].rsplit('.', 1)[-1]}, "
          f"{exp.model.num_parameters():,} parameters, vocab {exp.vocab.size}) in {time.perf_counter() - t0:.1f} s")
    print(f"next: seqdiff sample checkpoint={out} num_samples=4 | seqdiff eval checkpoint={out} ... | "
          f"seqdiff train ... init_from={out}")


def _model_type(hf_dir: str) -> object:
    from seqdiff.interop.hf import read_config

    return read_config(hf_dir).get("model_type")


def run_export(argv: list[str]) -> None:
    from seqdiff.interop.runs import export_run

    args, rest = _parse("export", argv, ("checkpoint", "out", "ema"))
    if rest:
        raise ConfigError(f"export: unknown argument {rest[0]!r}; usage: {USAGE['export']}")
    for key in ("checkpoint", "out"):
        if not args.get(key):
            raise ConfigError(f"export: give {key}=...; usage: {USAGE['export']}")
    out = export_run(args["checkpoint"], args["out"], ema=_bool(args.get("ema", "true"), "ema"))
    print(f"exported {args['checkpoint']} -> {out} (config.json, model.safetensors, tokenizer files)")
