"""MDLM's per-dataset detokenisers, applied to every document before GPT-2 tokenisation.

The zero-shot datasets ship pre-tokenised text (" @-@ ", " n't", " . "); MDLM
(``mdlm:dataloader.py``, after SEDD / GPT-2's evaluation) undoes that spacing before tokenising,
and its zero-shot perplexities are measured on the result. The rules below are those rules, in
their order, restated as data: ``("str", old, new)`` is ``str.replace``, ``("re", pattern, repl)``
is ``re.sub``. They are reproduced as they are, quirks included (wikitext's second rule replaces
the literal text ``/' 5/`` with ``/'[0-9]/``), because the published numbers depend on them.
"""

from __future__ import annotations

import re
from typing import Callable

Rule = tuple[str, str, str]

WIKITEXT: tuple[Rule, ...] = (
    ("str", "s '", "s'"),  # contractions
    ("re", r"/' [0-9]/", r"/'[0-9]/"),
    ("str", " @-@ ", "-"),  # number separators
    ("str", " @,@ ", ","),
    ("str", " @.@ ", "."),
    ("str", " : ", ": "),  # punctuation
    ("str", " ; ", "; "),
    ("str", " . ", ". "),
    ("str", " ! ", "! "),
    ("str", " ? ", "? "),
    ("str", " , ", ", "),
    ("re", r"\(\s*([^\)]*?)\s*\)", r"(\1)"),  # brackets and quotes hug their content
    ("re", r"\[\s*([^\]]*?)\s*\]", r"[\1]"),
    ("re", r"{\s*([^}]*?)\s*}", r"{\1}"),
    ("re", r"\"\s*([^\"]*?)\s*\"", r'"\1"'),
    ("re", r"'\s*([^']*?)\s*'", r"'\1'"),
    ("str", "= = = =", "===="),  # headings
    ("str", "= = =", "==="),
    ("str", "= =", "=="),
    ("str", " \u00b0 ", "\u00b0"),
    ("str", " \n", "\n"),
    ("str", "\n ", "\n"),
    ("str", " N ", " 1 "),
    ("str", " 's", "'s"),
)

PTB: tuple[Rule, ...] = (
    ("str", " 's", "'s"),
    ("str", "s ' ", "s' "),
    ("str", " n't", "n't"),
    ("str", " \n ", "\n"),
    ("str", "\\/", "/"),
    *(("str", " N ", " 1 "),) * 10,  # repeated: overlapping " N N " needs several passes
    ("str", "$ 1", "$1"),
    ("str", "# 1", "#1"),
    ("str", "<unk>", "?"),
)

LM1B: tuple[Rule, ...] = (
    ("str", "http : / / ", "http://"),
    ("str", "https : / / ", "https://"),
    ("re", r" \'(\w+)", r"'\1"),
    ("re", r" (\w+) \. ", r" \1. "),
    ("re", r" (\w+) \.$", r" \1."),
    ("str", " ? ", "? "),
    ("re", r" \?$", "?"),
    ("str", " ! ", "! "),
    ("re", r" \!$", "!"),
    ("str", " , ", ", "),
    ("str", " : ", ": "),
    ("str", " ; ", "; "),
    ("str", " / ", "/"),
    ("re", r"\" ([^\"]+) \"", r'"\1"'),
    ("re", r"\' ([^\']+) \'", r"'\1'"),
    ("re", r"\( ([^\(\)]+) \)", r"(\1)"),
    ("re", r"\[ ([^\[\]]+) \]", r"[\1]"),
    ("str", "$ ", "$"),
    ("str", "\u00a3 ", "\u00a3"),
)


def apply_rules(text: str, rules: tuple[Rule, ...]) -> str:
    for kind, old, new in rules:
        text = text.replace(old, new) if kind == "str" else re.sub(old, new, text)
    return text


def lambada(text: str) -> str:
    """Curly quotes to straight ones; every passage starts on a new line."""
    return "\n" + text.replace("\u201c", '"').replace("\u201d", '"').strip()


#: ``dataset -> detokeniser`` (None: the text is used as it is, e.g. AG News, OpenWebText).
DETOKENIZERS: dict[str, Callable[[str], str] | None] = {
    "wikitext": lambda t: apply_rules(t, WIKITEXT),
    "ptb": lambda t: apply_rules(t, PTB),
    "lm1b": lambda t: apply_rules(t, LM1B),
    "lambada": lambada,
    "scientific_papers": lambda t: apply_rules(apply_rules(t, WIKITEXT), LM1B),
    "ag_news": None,
    "owt": None,
    "none": None,
}
