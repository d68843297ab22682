"""Several Apache Kafka nodes on loopback sharing one KRaft quorum, for failure tests."""

from __future__ import annotations

import logging
import signal
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from services.embedded import free_port
from services.kafka_broker import DEFAULT_JVM_OPTIONS, ApacheKafka, random_cluster_id
from services.kafka_libs import KafkaUnavailable, kafka_libs

log = logging.getLogger(__name__)


class ApacheKafkaCluster:
    """``n`` combined broker/controller nodes on loopback sharing one KRaft quorum.

    Node ids are 1..n; each node has its own directory ``data_dir/node-<id>``. The cluster
    id is kept in ``data_dir/cluster-id`` so a restarted cluster keeps its log. For
    failure tests: ``kill(node)`` (SIGKILL), ``restart(node)``, ``leader_of(topic, p)``.
    """

    def __init__(
        self,
        data_dir: Path,
        n: int = 3,
        *,
        config: Mapping[str, Any] | None = None,
        jvm_options: tuple[str, ...] = DEFAULT_JVM_OPTIONS,
        libs: Path | None = None,
        start_timeout_s: float = 120.0,
    ) -> None:
        self.data_dir = Path(data_dir)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        id_file = self.data_dir / "cluster-id"
        if not id_file.is_file():
            id_file.write_text(random_cluster_id() + "\n")
        self.cluster_id = id_file.read_text().strip()
        self.start_timeout_s = start_timeout_s
        ports = {i: (free_port(), free_port()) for i in range(1, n + 1)}
        voters = ",".join(f"{i}@127.0.0.1:{controller}" for i, (_, controller) in ports.items())
        self.nodes: dict[int, ApacheKafka] = {
            i: ApacheKafka(
                self.data_dir / f"node-{i}",
                port,
                controller_port=controller,
                node_id=i,
                voters=voters,
                cluster_id=self.cluster_id,
                config=config,
                jvm_options=jvm_options,
                libs=libs,
                start_timeout_s=start_timeout_s,
            )
            for i, (port, controller) in ports.items()
        }

    @property
    def bootstrap(self) -> str:
        return ",".join(node.bootstrap for node in self.nodes.values())

    def node(self, node_id: int) -> ApacheKafka:
        return self.nodes[node_id]

    def start(self) -> str:
        kafka_libs(next(iter(self.nodes.values())).libs)  # once, before n JVMs want it
        for node in self.nodes.values():
            node.launch()  # all at once: the quorum needs a majority to elect a leader
        try:
            for node in self.nodes.values():
                node.wait_ready(brokers=len(self.nodes), timeout_s=self.start_timeout_s)
        except BaseException:
            self.stop()
            raise
        return self.bootstrap

    def kill(self, node_id: int) -> None:
        self.nodes[node_id].kill()

    def stop_node(self, node_id: int) -> None:
        self.nodes[node_id].stop()

    def restart(self, node_id: int, wait_for_all: bool = True) -> None:
        """Starts a stopped (or killed) node again on its data; waits until every node
        is a live broker again (or only this one, if ``wait_for_all`` is false)."""
        node = self.nodes[node_id]
        node.stop()
        node.launch()
        live = len([n for n in self.nodes.values() if n.alive()]) if wait_for_all else 1
        node.wait_ready(brokers=live)

    def alive(self) -> list[int]:
        return [i for i, node in self.nodes.items() if node.alive()]

    def _live_bootstrap(self) -> str:
        live = [node.bootstrap for node in self.nodes.values() if node.alive()]
        if not live:
            raise KafkaUnavailable("no node of the cluster is running")
        return ",".join(live)

    def describe(self, topic: str) -> dict[str, Any]:
        from kafka import KafkaAdminClient

        client = KafkaAdminClient(bootstrap_servers=self._live_bootstrap(), request_timeout_ms=5000)
        try:
            described = client.describe_topics([topic])
        finally:
            client.close()
        if not described:
            raise KeyError(topic)
        return dict(described[0])

    def leader_of(self, topic: str, partition: int = 0) -> int:
        """The node id leading ``topic``'s ``partition`` (-1 while it has none)."""
        for entry in self.describe(topic).get("partitions", []):
            if entry.get("partition_index") == partition:
                return int(entry.get("leader_id", -1))
        raise KeyError(f"{topic}-{partition}")

    def isr_of(self, topic: str, partition: int = 0) -> list[int]:
        for entry in self.describe(topic).get("partitions", []):
            if entry.get("partition_index") == partition:
                return sorted(int(i) for i in entry.get("isr_nodes", []))
        raise KeyError(f"{topic}-{partition}")

    def wait_for_leader(
        self, topic: str, partition: int = 0, not_on: int | None = None, timeout_s: float = 30.0
    ) -> int:
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                leader = self.leader_of(topic, partition)
                if leader >= 0 and leader != not_on:
                    return leader
            except Exception:  # noqa: BLE001 - metadata not there yet
                pass
            if time.monotonic() > deadline:
                raise TimeoutError(f"{topic}-{partition} has no leader (other than {not_on})")
            time.sleep(0.2)

    def stop(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and node.process.poll() is None:
                node.process.send_signal(signal.SIGTERM)  # all at once: the quorum shrinks together
        for node in self.nodes.values():
            node.stop(timeout_s=20.0)
