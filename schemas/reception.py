"""Data Reception events: datasets described, files uploaded, checked, archived; datasets released."""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, HttpUrl

from genomebus.schemas.base import PID_PATTERN, EventModel
from genomebus.schemas.duo import DataUseParameters

DatasetId = Annotated[str, Field(pattern=PID_PATTERN, examples=["GDI-FI-DATASET-001"])]
Accession = Annotated[str, Field(pattern=PID_PATTERN, examples=["GDI-FI-FILE-00000042"])]
DacId = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:-]{0,99}$", examples=["FI-DAC-1"])]
DuoCode = Annotated[str, Field(pattern=r"^DUO:[0-9]{7}$", examples=["DUO:0000042"])]
OntologyId = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*:[A-Za-z0-9_.-]+$", examples=["HP:0001250"])]
Sha256 = Annotated[str, Field(pattern=r"^[0-9a-f]{64}$")]
Md5 = Annotated[str, Field(pattern=r"^[0-9a-f]{32}$")]
FileFormat = Literal["BAM", "CRAM", "VCF", "BCF", "FASTQ"]


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class OntologyTerm(_Value):
    id: OntologyId
    label: str | None = None


class Individual(_Value):
    """A person behind the data, pseudonymised: the node's own id, never a name or national id."""

    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
    sex: Literal["female", "male", "other", "unknown"] = "unknown"
    phenotypes: tuple[OntologyTerm, ...] = ()
    diseases: tuple[OntologyTerm, ...] = ()


class Biosample(_Value):
    id: Annotated[str, Field(min_length=1, max_length=100, pattern=r"^[A-Za-z0-9._-]+$")]
    individual_id: str
    sample_type: OntologyTerm | None = None
    collected: str | None = Field(None, description="ISO 8601 date (or year) of collection")


class DatasetDescription(_Value):
    """What a steward says about a dataset: registered with it, replaced whole by an update."""

    title: Annotated[str, Field(min_length=1, max_length=500)]
    description: str = ""
    data_use: Annotated[tuple[DuoCode, ...], Field(min_length=1, description="DUO terms: the permitted uses")]
    data_use_parameters: DataUseParameters = Field(
        DataUseParameters(), description="What some DUO modifiers need: DS's diseases, GS's countries, TS's date, ...")
    dac_id: DacId | None = Field(None, description="The Data Access Committee that decides access to it")
    keywords: tuple[str, ...] = ()
    publisher: str | None = None
    landing_page: HttpUrl | None = None
    access_rights: Literal["controlled", "restricted", "public"] = "controlled"
    individuals: tuple[Individual, ...] = ()
    biosamples: tuple[Biosample, ...] = ()

    def description_fields(self) -> dict[str, Any]:
        """The description alone, to carry from a command into its fact."""
        return {name: getattr(self, name) for name in DatasetDescription.model_fields}


class DatasetRegistered(DatasetDescription, EventModel):
    """A data steward described a new dataset; nothing is served until it is released."""

    context = "reception"
    type: Literal["dataset.registered"] = "dataset.registered"
    subject_field = "dataset_id"
    dataset_id: DatasetId


class DatasetUpdated(DatasetDescription, EventModel):
    """A steward replaced a dataset's description (title, data use, cohort, ...); its files are unchanged."""

    context = "reception"
    type: Literal["dataset.updated"] = "dataset.updated"
    subject_field = "dataset_id"
    dataset_id: DatasetId


class FileUploaded(EventModel):
    """A file in the inbox joined its dataset (decided by the reception decider); QC has not looked at it yet."""

    context = "reception"
    type: Literal["file.uploaded"] = "file.uploaded"
    file_id: UUID = Field(description="uuid5 of dataset and sha256: the same content uploaded again is the same file")
    dataset_id: DatasetId
    filename: Annotated[str, Field(min_length=1, max_length=1000)]
    bucket: str
    object_key: str
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256
    md5: Md5
    declared_format: FileFormat
    alias: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9._-]{1,200}$")] = None
    accession: Accession | None = Field(
        None, description="Assigned in order by the reception decider (GDI-<node>-FILE-<8 digits>), kept for "
                          "ever; absent on events from before it did")


