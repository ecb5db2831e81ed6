"""Statistics over a store's runs, in layers that import only downwards.

    stats/    the primitives: which runs count, intervals, pairwise tests, p-value correction,
              spread, across-task aggregates, ranks, equivalence
    study/    whole seed studies built on stats/: variance decomposition, power, sequential testing
    tables, plots, html, report    presentation of stats/ and study/ results
    api       the Python API (`seedbench.Store`), on top of the presentation; nothing here imports it
    units     which metrics are accuracies and how every layer shows them (in %); imports nothing heavy

tests/test_import_layers.py keeps the layers acyclic.
"""
