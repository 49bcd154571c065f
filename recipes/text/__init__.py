"""Text recipe: tokenizers (char, byte, BPE, WordPiece, GPT-2, BERT, any HF directory),
corpora (files, directories, JSONL; wrap/pad; explicit BOS/EOS policy), text sample
metrics and a Hugging Face causal-LM judge, and ``seqdiff tokenizer train``."""

from seqdiff_recipes.text.data import TextData
from seqdiff_recipes.text.domain import TextDomain
from seqdiff_recipes.text.pairs import PairData
from seqdiff_recipes.text.tokenizers import TextTokenizer

__all__ = ["PairData", "TextData", "TextDomain", "TextTokenizer"]
