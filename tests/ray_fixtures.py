"""One local Ray cluster per test session, shared by the engine tests (import the fixture from here).

The head node declares 2 CPUs and {"IPU": 1}; the multi-node test adds (and kills) a second node
itself. The test process is connected as a driver, so in-process sweeps reuse the session's workers
(torch is imported once per worker, not once per test); CLI subprocesses join with --ray-address.
Node deaths are detected within about a second (fast health checks), not Ray's default 30 s or so.
"""

from __future__ import annotations

import os

import pytest

HEAD_RESOURCES = {"IPU": 1}
FAST_HEALTH = {"health_check_period_ms": 500, "health_check_failure_threshold": 3, "health_check_initial_delay_ms": 0}


@pytest.fixture(scope="session")
def ray_cluster():
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    os.environ.setdefault("OMP_NUM_THREADS", "1")
    cluster = Cluster(
        initialize_head=True,
        connect=False,
        head_node_args={"num_cpus": 2, "resources": HEAD_RESOURCES, "object_store_memory": 100 * 1024**2, "_system_config": FAST_HEALTH},
    )
    ray.init(address=cluster.address, log_to_driver=False, namespace="seedbench")
    try:
        yield cluster
    finally:
        ray.shutdown()
        cluster.shutdown()
