"""The results store as SQL: `runs` and `epochs` views over a cache of the run folders.

    from seedbench.store import Store, open_store_db
    Store("storage").query("SELECT model, avg(test_acc) FROM runs GROUP BY model")

The run folders (run.json, epochs.jsonl) stay the source of truth; see docs/store.md.
"""

from seedbench.record import EPOCHS_FILE, RUN_FILE
from seedbench.store.api import Skipped, Store, StoreWarning, default_cache_dir, open_store_db
from seedbench.store.cache import CACHE_DIRNAME, RefreshStats
from seedbench.store.schema import EPOCH_COLUMNS, run_columns
from seedbench.store.sql import where_sql

__all__ = [
    "CACHE_DIRNAME",
    "EPOCHS_FILE",
    "EPOCH_COLUMNS",
    "RUN_FILE",
    "RefreshStats",
    "Skipped",
    "Store",
    "StoreWarning",
    "default_cache_dir",
    "open_store_db",
    "run_columns",
    "where_sql",
]
