"""Aliases are unique per node, on the real stack: DRS and htsget resolve an object by its alias.

One alias, two datasets: the second file is refused ``alias_taken`` naming the holder's accession,
through the CLI as a submitter sees it; the same file sent again with its own alias is accepted.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest

from genomebus.producers.commands import wait_for_outcome
from genomebus.producers.datasets import describe_dataset, register_dataset
from genomebus.producers.submit import submit_file
from genomebus.schemas.envelope import Envelope, new_envelope
from tests.integration.helpers import cli, new_dataset_id
from tests.integration.storage import BCF, VCF

pytestmark = pytest.mark.integration


async def registered(stack: Any, publisher: Any) -> str:
    dataset_id = new_dataset_id()
    outcome = await register_dataset(stack, describe_dataset(dataset_id=dataset_id, title="aliases",
                                                             data_use=("DUO:0000042",)),
                                     actor="steward-test", publisher=publisher)
    assert outcome.accepted, outcome
    return dataset_id


class SentTwice:
    """A publisher that sends each command twice (a client that retried): two commands, one file."""

    def __init__(self, publisher: Any) -> None:
        self.publisher = publisher
        self.extra: list[Envelope[Any]] = []

    async def publish(self, envelope: Envelope[Any]) -> Any:
        again = new_envelope(envelope.data, source=envelope.source, actor=envelope.actor)
        self.extra.append(again)
        await self.publisher.publish(again)
        return await self.publisher.publish(envelope)


async def test_an_alias_names_one_file_of_the_node(stack, publisher):
    alias = f"proband-{uuid.uuid4().hex[:8]}"
    first, second = await registered(stack, publisher), await registered(stack, publisher)

    # The same file sent twice with its alias, back to back: both commands accepted, one file.
    twice = SentTwice(publisher)
    held = await submit_file(stack, first, VCF, alias=alias, actor="seq-centre", publisher=twice)
    [extra] = twice.extra
    earlier = await wait_for_outcome(stack, extra.id)
    assert earlier.accepted and earlier.outcome_type == "file.uploaded", earlier
    assert held.outcome is not None
    # submit_file waits command_timeout_s; on a busy stack the outcome may still be pending then: wait for it.
    decided = held.outcome if held.outcome.accepted else await wait_for_outcome(stack, held.outcome.command_id)
    assert decided.accepted, (decided.status, decided.reasons)
    body = httpx.get(f"{stack.gateway_url}/files/{held.file_id}").json()
    accession = body["accession"]
    assert body["alias"] == alias and accession.startswith(f"GDI-{stack.node_id}-FILE-")

    # Another file, another dataset, the same alias: refused, one line naming the holder.
    result = cli(stack, "submit", second, str(BCF), "--alias", alias, "--actor", "seq-centre")
    assert result.returncode == 5, result.stdout + result.stderr
    said = " ".join(result.stdout.split())
    assert (f"refused: alias_taken (alias '{alias}' is already {accession}'s, in {first}; "
            "submit with another --alias)") in said
    assert result.stderr.strip().splitlines()[-1] == "error: 1 of 1 files refused; the reasons are above"
    assert "Traceback" not in result.stderr

    # The same refusal from the SDK, as data.
    refused = await submit_file(stack, second, BCF, alias=alias, actor="seq-centre", publisher=publisher)
    assert refused.outcome is not None and not refused.outcome.accepted
    [reason] = refused.outcome.reasons
    assert reason.code == "alias_taken" and accession in reason.message
    assert refused.outcome.state == "registered"

    # Without the alias the second dataset takes the file.
    plain = await submit_file(stack, second, BCF, actor="seq-centre", publisher=publisher)
    assert plain.outcome is not None and plain.outcome.accepted, plain.outcome
