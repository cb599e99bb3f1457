"""arc24: teach small language models to solve ARC-AGI puzzles, from data to Kaggle submission."""

__version__ = "0.1.0"
