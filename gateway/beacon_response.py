"""A Beacon answer from the index's per-dataset matches: granularity, counts and result sets.

Granularity, per dataset (``dataset_granularity``): ``record`` only where the enforcement point
allowed a read of that dataset (a grant, or a public dataset), ``count`` for an authenticated
caller or a public dataset, ``boolean`` otherwise, and never more than was asked for. The
response as a whole (``meta.returnedGranularity``) is the most detailed any dataset got, except
that a response holding a boolean-only dataset is never a record one: Beacon 2.0 requires a count
in every result set of a record response, and a boolean dataset has none to give (an anonymous
caller asks for a public dataset's records alone, with ``datasets.datasetIds``). Every result set
states its own granularity in ``info.returnedGranularity``.

Counts (``shown_count``): 0 is exact; a count where the caller may read the records is exact;
otherwise 1 up to ``beacon_count_threshold`` is reported as the threshold, and a larger count is
rounded up to a multiple of ``beacon_count_rounding``. Where a count is adjusted, Beacon 2.x's
``countPrecision`` (``exact``, ``imprecise`` for the threshold, ``rounded``) and
``countAdjustedTo`` say how, in the result set and in ``responseSummary`` (both are extra members
the 2.0 schemas allow). At boolean granularity no count appears anywhere: the result set has only
``exists``. ``results`` are present only in a record response (empty for a dataset answered by
count in it); a result set that would be a ``results`` list for a caller without record access
never holds a record, so no response below record granularity names who carries a variant.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from genomebus.gateway.beacon_model import ENTRY_TYPES, GRANULARITIES
from genomebus.gateway.beacon_request import BeaconRequest

PRECISIONS = ("exact", "rounded", "imprecise")
"""From the most to the least precise: a summary is as precise as its least precise count."""


def least(*granularities: str) -> str:
    return min(granularities, key=GRANULARITIES.index)


def most(*granularities: str) -> str:
    return max(granularities, key=GRANULARITIES.index)


def dataset_granularity(requested: str, *, public: bool, authenticated: bool, record_allowed: bool) -> str:
    """What one dataset is answered at for this caller (never more than ``requested``)."""
    allowed = "record" if record_allowed else "count" if authenticated or public else "boolean"
    return least(requested, allowed)


def response_granularity(requested: str, per_dataset: Sequence[str]) -> str:
    """``meta.returnedGranularity``: the most detailed dataset's, but never record beside a boolean-only one."""
    if not per_dataset:
        return least(requested, "count")  # nothing to count: a 0 reveals nothing
    top = least(requested, most(*per_dataset))
    if top == "record" and "boolean" in per_dataset:
        return "count"
    return top


@dataclass(frozen=True)
class ShownCount:
    value: int
    precision: str
    adjusted_to: tuple[int | str, ...] = ()


def shown_count(count: int, *, exact: bool, threshold: int, rounding: int) -> ShownCount:
    """The count a caller is shown: exact with record access (and 0 always), else thresholded and rounded."""
    if count == 0 or exact:
        return ShownCount(count, "exact")
    if count <= threshold:
        return ShownCount(threshold, "imprecise", (threshold,))
    if rounding <= 1:
        return ShownCount(count, "exact")
    return ShownCount(math.ceil(count / rounding) * rounding, "rounded", (f"rounded up to a multiple of {rounding}",))


@dataclass
class DatasetAnswer:
    """One dataset's answer to the query, before it is shown."""

    dataset_id: str
    access_rights: str
    count: int
    """The exact count of matching entries (never shown as such below record access)."""
    granularity: str
    record_allowed: bool = False
    records: list[dict[str, Any]] = field(default_factory=list)
    audit_event: str | None = None

    @property
    def exists(self) -> bool:
        return self.count > 0


@dataclass(frozen=True)
class Counting:
    threshold: int
    rounding: int


def _shown(answer: DatasetAnswer, counting: Counting) -> ShownCount:
    return shown_count(answer.count, exact=answer.record_allowed or answer.access_rights == "public",
                       threshold=counting.threshold, rounding=counting.rounding)


