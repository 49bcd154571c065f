"""Synthetic sources with exactly known statistics (the quickstart's default data)."""

from recipes.synthetic.data import MarkovData
from recipes.synthetic.markov import MarkovSource

__all__ = ["MarkovData", "MarkovSource"]
