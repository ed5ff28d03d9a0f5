"""The airlock: its disclosure rules on tables built to break them (property-based), the sniffing of
individual-level genomic files, and the decision rules for checkers (two distinct, never the owner)."""

from __future__ import annotations

import gzip
import uuid
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from genomebus.consumers.airlock import decide, output_object_id
from genomebus.consumers.airlock_checks import DEFAULT_RULES, check_file, check_table, dominated
from genomebus.schemas.access import AsRoles
from genomebus.schemas.airlock import OutputApproved, OutputApproveRequested, OutputRejected, OutputRejectRequested
from genomebus.schemas.airlock import OutputReleased
from genomebus.schemas.processing import ProcessingCommandRejected

DATA = Path(__file__).resolve().parents[2] / "data"
TASK = "task-" + "a" * 32
CHECKER = AsRoles(output_checker=True)
labels = st.text(alphabet="abcdefghijklmnopqrstuvwxyz", min_size=1, max_size=8)
safe_counts = st.integers(min_value=DEFAULT_RULES.min_cell_count, max_value=10**9)


def tsv(header: list[str], rows: list[list[object]]) -> str:
    return "\n".join("\t".join(str(c) for c in row) for row in [header, *rows]) + "\n"


def rules_of(findings: list) -> dict[str, str]:
    return {f.rule: f.verdict for f in findings}


# -- tables ---------------------------------------------------------------------------------------------


@given(st.lists(st.tuples(labels, safe_counts), min_size=1, max_size=30))
def test_a_frequency_table_of_counts_at_or_above_the_threshold_passes(rows: list[tuple[str, int]]) -> None:
    assert check_table(tsv(["group", "count"], [list(r) for r in rows])) == []


@given(st.lists(st.tuples(labels, safe_counts), min_size=0, max_size=30),
       st.integers(min_value=1, max_value=DEFAULT_RULES.min_cell_count - 1), st.integers(min_value=0, max_value=30))
def test_any_count_from_1_to_9_fails_the_threshold_rule_and_names_its_cell(rows: list[tuple[str, int]], small: int,
                                                                             at: int) -> None:
    body = [list(r) for r in rows]
    at = min(at, len(body))
    body.insert(at, ["small", small])
    findings = check_table(tsv(["group", "count"], body))
    assert rules_of(findings)["threshold"] == "fail"
    threshold = next(f for f in findings if f.rule == "threshold")
    assert f"{at + 2}:count" in threshold.cells  # rows numbered from the header's 1


@given(st.lists(st.tuples(labels, safe_counts), min_size=0, max_size=20))
def test_a_zero_count_is_flagged_not_failed(rows: list[tuple[str, int]]) -> None:
    findings = check_table(tsv(["group", "n"], [*map(list, rows), ["none", 0]]))
    assert rules_of(findings) == {"zeros": "flag"}


@given(st.lists(st.floats(min_value=0, max_value=1e6, allow_nan=False), min_size=1, max_size=20))
def test_dominance_and_p_ratio_match_their_definitions(values: list[float]) -> None:
    positive = sorted((v for v in values if v > 0), reverse=True)
    total = sum(positive)
    nk, p = dominated(values)
    if total == 0:
        assert (nk, p) == (False, False)
        return
    assert nk == (sum(positive[:2]) > 0.9 * total)
    assert p == (total - positive[0] - (positive[1] if len(positive) > 1 else 0) < 0.1 * positive[0])


@given(st.floats(min_value=1e3, max_value=1e6), st.lists(st.floats(min_value=0.01, max_value=1.0), min_size=1,
                                                          max_size=10))
def test_a_magnitude_column_one_row_dominates_fails(big: float, small: list[float]) -> None:
    rows = [["whale", f"{big:.3f}"], *[[f"g{i}", f"{v:.3f}"] for i, v in enumerate(small)]]
    assert rules_of(check_table(tsv(["group", "mean_depth"], rows))) == {"dominance": "fail", "p_ratio": "fail"}


def test_an_even_magnitude_column_passes_and_coordinates_are_not_counts() -> None:
    rows = [[f"g{i}", f"{10 + i}.5", i + 1] for i in range(10)]
    assert check_table(tsv(["group", "mean_depth", "pos"], rows)) == []


def test_a_table_of_genotypes_is_blocked() -> None:
    rows = [[f"s{i}", "chr1", 1000 + i, gt] for i, gt in enumerate(["0/1", "1|1", "0/0", "./.", "0/1:35"])]
    assert rules_of(check_table(tsv(["sample", "chrom", "pos", "gt"], rows))) == {"genotypes": "block"}


def test_a_headerless_table_is_checked_and_a_ragged_one_flagged() -> None:
    assert rules_of(check_table("a,3\nb,40\n")) == {"threshold": "fail"}
    assert rules_of(check_table("a\t1\t2\nb\t3\n")) == {"ragged_table": "flag"}


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=30)
@given(st.lists(st.tuples(labels, st.integers(min_value=0, max_value=100)), min_size=1, max_size=15),
       st.sampled_from([",", "\t"]), st.booleans())
def test_the_file_verdict_is_the_worst_rule_whatever_the_delimiter_or_compression(
        tmp_path: Path, rows: list[tuple[str, int]], delimiter: str, compressed: bool) -> None:
    text = "\n".join(delimiter.join(map(str, r)) for r in [("group", "count"), *rows]) + "\n"
    path = tmp_path / "t"
    path.write_bytes(gzip.compress(text.encode()) if compressed else text.encode())
    checked = check_file("/work/t", path)
    counts = [n for _, n in rows]
    expected = ("fail" if any(0 < n < 10 for n in counts) else "flag" if 0 in counts else "pass")
    assert (checked.kind, checked.verdict) == ("table", expected)