def result_set(answer: DatasetAnswer, *, response: str, counting: Counting,
               handovers: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    """The dataset's ``ResultsetInstance`` in a response at ``response`` granularity."""
    granularity = least(answer.granularity, response)
    info: dict[str, Any] = {"returnedGranularity": granularity, "accessRights": answer.access_rights}
    if answer.audit_event is not None and granularity == "record":
        info["auditEvent"] = answer.audit_event
    found: dict[str, Any] = {"id": answer.dataset_id, "setType": "dataset", "exists": answer.exists}
    if granularity != "boolean":
        shown = _shown(answer, counting)
        found["resultsCount"] = shown.value
        found["countPrecision"] = shown.precision
        if shown.adjusted_to:
            found["countAdjustedTo"] = list(shown.adjusted_to)
    if response == "record":
        found["results"] = answer.records if granularity == "record" else []
        if granularity == "record" and handovers:
            found["resultsHandovers"] = handovers
    found["info"] = info
    return found


def included(answer: DatasetAnswer, include: str) -> bool:
    """``includeResultsetResponses``: HIT (datasets with a match), MISS (without), ALL, NONE."""
    return include == "ALL" or (include == "HIT" and answer.exists) or (include == "MISS" and not answer.exists)


def summary(answers: Sequence[DatasetAnswer], *, response: str, counting: Counting) -> dict[str, Any]:
    """``responseSummary``: exists anywhere; at count or record, the shown counts added up and how precise."""
    found: dict[str, Any] = {"exists": any(a.exists for a in answers)}
    if response == "boolean":
        return found
    counted = [a for a in answers if least(a.granularity, response) != "boolean"]
    shown = [_shown(a, counting) for a in counted]
    found["numTotalResults"] = sum(s.value for s in shown)
    precision = max((s.precision for s in shown), key=PRECISIONS.index, default="exact")
    if len(counted) < len(answers):  # datasets answered by a boolean only are not in the total
        precision = "imprecise"
    found["countPrecision"] = precision
    adjusted = list(dict.fromkeys(item for s in shown for item in s.adjusted_to))
    if adjusted:
        found["countAdjustedTo"] = adjusted
    return found


def meta(request: BeaconRequest, *, beacon_id: str, returned: str) -> dict[str, Any]:
    """``beaconResponseMeta``."""
    found: dict[str, Any] = {
        "beaconId": beacon_id, "apiVersion": request.api_version,
        "returnedSchemas": [ENTRY_TYPES[request.entry_type].schema],
        "returnedGranularity": returned, "receivedRequestSummary": request.summary(),
    }
    if request.test_mode:
        found["testMode"] = True
    return found


def resultsets_response(request: BeaconRequest, answers: Sequence[DatasetAnswer], *, beacon_id: str,
                        counting: Counting, info: dict[str, Any] | None = None,
                        handovers: dict[str, list[dict[str, Any]]] | None = None) -> dict[str, Any]:
    """A boolean, count or resultsets response with a result set per dataset (as ``include`` asks)."""
    returned = response_granularity(request.granularity, [a.granularity for a in answers])
    sets = [result_set(a, response=returned, counting=counting, handovers=(handovers or {}).get(a.dataset_id))
            for a in answers if included(a, request.include)]
    body: dict[str, Any] = {
        "meta": meta(request, beacon_id=beacon_id, returned=returned),
        "responseSummary": summary(answers, response=returned, counting=counting),
        "response": {"resultSets": sets},
    }
    if info:
        body["info"] = info
    return body


def collections_response(request: BeaconRequest, records: Sequence[dict[str, Any]], *, beacon_id: str,
                         info: dict[str, Any] | None = None) -> dict[str, Any]:
    """The datasets collection: public descriptions, at the granularity asked for, counted exactly."""
    returned = request.granularity
    body: dict[str, Any] = {"meta": meta(request, beacon_id=beacon_id, returned=returned),
                            "responseSummary": {"exists": bool(records)}}
    if returned != "boolean":
        body["responseSummary"]["numTotalResults"] = len(records)
    if returned == "record":
        body["response"] = {"collections": list(records[request.offset:request.offset + request.limit])}
    if info:
        body["info"] = info
    return body
