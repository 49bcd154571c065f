"""Synthetic sources with exactly known statistics (the quickstart's default data)."""

from seqdiff_recipes.synthetic.data import MarkovData
from seqdiff_recipes.synthetic.markov import MarkovSource
from seqdiff_recipes.synthetic.species import SpeciesData

__all__ = ["MarkovData", "MarkovSource", "SpeciesData"]
