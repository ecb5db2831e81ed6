"""Engines that execute a grid's pending cells. Only this package (and components/) imports machinable."""

from seedbench.engine.store_context import open_store, project_root, store_dir

__all__ = ["open_store", "project_root", "store_dir"]
