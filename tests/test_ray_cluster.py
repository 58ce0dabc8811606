"""Issue 27, item 4: Ray with more than one node. A cluster of a head and two worker nodes on
this machine (Ray's own `ray.cluster_utils.Cluster`, every node on 127.0.0.1) runs a suite;
one node is removed while both run a job; the run ends with every job once, nothing failed,
and the per-episode accuracies of a local run."""

from __future__ import annotations

import threading
import time
from collections import Counter
from pathlib import Path

import pytest

from bench.cli import main
from bench.tracking import Tracker
from bench.tracking.records import JOB_KEY, TAG
from tests import processes

pytestmark = pytest.mark.integration

SUITE = """
name: nodes
seeds: [0, 1]
datasets: [{name: glyphs, way: 3, shot: 1, query: 2}]
train: {steps: 150, meta_batch: 1, checkpoint_every: 10}
eval: {episodes: 4}
baselines: [protonet, maml]
threats: [clean, {name: fgsm, params: {eps: 4/255}}]
"""


def per_episode(uri: str) -> dict[tuple[str, str, str], list[float]]:
    return processes.per_episode(uri, "nodes")


def remove_a_busy_node(ray, cluster, node, removed: threading.Event, timeout: float = 300) -> None:
    """Once every CPU of the cluster runs a job (both worker nodes busy), remove ``node``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ray.available_resources().get("CPU", 0) == 0 and ray.cluster_resources().get("CPU", 0) == 2:
            cluster.remove_node(node, allow_graceful=False)
            removed.set()
            return
        time.sleep(0.05)


def test_a_suite_on_a_multi_node_cluster_survives_losing_a_node(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                glyphs) -> None:
    ray = pytest.importorskip("ray")
    from ray.cluster_utils import Cluster

    suite = processes.suite_in_workdir(tmp_path, monkeypatch, "nodes.yaml", SUITE)
    # Every node on 127.0.0.1 only: Ray otherwise rewrites a loopback address into this machine's
    # network address when a driver connects (`ray._private.services.resolve_ip_for_localhost`).
    monkeypatch.setenv("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")  # for the nodes' processes
    monkeypatch.setattr("ray._private.ray_constants.ENABLE_RAY_CLUSTER", False)  # for this one
    assert main(["run", str(suite), "--no-progress", "--tracking-uri", "sqlite:///local.db"]) == 0
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "node_ip_address": "127.0.0.1",
                                                            "include_dashboard": False})
    nodes = [cluster.add_node(num_cpus=1, node_ip_address="127.0.0.1") for _ in range(2)]
    cluster.wait_for_nodes()
    ray.init(address=cluster.address, log_to_driver=False)
    removed = threading.Event()
    remover = threading.Thread(target=remove_a_busy_node, args=(ray, cluster, nodes[0], removed), daemon=True)
    try:
        remover.start()
        assert main(["run", str(suite), "--no-progress", "--backend", "ray", "--tracking-uri", "sqlite:///ray.db"]) == 0
    finally:
        ray.shutdown()
        cluster.shutdown()
    assert removed.is_set(), "the run ended before both nodes were busy at once"
    runs = Tracker("sqlite:///ray.db", "nodes", create=False).runs()
    assert Counter(r.info.status for r in runs) == {"FINISHED": 12}  # none FAILED: the lost job ran again
    assert set(Counter(r.data.tags[TAG + JOB_KEY] for r in runs).values()) == {1}
    assert per_episode("sqlite:///ray.db") == per_episode("sqlite:///local.db")
