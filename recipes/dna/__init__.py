"""DNA recipe: genome FASTA/BED windows, a DNA tokenizer, RC augmentation, sample
statistics, region infilling and the HG38 download (``seqdiff download hg38``)."""

from seqdiff_recipes.dna.data import FastaData
from seqdiff_recipes.dna.domain import DNADomain

__all__ = ["DNADomain", "FastaData"]
