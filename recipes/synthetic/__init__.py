"""Synthetic sources with exactly known statistics (the quickstart's default data)."""

from seqdiff_recipes.synthetic.data import MarkovData
from seqdiff_recipes.synthetic.markov import MarkovSource

__all__ = ["MarkovData", "MarkovSource"]
