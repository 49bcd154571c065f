"""``eval.protocol`` (``seqdiff eval``): score a run under a published evaluation protocol.

A protocol turns the composed ``data`` section (e.g. ``data=text data.corpus.path=FILE``) into
the data source the protocol prescribes; the evaluator is unchanged. The row length is the
checkpoint's trained ``data.seq_len`` (MDLM-OWT: 1024). Protocols are what installed packages
register in the ``seqdiff.protocols`` entry point group (:mod:`seqdiff.registry`):

- ``mdlm_zero_shot`` (the text recipe, ``recipes/text/zero_shot.py``): MDLM's zero-shot
  likelihood rows; the detokeniser is ``eval.protocol_dataset`` (``auto``: from the file name).
"""

from __future__ import annotations

import dataclasses
from typing import Any

from seqdiff import registry
from seqdiff.errors import ConfigError
from seqdiff.eval.report import EvalConfig
from seqdiff.run_config import reconfigure

GROUP = "seqdiff.protocols"


def apply_protocol(exp: Any, ev: EvalConfig, *, num_samples_given: bool) -> EvalConfig:
    """Replace ``exp``'s data by the protocol's; returns the config to evaluate with (the protocol
    done, and no samples unless ``eval.num_samples`` was given). ``ev`` as is without a protocol."""
    name = ev.protocol
    if not name:
        return ev
    known = registry.names(GROUP)
    if name not in known:
        raise ConfigError(f"eval.protocol={name!r}: unknown; choose one of {', '.join(known) or '(none is registered)'}")
    trained = (exp.checkpoint.config.get("data") if exp.checkpoint is not None else None) or exp.config.get("data") or {}
    seq_len = int(trained.get("seq_len") or 1024)
    data = registry.load(GROUP, name, section="eval.protocol")(
        dict(exp.config.get("data") or {}), dataset=ev.protocol_dataset, seq_len=seq_len)
    reconfigure(exp, {**exp.config, "data": data})
    ev = dataclasses.replace(ev, protocol=None)
    if not num_samples_given:
        print(f"eval.protocol={name}: likelihood only (eval.num_samples=N to also draw samples)")
        ev = dataclasses.replace(ev, num_samples=0)  # a likelihood protocol; eval.num_samples=N also samples
    return ev
