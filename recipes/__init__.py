"""Domain recipes: tokenizers, data and domain metrics built on the ``seqdiff`` core.

Recipes import the core; the core never imports recipes.
"""
