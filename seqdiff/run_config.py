"""What a reopened run (``seqdiff sample`` / ``seqdiff eval``) is configured with: the checkpoint's
own configuration, with what the user changed on top of it.

A checkpoint fixes what its weights mean, and refuses changes to that by name:

- ``domain`` and ``backbone``: nothing may change (the vocabulary, the network the weights fit);
- ``process``: its kind (``_target_``) and ``time_conditioning`` (what the backbone was trained to
  see) are fixed; the evaluation-side keys ``num_steps``, ``estimator``, ``t_min`` and ``schedule``
  (and SEDD's ``predictor`` and ``mass_conserving``: which sampler's bound) may change, and so may the keys that only shape the training loss (ENS's ``corruption`` and
  ``ens_*``: evaluation masks uniformly whatever they say). See :data:`PROCESS_FREE`.

Everything else starts from the checkpoint's own section, never from the defaults:

- a config group the user does not name keeps the checkpoint's section (its sampler too: an AR
  run samples with its own autoregressive sampler without being told);
- a group named with the checkpoint's own option (``data=fasta`` on a FASTA run) keeps it too;
- a group named with another option (``data=markov``, ``sampler=eags``) starts from that
  option's defaults, the freshly composed section;
- then each key the user set (``data.fasta=other.fa``) is applied on top, with its composed
  value; ``~key`` deletes it.

Sections the checkpoint does not have (an import without a sampler) are the composed ones.
The ``trainer`` section is not the model's: at sample/eval time only its ``device`` and
``num_threads`` are read, from the command line (this machine's), never from the checkpoint.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from seqdiff.errors import ConfigError

#: Sections of the run that the override policy rebuilds.
SECTIONS = ("domain", "data", "backbone", "process", "sampler")
#: Sections a checkpoint fixes entirely.
FIXED = ("domain", "backbone")
#: Process keys a reopened run may change: evaluation-side, or training-loss-only.
PROCESS_FREE = ("num_steps", "estimator", "t_min", "schedule",
                "predictor", "mass_conserving",  # SEDD: which sampler's bound, which reading of the scores
                "corruption", "ens_temperature", "ens_entropy", "ens_groups", "ens_weighting")


@dataclass(frozen=True)
class Override:
    """One command-line change, as the user typed it (``text``).

    ``key``: a dotted key (``data.fasta``) or, with ``group``, a config group (``data``,
    ``process/schedule``) whose chosen option is ``option``; ``delete``: ``~key``.
    """

    text: str
    key: str
    group: bool = False
    option: str | None = None
    delete: bool = False

    @property
    def path(self) -> list[str]:
        """The dotted path it changes (``process/schedule`` -> ``process.schedule``)."""
        return self.key.replace("/", ".").split(".")

    @property
    def section(self) -> str:
        return self.path[0]


def reopened_config(saved: Mapping[str, Any], composed: Mapping[str, Any], overrides: Sequence[Override],
                    choices: Mapping[str, str | None], *, command: str = "eval") -> dict:
    """The configuration to run: ``saved`` (the checkpoint's) with ``overrides`` on top.

    ``composed``: the configuration composed for this command, as plain values, with the
    checkpoint's group options as the base (so that its keys exist); ``choices``: the
    checkpoint's option of each group (``{"data": "fasta", ...}``; a group missing here counts as
    another option). Raises a one-line :class:`ConfigError` naming the override for a change the
    checkpoint fixes.
    """
    out = copy.deepcopy(dict(saved))
    for sec in SECTIONS:
        if not isinstance(out.get(sec), dict) and isinstance(composed.get(sec), dict):
            out[sec] = copy.deepcopy(composed[sec])  # e.g. an import that has no sampler section
    mine = [o for o in overrides if o.section in SECTIONS]
    for o in mine:
        if o.section in FIXED:
            raise ConfigError(f"{command}: cannot override {o.text!r}: the checkpoint fixes the {o.section}")
    # groups first, outermost first (process before process/schedule), then keys in the order given
    for o in sorted((o for o in mine if o.group), key=lambda o: len(o.path)):
        if o.option == choices.get(o.key):
            continue  # the checkpoint's own option: its section stays
        fresh = _get(composed, o.path)
        if o.section == "process":
            _check_process(out["process"], fresh if len(o.path) == 1 else None, o, command)
        _set(out, o.path, copy.deepcopy(fresh), delete=fresh is None)
    for o in (o for o in mine if not o.group):
        if o.section == "process":
            _check_process_key(o, command)
        _set(out, o.path, None if o.delete else copy.deepcopy(_get(composed, o.path)), delete=o.delete)
    return out


def _check_process(saved: dict, fresh: dict | None, o: Override, command: str) -> None:
    """``process=OPTION``: another option is fine if only its free keys differ."""
    if fresh is None:  # process/schedule=...: a free key
        return
    if fresh.get("_target_") != saved.get("_target_"):
        raise ConfigError(f"{command}: cannot override {o.text!r}: the checkpoint's process is {saved.get('_target_')} "
                          f"(only process.{', process.'.join(PROCESS_FREE[:4])} may change)")
    for key in sorted(set(saved) | set(fresh)):
        if key != "_target_" and key not in PROCESS_FREE and saved.get(key) != fresh.get(key):
            raise ConfigError(f"{command}: cannot override {o.text!r}: it changes process.{key} "
                              f"({saved.get(key)!r} -> {fresh.get(key)!r}), which the checkpoint fixes")


def _check_process_key(o: Override, command: str) -> None:
    leaf = o.path[1] if len(o.path) > 1 else ""
    if leaf == "time_conditioning":
        raise ConfigError(f"{command}: cannot override {o.text!r}: time_conditioning is fixed by the checkpoint "
                          "(the backbone was trained with it)")
    if leaf not in PROCESS_FREE:
        raise ConfigError(f"{command}: cannot override {o.text!r}: the checkpoint fixes the process "
                          f"(only process.{', process.'.join(PROCESS_FREE[:4])} may change)")


def _get(node: Any, path: Sequence[str]) -> Any:
    for part in path:
        if isinstance(node, Mapping):
            node = node.get(part)
        elif isinstance(node, list) and part.lstrip("-").isdigit() and -len(node) <= int(part) < len(node):
            node = node[int(part)]
        else:
            return None
    return node


def _set(root: dict, path: Sequence[str], value: Any, *, delete: bool = False) -> None:
    node: Any = root
    for part in path[:-1]:
        if isinstance(node, list) and part.lstrip("-").isdigit():
            node = node[int(part)]
            continue
        if not isinstance(node.get(part), (dict, list)):
            if delete:
                return
            node[part] = {}
        node = node[part]
    last = path[-1]
    if isinstance(node, list):
        node[int(last)] = value
    elif delete:
        node.pop(last, None)
    else:
        node[last] = value


def reconfigure(run: Any, config: dict) -> None:
    """Give ``run`` (:class:`seqdiff.run.Run`) ``config``: its process rebuilt if that section
    changed, its data source rebuilt on next access if that one did."""
    from seqdiff.utils.instantiate import instantiate

    if config.get("process") != run.config.get("process"):
        run.process = instantiate(config["process"], section="process", trusted=run.trusted, vocab=run.vocab)
    if config.get("data") != run.config.get("data"):
        run.__dict__.pop("data", None)  # Run.data is a cached_property: rebuilt from the new section
    run.config = config
