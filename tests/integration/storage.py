"""Archived datasets for the storage tests (DRS, htsget, the CLI's fetch): files submitted, archived and released.

``archived_dataset`` registers a dataset (controlled by default, or public), submits files (each
with an optional alias), waits until every file is archived, releases the dataset and returns
what a test needs: the dataset id and, per file name, its DRS id (the accession) and the bytes.
``granted`` gives a researcher an approved grant for a dataset, through the access API; ``http``
(a fixture), ``bearer`` and ``audit_events`` are what the storage tests ask the gateway and the log with.
"""

from __future__ import annotations

import asyncio
import itertools
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest

from genomebus.infra import kafka
from genomebus.infra.visas import issue_dev_token
from genomebus.producers.access import AccessClient
from genomebus.producers.datasets import build_command, register_dataset, release_dataset
from genomebus.producers.submit import submit_file
from genomebus.schemas.envelope import decode
from genomebus.schemas.reception import DatasetRegisterRequested
from tests.data import DATA
from tests.integration.helpers import new_dataset_id

BAM = DATA / "reads" / "htsnexus_test_NA12878.bam"
CRAM = DATA / "reads" / "htsnexus_test_NA12878.cram"
VCF = DATA / "variants" / "sample1-bcbio-cancer.vcf.gz"
BCF = DATA / "variants" / "sample1-bcbio-cancer.bcf"
BIG_VCF = DATA / "variants" / "HG02102.vcf.gz"
HMB_USE = {"terms": ["DUO:0000006"], "will_publish": True, "ethics_approval": True}
_dacs = itertools.count(1)


def new_dac() -> str:
    return f"S-DAC-{os.getpid()}-{next(_dacs)}"


def token(settings: Any, sub: str, *roles: str, ttl: int = 600) -> str:
    return issue_dev_token(settings, sub=sub, roles=list(roles), ttl_s=ttl)


def bearer(settings: Any, user: str) -> dict[str, str]:
    """The headers of a researcher ``user`` with a development token."""
    return {"Authorization": f"Bearer {token(settings, user, 'researcher')}"}


@pytest.fixture
async def http(stack: Any):  # noqa: ANN201 - a fixture; test modules import it by name
    """A client of the stack's gateway."""
    async with httpx.AsyncClient(base_url=stack.gateway_url, timeout=60) as client:
        yield client


async def audit_events(settings: Any) -> dict[str, dict[str, Any]]:
    """Every event on the audit topic, by id: its type and data."""
    out = {}
    async for record in kafka.read_log(settings, [settings.topic("audit")]):
        event = decode(record.value)
        out[str(event.id)] = {"type": event.type, **event.data.model_dump(mode="json")}
    return out


@dataclass
class StoredDataset:
    dataset_id: str
    dac_id: str
    objects: dict[str, str] = field(default_factory=dict)
    """File name → DRS id (the accession)."""
    paths: dict[str, Path] = field(default_factory=dict)

    def drs_id(self, path: Path) -> str:
        return self.objects[path.name]


async def archived_dataset(settings: Any, publisher: Any, files: list[tuple[Path, str | None]], *,
                           access_rights: str = "controlled", dac_id: str | None = None,
                           title: str = "storage test", **description: Any) -> StoredDataset:
    """A released dataset holding ``files`` (path, alias or None), every one archived.

    ``description``: more fields of its ``DatasetDescription`` (individuals, biosamples, keywords...).
    """
    dataset_id, dac = new_dataset_id(), dac_id or new_dac()
    description.setdefault("individuals", ({"id": "P1", "sex": "female"},))
    outcome = await register_dataset(settings, build_command(
        DatasetRegisterRequested, dataset_id=dataset_id, title=title, data_use=("DUO:0000006",), dac_id=dac,
        access_rights=access_rights, **description),
        actor="steward-test", publisher=publisher)
    assert outcome.accepted, outcome
    stored = StoredDataset(dataset_id, dac)
    submitted = []
    for path, alias in files:
        done = await submit_file(settings, dataset_id, path, alias=alias, actor="seq-centre", publisher=publisher)
        assert done.outcome.accepted, done.outcome
        submitted.append((path, done.file_id))
    async with httpx.AsyncClient(base_url=settings.gateway_url) as http:
        for path, file_id in submitted:
            for _ in range(900):
                body = (await http.get(f"/files/{file_id}")).json()
                if body.get("state") == "archived":
                    break
                assert body.get("state") != "qc_failed", body
                await asyncio.sleep(0.2)
            else:
                raise AssertionError(f"{path.name} was not archived in time: {body}")
            stored.objects[path.name] = body["accession"]
            stored.paths[path.name] = path
    released = await release_dataset(settings, dataset_id, actor="steward-test", publisher=publisher)
    assert released.accepted, released
    return stored


async def granted(settings: Any, user: str, stored: StoredDataset, *, days: float = 30) -> dict[str, Any]:
    """``user`` applies for ``stored``'s dataset and its DAC approves: the decision with its grant."""
    async with AccessClient(settings, token(settings, user, "researcher")) as researcher:
        application = await researcher.apply([stored.dataset_id], project_title="storage", purpose="read data",
                                             research_use=HMB_USE)
        await researcher.submit(application["id"])
    async with AccessClient(settings, token(settings, f"chair-{stored.dac_id}",
                                            f"dac_member:{stored.dac_id}")) as chair:
        return await chair.decide(application["id"], stored.dataset_id, "approve",
                                  expires_at=datetime.now(UTC) + timedelta(days=days))
