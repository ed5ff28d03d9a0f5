"""Data Reception events: datasets described and released, files received."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, HttpUrl

from schemas.base import PID_PATTERN, EventModel

DatasetId = Annotated[str, Field(pattern=PID_PATTERN, examples=["GDI-FI-DATASET-001"])]
DuoCode = Annotated[str, Field(pattern=r"^DUO:[0-9]{7}$", examples=["DUO:0000042"])]


class DatasetRegistered(EventModel):
    """A data steward described a new dataset; nothing is served until it is released."""

    context = "reception"
    type: Literal["dataset.registered"] = "dataset.registered"
    dataset_id: DatasetId
    title: Annotated[str, Field(min_length=1, max_length=500)]
    description: str = ""
    data_use: Annotated[tuple[DuoCode, ...], Field(min_length=1)] = Field(
        description="DUO terms that state the permitted uses of the data"
    )
    keywords: tuple[str, ...] = ()
    publisher: str | None = None
    landing_page: HttpUrl | None = None


ReceptionEvent = Annotated[DatasetRegistered, Field(discriminator="type")]
