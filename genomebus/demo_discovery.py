"""The demo's discovery chapter: the Beacon answers by who asks, then one query across two nodes.

The released datasets are indexed by the indexer worker (``dataset.indexed`` on the discovery
topic says how many variants). Then one variant of them is asked for three times: anonymously
(yes or no per dataset), by carol, a registered researcher without a grant (counts: a small one
shown only as the threshold, a region's rounded up), and by alice, whom FI-DAC-1 granted dataset
001 in the access chapter (001's records, with carriers and allele frequency; counts elsewhere).

Then a second node, SE, started in the background right after FI (``SecondNode``: its own data
directory inside FI's, ``<FI's>/peers/SE``, node id SE, a dataset of the VCF 4.3 specification's
example calls registered, archived, released and indexed there), is added to FI's peers file, and
alice asks FI for a variant only SE holds, federated: FI answers for itself and for SE, a status per
node. SE keeps running after the demo (stopping FI stops it: it lives in FI's data directory), so a
second run finds it running with its dataset indexed.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
import time
from collections.abc import Callable, Collection
from pathlib import Path
from typing import Any

import httpx

from genomebus.infra.settings import Settings

SECOND_NODE = "SE"
SE_DATASET = "GDI-SE-DATASET-001"
SE_VCF = Path("variants") / "spec-v4.3.vcf.gz"
SE_VARIANT = "20:14370:G>A"
"""rs6054257 of the VCF specification's example: carried by two of its three samples; FI holds no chr20."""
REGION = "21:10,000,001-10,500,000"
SE_METADATA: dict[str, Any] = {
    "dataset_id": SE_DATASET,
    "title": "Swedish reference trio, chr20 calls (the VCF 4.3 specification's example)",
    "description": "Calls of three reference samples on chromosome 20, as the VCF 4.3 specification's example "
                   "file gives them; a stand-in for a Swedish node's holdings in the demo.",
    "data_use": ["DUO:0000042"],
    "dac_id": "SE-DAC-1",
    "keywords": ["WGS", "reference samples", "VCF specification"],
    "publisher": "Swedish demo node",
    "access_rights": "controlled",
    "individuals": [{"id": "NA00001", "sex": "female"}, {"id": "NA00002", "sex": "male"},
                    {"id": "NA00003", "sex": "female"}],
    "biosamples": [{"id": f"NA0000{i}-B01", "individual_id": f"NA0000{i}",
                    "sample_type": {"id": "UBERON:0000178", "label": "blood"}} for i in (1, 2, 3)],
}
INDEX_TIMEOUT_S = 240.0


# -- the second node --------------------------------------------------------------------------------------