# -- kinds ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kind", "rule"), [
    ("variants/HG02102.vcf.gz", "vcf", "vcf_genotypes"),
    ("variants/spec-v4.3.bcf", "bcf", "bcf"),
    ("reads/htsnexus_test_NA12878.bam", "bam", "bam"),
    ("reads/htsnexus_test_NA12878.cram", "cram", "cram"),
])
def test_individual_level_genomic_files_are_blocked_by_their_content(tmp_path: Path, name: str, kind: str,
                                                                     rule: str) -> None:
    renamed = tmp_path / "summary.tsv"  # the name does not matter: the content does
    renamed.write_bytes((DATA / name).read_bytes())
    checked = check_file("/work/summary.tsv", renamed)
    assert (checked.kind, checked.verdict, checked.findings[0].rule) == (kind, "block", rule)


def test_an_uncompressed_vcf_with_genotypes_sam_and_fastq_are_blocked(tmp_path: Path) -> None:
    vcf = gzip.open(DATA / "variants" / "test.vcf.gz").read()
    cases = {
        "vcf": vcf,
        "fastq": b"@r1\nACGT\n+\nIIII\n@r2\nACGT\n+\nIIII\n",
        "sam": b"@HD\tVN:1.6\n@SQ\tSN:chr1\tLN:100\nr1\t0\tchr1\t1\t60\t4M\t*\t0\t0\tACGT\tIIII\n",
    }
    for kind, content in cases.items():
        (tmp_path / "x").write_bytes(content)
        checked = check_file("/work/x", tmp_path / "x")
        assert (checked.kind, checked.verdict) == (kind, "block"), kind


def test_a_sites_only_vcf_text_and_binary_are_flagged_and_empty_passes(tmp_path: Path) -> None:
    cases = {
        b"##fileformat=VCFv4.2\n#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\nchr1\t1\t.\tA\tC\t.\t.\tAC=3\n": "vcf",
        b"a free text report that is not a table\nwith lines\n": "text",
        bytes(range(256)): "binary",
    }
    for content, kind in cases.items():
        (tmp_path / "x").write_bytes(content)
        checked = check_file("/work/x", tmp_path / "x")
        assert (checked.kind, checked.verdict) == (kind, "flag"), kind
    (tmp_path / "x").write_bytes(b"")
    assert check_file("/work/x", tmp_path / "x").verdict == "pass"


# -- decisions ------------------------------------------------------------------------------------------


def request(state: str = "review", approvals: tuple[str, ...] = ()) -> dict:
    return {"task_id": TASK, "owner": "alice", "state": state, "approvals": [{"by": b} for b in approvals],
            "outputs": [{"path": "/work/summary.tsv", "name": "summary.tsv", "size": 10, "sha256": "0" * 64,
                         "key": f"{TASK}/summary.tsv"}]}


def run(req: dict | None, who: str, *, reject: str | None = None, roles: AsRoles = CHECKER) -> list:
    command = (OutputRejectRequested(task_id=TASK, reason=reject, as_roles=roles) if reject
               else OutputApproveRequested(task_id=TASK, as_roles=roles))
    return decide(req, command, who, uuid.uuid4(), required=2, outputs_bucket="outputs")


def refused(facts: list) -> str:
    assert len(facts) == 1 and isinstance(facts[0], ProcessingCommandRejected), facts
    return facts[0].reasons[0].code


def test_the_requester_cannot_approve_or_reject_their_own_output() -> None:
    assert refused(run(request(), "alice")) == "own_output"
    assert refused(run(request(), "alice", reject="no")) == "own_output"


def test_only_an_output_checker_decides() -> None:
    assert refused(run(request(), "bob", roles=AsRoles(steward=True))) == "not_output_checker"


def test_one_approval_is_not_enough_and_the_same_checker_counts_once() -> None:
    first = run(request(), "bob")
    assert [type(f) for f in first] == [OutputApproved] and first[0].approvals == 1
    assert refused(run(request(approvals=("bob",)), "bob")) == "already_approved"


def test_the_second_distinct_checker_releases_every_output_under_a_stable_id() -> None:
    facts = run(request(approvals=("bob",)), "carol")
    assert [type(f) for f in facts] == [OutputApproved, OutputReleased]
    released = facts[1]
    assert released.approved_by == ("bob", "carol") and released.owner == "alice"
    assert released.outputs[0].object_id == output_object_id(TASK, "/work/summary.tsv")
    assert released.outputs[0].bucket == "outputs"


def test_a_reject_ends_it_and_nothing_is_decided_after() -> None:
    facts = run(request(approvals=("bob",)), "carol", reject="a cell of 3 in row 4")
    assert [type(f) for f in facts] == [OutputRejected] and facts[0].by == "carol"
    for state in ("rejected", "released"):
        assert refused(run(request(state), "dave")) == "request_closed"
        assert refused(run(request(state), "dave", reject="x")) == "request_closed"


def test_unknown_and_unchecked_requests_are_refused() -> None:
    assert refused(run(None, "bob")) == "unknown_request"
    assert refused(run(request("checking"), "bob")) == "not_checked_yet"
