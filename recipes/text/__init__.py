"""Text recipe: tokenizers (char, byte, BPE, WordPiece, GPT-2, BERT, any HF directory),
corpora (files, directories, JSONL; wrap/pad; explicit BOS/EOS policy), text sample
metrics and a Hugging Face causal-LM judge, and ``seqdiff tokenizer train``."""

from recipes.text.data import TextData
from recipes.text.domain import TextDomain
from recipes.text.pairs import PairData
from recipes.text.tokenizers import TextTokenizer

__all__ = ["PairData", "TextData", "TextDomain", "TextTokenizer"]
