"""``seqdiff sample`` / ``seqdiff eval`` compose on top of the checkpoint's own group options.

``seqdiff train`` records Hydra's group choices in the run config (``choices``: ``{"data":
"fasta", "sampler": "ancestral", ...}``). When a checkpoint is reopened, :func:`base_overrides`
turns them into ``group=option`` overrides that go before the user's (``seqdiff/cli/main.py``),
so that the composed configuration has the checkpoint's keys (``data.fasta=other.fa`` is a known
key on a FASTA run, not one of the default ``data=markov``). A group the user names is left to
the user. The policy that then puts the user's changes on top of the checkpoint's sections is
:func:`seqdiff.run_config.reopened_config`.

A checkpoint without recorded choices (older runs, imports: ``seqdiff import``) gets each
group's option inferred: the option whose ``_target_`` is the section's, and of those the one
whose values agree with the section most.
"""

from __future__ import annotations

import functools
import re
import warnings
from pathlib import Path
from typing import Any, Mapping, Sequence

from seqdiff.run_config import Override

#: Groups that are not part of a run's recorded options (an experiment is its groups).
NOT_RECORDED = ("experiment", "hydra")


def recorded_choices(hydra_choices: Mapping[str, Any]) -> dict[str, str]:
    """What ``seqdiff train`` saves as ``run_config["choices"]`` (Hydra's own groups left out)."""
    return {str(g): str(o) for g, o in hydra_choices.items() if o is not None and not str(g).startswith("hydra/")}


def checkpoint_choices(config: Mapping[str, Any], root: Path) -> dict[str, str]:
    """Each group's option for the run ``config``: recorded at training if that option still
    exists under ``root`` (the configs), else inferred from the section's ``_target_``."""
    saved = config.get("choices") if isinstance(config.get("choices"), Mapping) else {}
    out: dict[str, str] = {}
    for group in _groups(root):
        option = saved.get(group)
        if isinstance(option, str) and (root / group / f"{option}.yaml").is_file():
            out[group] = option
        else:
            guess = infer_option(config, root, group)
            if guess is not None:
                out[group] = guess
    return out


def base_overrides(args: Sequence[str], root: Path) -> list[str]:
    """``group=option`` of the checkpoint named by ``checkpoint=...`` in ``args``, for the groups
    the user does not name; [] when there is no readable checkpoint (the command reports that)."""
    from seqdiff.errors import SeqdiffError
    from seqdiff.io.checkpoint import load_checkpoint

    given = [a.split("=", 1)[1] for a in args if a.startswith("checkpoint=")]
    if not given or not given[-1]:
        return []
    try:
        config = load_checkpoint(given[-1], verify=False).config  # config.json only: hashes come later
    except (SeqdiffError, OSError):
        return []
    named = {_key(a) for a in args if not a.startswith("-")}
    out = []
    for group, option in checkpoint_choices(config, root).items():
        parts = group.split("/")
        # a group the user names, or one inside a group the user names (process=... drops process/schedule)
        if any("/".join(parts[: i + 1]) in named for i in range(len(parts))) or parts[0] in NOT_RECORDED:
            continue
        out.append(f"{group}={option}")
    return out


def user_overrides(task_overrides: Sequence[str], groups: Sequence[str]) -> list[Override]:
    """The user's overrides (those after ``command=``, where main.py puts them), parsed."""
    items = list(task_overrides)
    starts = [i for i, o in enumerate(items) if o.startswith("command=")]
    mine = items[starts[0] + 1:] if starts else items
    out = []
    for text in mine:
        key = _key(text)
        value = text.split("=", 1)[1] if "=" in text else None
        group = key in groups
        out.append(Override(text=text, key=key, group=group, option=value if group else None,
                            delete=text.startswith("~")))
    return out


def _key(arg: str) -> str:
    return arg.split("=", 1)[0].lstrip("+~").split("@", 1)[0]


def _groups(root: Path) -> list[str]:
    """Config groups under ``root`` (``data``, ``process/schedule``, ...), outermost first."""
    found = {p.parent.relative_to(root).as_posix() for p in root.rglob("*.yaml") if p.parent != root}
    return sorted((g for g in found if g.split("/")[0] not in NOT_RECORDED), key=lambda g: (g.count("/"), g))


def infer_option(config: Mapping[str, Any], root: Path, group: str) -> str | None:
    """The option of ``group`` that ``config``'s section was most likely composed from."""
    section: Any = config
    for part in group.split("/"):
        section = section.get(part) if isinstance(section, Mapping) else None
    if not isinstance(section, Mapping) or not section.get("_target_"):
        return None
    best, best_score = None, None
    for path in sorted((root / group).glob("*.yaml")):
        option = _option_section(str(root), group, path.stem)
        if not option or option.get("_target_") != section["_target_"]:
            continue
        # +1 for each of the option's keys with the section's value, -1 for each that differs or is absent
        # (an interpolation, ``${...}``, says nothing either way)
        agree = sum(1 if k in section and section[k] == v else -1 for k, v in option.items()
                    if k != "_target_" and not (isinstance(v, str) and "${" in v))
        score = (agree, -len(option))
        if best_score is None or score > best_score:
            best, best_score = path.stem, score
    return best


@functools.lru_cache(maxsize=None)
def _option_section(root: str, group: str, option: str) -> dict | None:
    """One option's section, unresolved (``${seed}`` stays a string): its YAML merged over the
    options of the same group that its defaults list names (``- fasta``, ``- _self_``); nested
    groups (``- schedule: loglinear``) are their own groups. Any other defaults syntax is left
    to Hydra's compose (slower: about 0.1 s an option)."""
    import yaml

    try:
        raw = yaml.safe_load((Path(root) / group / f"{option}.yaml").read_text(encoding="utf-8"))
    except Exception:  # an unreadable option is just not a candidate
        return None
    if not isinstance(raw, dict):
        return None
    defaults = raw.pop("defaults", None) or []
    names = [d for d in defaults if isinstance(d, str)]
    if any(n != "_self_" and not _SIBLING.fullmatch(n) for n in names):
        return _composed_section(root, group, option)
    if "_self_" not in names:
        names.append("_self_")  # Hydra >= 1.1: the option's own values win
    parts = []
    for name in names:
        part = raw if name == "_self_" else _option_section(root, group, name)
        if part is None:
            return None
        parts.append(part)
    merged: dict = {}
    for part in parts:
        merged = _merged(merged, part)
    return merged


def _merged(base: dict, top: dict) -> dict:
    """``top`` over ``base``, dicts merged key by key (as OmegaConf merges configs)."""
    out = dict(base)
    for k, v in top.items():
        out[k] = _merged(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


_SIBLING = re.compile(r"[A-Za-z0-9_.-]+")  # another option of the same group


def _composed_section(root: str, group: str, option: str) -> dict | None:
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # e.g. "Defaults list is missing `_self_`"
            if GlobalHydra.instance().is_initialized():  # inside the running app: its config search path
                cfg = compose(config_name=f"{group}/{option}")
            else:
                with initialize_config_dir(config_dir=root, version_base="1.3"):
                    cfg = compose(config_name=f"{group}/{option}")
        node = OmegaConf.to_container(cfg, resolve=False)
    except Exception:
        return None
    for part in group.split("/"):
        node = node.get(part) if isinstance(node, dict) else None
    return node if isinstance(node, dict) else None
