"""A second node beside the first: down/up and kill -9 of servers keep every event, file and row."""

from __future__ import annotations

import json
import os
import shutil
import signal
import time

import httpx
import pytest

from genomebus.infra.settings import Settings
from genomebus.infra.stack import pid_alive, read_state, start_detached, stop_stack
from tests.conftest import make_node_dir
from tests.integration.helpers import cli

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def second_node(stack):
    base = make_node_dir("genomebus-it-se-")
    settings = Settings(data_dir=base / "node", node_id="SE")
    start_detached(settings)
    yield settings
    stop_stack(settings.data_dir)
    shutil.rmtree(base, ignore_errors=True)


def register(settings: Settings, dataset_id: str) -> None:
    result = cli(settings, "dataset", "register", "--id", dataset_id, "--title", "Swedish cohort",
                 "--duo", "DUO:0000042")
    assert result.returncode == 0, result.stdout + result.stderr


def get_dataset(settings: Settings, dataset_id: str) -> httpx.Response:
    return httpx.get(f"{settings.gateway_url}/datasets/{dataset_id}", timeout=10)


def wait_for(predicate, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.2)


def test_two_nodes_run_side_by_side(stack, second_node):
    first, second = read_state(stack.data_dir), read_state(second_node.data_dir)
    assert first["gateway_url"] != second["gateway_url"]
    assert set(first["ports"].values()).isdisjoint(second["ports"].values())
    register(second_node, "GDI-SE-DATASET-001")
    assert get_dataset(second_node, "GDI-SE-DATASET-001").status_code == 200
    assert httpx.get(f"{stack.gateway_url}/datasets/GDI-SE-DATASET-001").status_code == 404


def test_down_and_up_keep_events_and_tables(second_node):
    register(second_node, "GDI-SE-DATASET-002")
    assert stop_stack(second_node.data_dir)
    state = read_state(second_node.data_dir)
    assert state["status"] == "stopped"
    assert not any(pid_alive(c.get("pid")) for c in state["components"].values())

    start_detached(second_node)
    assert get_dataset(second_node, "GDI-SE-DATASET-002").json()["title"] == "Swedish cohort"
    history = cli(second_node, "audit", "history", "GDI-SE-DATASET-002", "--json")
    assert [e["type"] for e in json.loads(history.stdout)] == ["dataset.register_requested", "dataset.registered"]
    register(second_node, "GDI-SE-DATASET-003")  # the restarted node takes new work


@pytest.mark.parametrize("server", ["kafka", "postgres", "seaweedfs"])
def test_a_killed_server_is_restarted_and_nothing_is_lost(second_node, server):
    pid = read_state(second_node.data_dir)["components"][server]["pid"]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: pid_alive(read_state(second_node.data_dir)["components"][server].get("pid"))
             and read_state(second_node.data_dir)["components"][server]["pid"] != pid)
    wait_for(lambda: cli(second_node, "status", "--json").returncode == 0)
    assert get_dataset(second_node, "GDI-SE-DATASET-001").status_code == 200
    dataset_id = f"GDI-SE-DATASET-1{['kafka', 'postgres', 'seaweedfs'].index(server)}"
    register(second_node, dataset_id)
    assert get_dataset(second_node, dataset_id).status_code == 200
    history = cli(second_node, "audit", "history", "GDI-SE-DATASET-001", "--json")
    assert [e["type"] for e in json.loads(history.stdout)] == ["dataset.register_requested", "dataset.registered"]