class SecondNode:
    """SE beside FI: started, given its dataset and indexed in a background thread while FI's chapters run.

    Its data directory is inside FI's (``<FI's>/peers/SE``), so stopping FI (``genomebus down``) stops it
    too; it keeps running after the demo, and a second run finds it running with its dataset indexed.
    ``wait`` joins the thread and says what went wrong, if anything.
    """

    def __init__(self, fi: Settings, data: Path) -> None:
        from genomebus.infra.stack import PEERS_DIR

        self.data_dir = fi.data_dir.resolve() / PEERS_DIR / SECOND_NODE
        overrides: dict[str, Any] = {}
        if os.environ.get("GENOMEBUS_GATEWAY_PORT"):  # FI's fixed port is not SE's: let SE take a free one
            from genomebus.infra.stack import free_port

            overrides["gateway_port"] = free_port()
        self.settings = Settings(data_dir=self.data_dir, node_id=SECOND_NODE, profile="local", **overrides)
        self.vcf = data / SE_VCF
        self.gateway_url: str | None = None
        self.was_running = False
        self.started_in_s: float | None = None
        self.steps: list[str] = []
        self.indexed: Any = None
        self.error: str | None = None
        self._thread = threading.Thread(target=self._run, name="demo-second-node", daemon=True)

    def start(self) -> SecondNode:
        from genomebus.infra.stack import read_state, running_supervisor

        self.was_running = bool(running_supervisor(self.data_dir)) and \
            read_state(self.data_dir).get("status") == "running"
        self._thread.start()
        return self

    def wait(self, timeout: float) -> str | None:
        """None once SE is up with its dataset indexed; else why not."""
        self._thread.join(timeout)
        if self._thread.is_alive():
            return f"node {SECOND_NODE} was not ready within {timeout:.0f}s; see {self.data_dir / 'logs'}"
        return self.error

    def _run(self) -> None:
        from genomebus.infra.stack import start_detached

        try:
            if not self.vcf.is_file():
                raise FileNotFoundError(f"{self.vcf} is not there; set GENOMEBUS_DEMO_DATA to the folder that has "
                                        "variants/")
            self.data_dir.mkdir(parents=True, exist_ok=True)
            started = time.monotonic()
            self.gateway_url = start_detached(self.settings)
            self.started_in_s = time.monotonic() - started
            asyncio.run(self._populate())
        except Exception as exc:  # noqa: BLE001 - said by the chapter in one line, the demo then fails
            self.error = f"node {SECOND_NODE}: {type(exc).__name__}: {exc}"

    async def _populate(self) -> None:
        from genomebus.producers.datasets import release_dataset
        from genomebus.producers.metadata import describe_with_metadata
        from genomebus.producers.submit import submit_file

        async with httpx.AsyncClient(base_url=self.gateway_url or "", timeout=10) as http:
            state = await _dataset_state(http, SE_DATASET)
            if state is None:
                from genomebus.producers.datasets import register_dataset

                outcome = await register_dataset(self.settings, describe_with_metadata(SE_METADATA),
                                                 actor="demo-steward-se")
                if not outcome.accepted:
                    raise RuntimeError(f"{SE_DATASET} was not registered: {_reasons(outcome)}")
                self.steps.append("registered")
                state = "registered"
            if state == "registered":
                done = await submit_file(self.settings, SE_DATASET, self.vcf, actor="demo-sequencing-centre-se")
                if not done.skipped:
                    self.steps.append(f"{self.vcf.name} submitted")
                await _wait_for_file(http, done.file_id)
                released = await release_dataset(self.settings, SE_DATASET, actor="demo-steward-se")
                if not (released.accepted or released.state == "released"):
                    raise RuntimeError(f"{SE_DATASET} was not released: {_reasons(released)}")
                self.steps.append("released")
        self.indexed = (await wait_indexed(self.settings, [SE_DATASET], INDEX_TIMEOUT_S))[SE_DATASET]


async def _dataset_state(http: httpx.AsyncClient, dataset_id: str) -> str | None:
    response = await http.get(f"/datasets/{dataset_id}")
    return response.json().get("state") if response.status_code == 200 else None


