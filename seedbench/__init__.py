"""seedbench: is a training method really better? Seeds x models x datasets grids with honest statistics.

The library (data, models, init, optim, train, stats) works without machinable or Ray; only
seedbench.engine and seedbench.sweep.presets import machinable.
"""

__version__ = "0.1.0"