class Reason(_Value):
    """Why something was refused: a machine-readable code and a sentence for people."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["checksum_mismatch"])]
    message: str


QcReason = Reason


class FileQcPassed(EventModel):
    context = "reception"
    type: Literal["file.qc_passed"] = "file.qc_passed"
    file_id: UUID
    dataset_id: DatasetId
    format: FileFormat
    metrics: dict[str, Any] = Field(description="Per-format metrics: counts, sort order, index, …")
    warnings: tuple[QcReason, ...] = ()


class FileQcFailed(EventModel):
    context = "reception"
    type: Literal["file.qc_failed"] = "file.qc_failed"
    file_id: UUID
    dataset_id: DatasetId
    reasons: Annotated[tuple[QcReason, ...], Field(min_length=1)]
    message: str


class FileArchived(EventModel):
    """The file is encrypted at rest (Crypt4GH) in the archive, verified, and has an accession."""

    context = "reception"
    type: Literal["file.archived"] = "file.archived"
    file_id: UUID
    dataset_id: DatasetId
    accession: Accession
    drs_id: str
    format: FileFormat
    archive_bucket: str
    archive_key: str
    size: Annotated[int, Field(ge=0)]
    decrypted_sha256: Sha256
    decrypted_md5: Md5
    encrypted_size: Annotated[int, Field(ge=0)]
    encrypted_sha256: Sha256
    encrypted_md5: Md5
    index_key: str | None = Field(None, description="Archive key of the encrypted index (.bai/.tbi/.csi), if any")


class DatasetReleased(EventModel):
    context = "reception"
    type: Literal["dataset.released"] = "dataset.released"
    dataset_id: DatasetId
    files: Annotated[tuple[Accession, ...], Field(min_length=1)]


class DatasetWithdrawn(EventModel):
    context = "reception"
    type: Literal["dataset.withdrawn"] = "dataset.withdrawn"
    dataset_id: DatasetId
    reason: Annotated[str, Field(min_length=1)]


class CommandRejected(EventModel):
    """The reception decider refused a command; ``state`` is the aggregate's state when it decided."""

    context = "reception"
    type: Literal["reception.command_rejected"] = "reception.command_rejected"
    aggregate_id: Annotated[str, Field(min_length=1, description="The dataset the command was about")]
    command_id: UUID
    command_type: str
    reasons: Annotated[tuple[Reason, ...], Field(min_length=1)]
    state: str | None = Field(None, description="registered, released, withdrawn, or null for an unknown dataset")


# -- commands: what people and node systems ask for, on genomebus.reception.commands ------------------
# Keyed by the dataset, so one dataset's commands are decided one at a time, in order.


class DatasetRegisterRequested(DatasetDescription, EventModel):
    context = "reception.commands"
    type: Literal["dataset.register_requested"] = "dataset.register_requested"
    subject_field = "dataset_id"
    dataset_id: DatasetId


class DatasetUpdateRequested(DatasetDescription, EventModel):
    context = "reception.commands"
    type: Literal["dataset.update_requested"] = "dataset.update_requested"
    subject_field = "dataset_id"
    dataset_id: DatasetId


class DatasetReleaseRequested(EventModel):
    context = "reception.commands"
    type: Literal["dataset.release_requested"] = "dataset.release_requested"
    dataset_id: DatasetId


class DatasetWithdrawRequested(EventModel):
    context = "reception.commands"
    type: Literal["dataset.withdraw_requested"] = "dataset.withdraw_requested"
    dataset_id: DatasetId
    reason: Annotated[str, Field(min_length=1, max_length=2000, pattern=r"\S",
                                 description="Why, in words (recorded on the log); not blank")]


class FileSubmitRequested(EventModel):
    """A node system put a file in the inbox and asks for it to join a dataset (then ``file.uploaded``)."""

    context = "reception.commands"
    type: Literal["file.submit_requested"] = "file.submit_requested"
    dataset_id: DatasetId
    file_id: UUID = Field(description="uuid5 of dataset and sha256: the same content uploaded again is the same file")
    filename: Annotated[str, Field(min_length=1, max_length=1000)]
    bucket: str
    object_key: str
    size: Annotated[int, Field(ge=0)]
    sha256: Sha256
    md5: Md5
    declared_format: FileFormat
    alias: Annotated[str | None, Field(pattern=r"^[A-Za-z0-9._-]{1,200}$")] = None

    def upload_fields(self) -> dict[str, Any]:
        return self.model_dump(exclude={"type"})


RECEPTION_COMMANDS = (DatasetRegisterRequested, DatasetUpdateRequested, DatasetReleaseRequested,
                      DatasetWithdrawRequested, FileSubmitRequested)
