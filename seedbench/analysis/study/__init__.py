"""Whole seed studies: how the spread splits into seed sources, how many seeds a claim needs, when to stop.

variance (decomposition of a crossed init x data-order x augmentation design), power (seeds per
arm from a pilot, the minimal detectable effect) and sequential (group-sequential testing, the
analysis side of `seedbench sweep --until-decided`). Each builds on seedbench.analysis.stats and
knows nothing of tables, plots or the store.
"""
