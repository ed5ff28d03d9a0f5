"""The first slice through the real stack: register a dataset, read it back from the gateway."""

from __future__ import annotations

import json

import httpx
import pytest

from genomebus.infra.projection import NotYetProjected, wait_for_position
from genomebus.infra.readmodels.datasets import DatasetsProjection
from genomebus.producers.datasets import describe_dataset, register_dataset
from tests.integration.helpers import cli, new_dataset_id, topic_count

pytestmark = pytest.mark.integration


async def test_register_with_the_cli_then_query_the_gateway(stack):
    dataset_id = new_dataset_id()
    result = cli(stack, "dataset", "register", "--id", dataset_id, "--title", "Finnish WGS cohort",
                 "--duo", "DUO:0000042", "--keyword", "WGS", "--publisher", "THL", "--actor", "steward-7")
    assert result.returncode == 0, result.stderr
    assert "dataset.registered" in result.stdout

    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        response = await http.get(f"/datasets/{dataset_id}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == dataset_id
    assert body["title"] == "Finnish WGS cohort"
    assert body["data_use"] == ["DUO:0000042"]
    assert body["keywords"] == ["WGS"]
    assert body["state"] == "registered"
    assert [e["type"] for e in body["history"]] == ["dataset.registered"]
    assert body["history"][0]["actor"] == "steward-7"


@pytest.mark.parametrize(
    ("args", "complaint"),
    [
        (["--id", "FI-DATASET-1", "--title", "t", "--duo", "DUO:0000042"], "dataset_id"),
        (["--id", "GDI-fi-DATASET-1", "--title", "t", "--duo", "DUO:0000042"], "dataset_id"),
        (["--id", "GDI-FI-DATASET-1", "--title", "t", "--duo", "DUO:42"], "data_use"),
        (["--id", "GDI-FI-DATASET-1", "--title", "", "--duo", "DUO:0000042"], "title"),
    ],
)
async def test_bad_registration_is_a_clear_error_and_publishes_nothing(stack, args, complaint):
    before = await topic_count(stack, "reception")
    result = cli(stack, "dataset", "register", *args)
    assert result.returncode == 2
    assert complaint in result.stderr
    assert "invalid" in result.stderr
    assert await topic_count(stack, "reception") == before


async def test_sdk_registration_is_a_command_readable_once_decided(stack, publisher):
    dataset_id = new_dataset_id()
    dataset = describe_dataset(dataset_id=dataset_id, title="SDK dataset", data_use=("DUO:0000006",))
    outcome = await register_dataset(stack, dataset, actor="pipeline-1", publisher=publisher)
    assert outcome.accepted and outcome.outcome_type == "dataset.registered"
    assert outcome.published.topic == stack.topic("reception.commands")
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:  # read-your-writes, no waiting
        assert (await http.get(f"/datasets/{dataset_id}")).json()["data_use"] == ["DUO:0000006"]


async def test_read_your_writes_times_out_for_an_offset_not_yet_written(stack, pool):
    with pytest.raises(NotYetProjected):
        await wait_for_position(pool, DatasetsProjection, stack.topic("reception"), 0, 10**12, 0.3)


async def test_gateway_service_info_follows_the_ga4gh_spec(stack):
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        response = await http.get("/service-info")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    info = response.json()
    for field in ("id", "name", "type", "organization", "version"):
        assert field in info
    assert set(info["type"]) == {"group", "artifact", "version"}
    assert set(info["organization"]) == {"name", "url"}


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/datasets/GDI-FI-DATASET-999999999", 404, "dataset-not-found"),
        ("/datasets/not-a-pid", 400, "invalid-dataset-id"),
        ("/datasets?limit=0", 400, "invalid-request"),
        ("/no/such/route", 404, "not-found"),
    ],
)
async def test_gateway_errors_are_problem_documents(stack, path, status, code):
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        response = await http.get(path)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    assert problem["type"].endswith("/" + code)
    assert problem["title"] and problem["detail"]


async def test_gateway_health_and_dataset_listing(stack):
    async with httpx.AsyncClient(base_url=stack.gateway_url) as http:
        assert (await http.get("/health")).json() == {"status": "ok", "database": "ok"}
        page = (await http.get("/datasets", params={"limit": 2})).json()
    assert page["limit"] == 2
    assert page["total"] >= len(page["datasets"])


def test_status_reports_every_component_healthy(stack):
    result = cli(stack, "status", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    report = json.loads(result.stdout)
    assert report["gateway_url"] == stack.gateway_url
    assert {"seaweedfs", "postgres", "kafka", "gateway", "projector"} <= set(report["components"])
    assert all(c["healthy"] for c in report["components"].values())
    assert report["topics"][stack.topic("reception")] >= 0
    assert "genomebus-projection-datasets" in report["consumer_groups"]
    assert "***" in report["components"]["postgres"]["address"]  # no password in status output


async def test_audit_history_reads_the_log(stack, publisher):
    dataset_id = new_dataset_id()
    dataset = describe_dataset(dataset_id=dataset_id, title="Audited", data_use=("DUO:0000042",))
    await register_dataset(stack, dataset, actor="auditor-test", publisher=publisher)
    result = cli(stack, "audit", "history", dataset_id, "--json")
    assert result.returncode == 0, result.stderr
    events = json.loads(result.stdout)
    assert [e["type"] for e in events] == ["dataset.register_requested", "dataset.registered"]
    assert [e["actor"] for e in events] == ["auditor-test", "auditor-test"]
    assert events[1]["causation_id"] == events[0]["id"]
    assert events[1]["data"]["dataset_id"] == dataset_id
    missing = cli(stack, "audit", "history", "GDI-FI-DATASET-000000000")
    assert missing.returncode == 4