async def _wait_for_file(http: httpx.AsyncClient, file_id: Any, timeout: float = 180.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        response = await http.get(f"/files/{file_id}")
        if response.status_code == 200 and response.json().get("state") in ("archived", "qc_failed"):
            return
        await asyncio.sleep(0.3)
    raise TimeoutError(f"file {file_id} was not archived within {timeout:.0f}s")


def _reasons(outcome: Any) -> str:
    return "; ".join(f"{r.code}: {r.message}" for r in outcome.reasons)


async def wait_indexed(settings: Settings, dataset_ids: Collection[str], timeout: float) -> dict[str, Any]:
    """The ``dataset.indexed`` event of each dataset, read from the node's discovery topic as it comes.

    ``dataset.index_failed`` ends the wait with its reasons; so does the timeout.
    """
    from genomebus.infra import kafka
    from genomebus.schemas.envelope import decode

    wanted = set(dataset_ids)
    deadline = time.monotonic() + timeout
    while True:
        found: dict[str, Any] = {}
        async for record in kafka.read_log(settings, [settings.topic("discovery")], idle_timeout=1.0):
            if record.key is None or record.key.decode() not in wanted:
                continue
            event = decode(record.value).data
            if event.type == "dataset.indexed":
                found[event.dataset_id] = event
            elif event.type == "dataset.index_failed":
                found.pop(event.dataset_id, None)
                reasons = "; ".join(f"{r.code}: {r.message}" for r in event.reasons)
                raise RuntimeError(f"{event.dataset_id} could not be indexed ({reasons})")
            elif event.type == "dataset.unindexed":
                found.pop(event.dataset_id, None)
        if wanted <= set(found):
            return found
        if time.monotonic() > deadline:
            raise TimeoutError(f"not indexed within {timeout:.0f}s: {', '.join(sorted(wanted - set(found)))}")
        await asyncio.sleep(0.5)


def add_peer(settings: Settings, name: str, beacon_url: str) -> Path:
    """Write ``name`` into the node's peers file (replacing an older entry of that name), atomically."""
    path = settings.beacon_peers_path
    assert path is not None  # the local profile always has one
    try:
        peers = json.loads(path.read_text())
    except (OSError, ValueError):
        peers = []
    peers = [p for p in peers if isinstance(p, dict) and p.get("name") != name] if isinstance(peers, list) else []
    # SE's development login issuer is its own: FI's researchers' tokens would be refused there
    peers.append({"name": name, "url": beacon_url, "forward_credentials": False})
    partial = path.with_suffix(".json.part")
    partial.write_text(json.dumps(peers, indent=2) + "\n")
    partial.replace(path)
    return path


# -- the chapter -------------------------------------------------------------------------------------------


def demo_variant(data: Path) -> str:
    """A SNV of NA18537 that HG02102 holds too (both in dataset 001, NA18537 also in 003), as chr:pos:REF>ALT."""
    import pysam

    with pysam.VariantFile(str(data / "variants" / "NA18537.vcf.gz")) as small, \
            pysam.VariantFile(str(data / "variants" / "HG02102.vcf.gz")) as big:
        first = None
        for record in small:
            if len(record.ref) != 1 or not record.alts or len(record.alts[0]) != 1:
                continue
            first = first or record
            if any(other.ref == record.ref and other.alts and other.alts[0] == record.alts[0]
                   for other in big.fetch(record.chrom, record.pos - 1, record.pos) if other.pos == record.pos):
                return f"{record.chrom}:{record.pos}:{record.ref}>{record.alts[0]}"
    if first is None:
        raise ValueError("NA18537.vcf.gz has no single-base variant")
    return f"{first.chrom}:{first.pos}:{first.ref}>{first.alts[0]}"


def discovery_story(settings: Settings, data: Path, dataset_ids: list[str], second: SecondNode,
                    say: Callable[[str], None], out: Callable[[str], None], hint: Callable[..., str]) -> bool:
    from genomebus.infra.visas import issue_dev_token

    variant = demo_variant(data)
    carol = issue_dev_token(settings, sub="carol", roles=["researcher"], ttl_s=3600)
    alice = issue_dev_token(settings, sub="alice", roles=["researcher"], ttl_s=3600)

    say(f"The indexer worker loads each released dataset's VCFs into the variant index ({', '.join(dataset_ids)}); "
        "dataset.indexed on the discovery topic says what it holds")
    try:
        indexed = asyncio.run(wait_indexed(settings, dataset_ids, INDEX_TIMEOUT_S))
    except (RuntimeError, TimeoutError) as exc:
        out(f"[red]   {exc}[/red]")
        return False
    for dataset_id in dataset_ids:
        e = indexed[dataset_id]
        out(f"   {dataset_id}: {_many(e.variants, 'variant')} from {_many(len(e.variant_files), 'VCF')} "
            f"({_many(e.samples, 'sample')}); {_many(e.individuals, 'individual')} described")

    say(f"Anyone may ask the node's Beacon v2 whether it holds a variant: `{hint(settings, 'discover', variant)}`")
    anonymous = _ask(settings, None, variant)
    _show(out, anonymous, "anonymous")

    say("carol, a registered researcher without a grant, asks the same, then for a 500 kb region, with her token "
        f"(`{hint(settings, 'discover', REGION)}` with GENOMEBUS_TOKEN set)")
    _show(out, _ask(settings, carol, variant), "carol")
    region = _ask(settings, carol, REGION)
    _show(out, region, "carol")

    say("alice, whom FI-DAC-1 granted GDI-FI-DATASET-001 in the access chapter, asks again: that dataset's records "
        "(through the enforcement point, audited); counts elsewhere")
    granted = _ask(settings, alice, variant)
    _show(out, granted, "alice")
    records = [rs for rs in granted.result_sets if rs.records]

    say(f"A second node, {SECOND_NODE}, beside FI (the demo starts it in the background at step 1 unless it runs), "
        f"holds {SE_DATASET}; FI adds it to its peers file (read again when it changes: no restart) and alice asks "
        f"both at once for {SE_VARIANT}: "
        f"`{hint(settings, 'discover', SE_VARIANT, '--federated')}`")
    problem = second.wait(timeout=INDEX_TIMEOUT_S + 180)
    if problem is not None:
        out(f"[red]   {problem}[/red]")
        return False
    how = ("it was already running" if second.was_running
           else f"started in {second.started_in_s:.0f}s while FI's chapters ran")
    done = f"; {SE_DATASET} {', '.join(second.steps)}" if second.steps else f"; {SE_DATASET} was already released"
    out(f"   {SECOND_NODE}: {how}, its gateway at {second.gateway_url}{done}; indexed: "
        f"{_many(second.indexed.variants, 'variant')}, {_many(second.indexed.individuals, 'individual')}")
    peers_file = add_peer(settings, SECOND_NODE, f"{second.gateway_url}/beacon/v2")
    out(f"   {peers_file}: {SECOND_NODE} at {second.gateway_url}/beacon/v2 (alice's token is not forwarded: "
        f"{SECOND_NODE} trusts its own login issuer, so FI asks it anonymously)")
    federated = _ask(settings, alice, SE_VARIANT, federated=True)
    for node in federated.nodes:
        where = " (this node)" if node.own else ""
        out(f"   {node.node}{where}: {node.status} in {node.elapsed_s or 0:.2f}s, "
            + (f"{'found' if node.exists else 'not found'} ({node.granularity})" if node.status == "ok"
               else f"{node.detail}"))
    _show(out, federated, "alice", hits_only=True)
    out(f"   {SECOND_NODE} keeps running beside FI, its data in {second.data_dir}: stopping FI (down) stops it too")

    se = next((n for n in federated.nodes if n.node == SECOND_NODE), None)
    found_at_se = any(rs.node == SECOND_NODE and rs.exists for rs in federated.result_sets)
    return (anonymous.granularity == "boolean" and region.granularity == "count" and bool(records)
            and se is not None and se.status == "ok" and found_at_se)


def _many(n: int, what: str) -> str:
    return f"{n:,} {what}{'' if n == 1 else 's'}"


def _ask(settings: Settings, token: str | None, query: str, *, federated: bool = False) -> Any:
    from genomebus.producers.discover import DiscoveryClient

    async def go() -> Any:
        async with DiscoveryClient(settings, token) as client:
            return await client.query(variant=query, federated=federated, include="ALL")

    return asyncio.run(go())


def _show(out: Callable[[str], None], answer: Any, who: str, *, hits_only: bool = False) -> None:
    from rich.markup import escape

    from genomebus.cli_discover import _variant_row, count_text

    out(f"   {who} → {answer.granularity}: " + ("found" if answer.exists else "not found"))
    for rs in answer.result_sets:
        if hits_only and not rs.exists:
            continue
        node = f" at {rs.node}" if rs.node else ""
        count = f", {count_text(rs)}" if rs.count is not None else ""
        audited = f" (read audited: event {rs.info['auditEvent']})" if rs.info.get("auditEvent") else ""
        out(escape(f"     {rs.id}{node} ({rs.granularity}): {'found' if rs.exists else 'not found'}{count}{audited}"))
        for record in rs.records[:3]:
            _, where, change, kind, frequency, carriers = _variant_row(record)
            out(escape(f"       {where} {change} {kind}: allele frequency {frequency or 'not given'}, "
                       f"carriers {carriers or 'not linked to an individual'}"))
