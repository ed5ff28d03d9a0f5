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


Email = Annotated[str, Field(pattern=r"^[^@\s:/]+@[^@\s/]+\.[^@\s/]+$", max_length=254,
                             examples=["helpdesk@thl.fi"])]
DataTheme = Literal["AGRI", "ECON", "EDUC", "ENER", "ENVI", "GOVE", "HEAL", "INTR", "JUST", "REGI", "SOCI", "TECH",
                    "TRAN"]
"""The EU data-theme vocabulary's codes (http://publications.europa.eu/resource/authority/data-theme/<code>)."""
HealthCategory = Literal["human_genetic", "human_epigenomic", "human_genomic"]
"""The GDI health categories (gdi:HealthCategoryHumanGenetic, ...HumanEpigenomic, ...HumanGenomic)."""
Standard = Literal["externally_governed", "1mg_compliant", "1mg_cohort"]
"""The standards GDI datasets may conform to (gdi:ExternallyGoverned, gdi:1MGCompliant, gdi:1MGCohort)."""
DpvTerm = Annotated[str, Field(pattern=r"^dpv:[A-Z][A-Za-z]*$", examples=["dpv:Consent"])]
"""A legal basis of the Data Privacy Vocabulary (https://w3id.org/dpv#<term>)."""


class ContactPoint(_Value):
    """Who answers questions about a dataset (a vcard:Kind): a name, an email address, a contact page if any."""

    name: Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
    email: Email
    url: HttpUrl | None = None


class Agent(_Value):
    """A person or organisation (a foaf:Agent): a name, its persistent IRI (ROR, ORCID) and contact if known."""

    name: Annotated[str, Field(min_length=1, max_length=500, pattern=r"\S")]
    iri: HttpUrl | None = Field(None, description="A persistent identifier of the agent, e.g. https://ror.org/03tf0c761")
    contact_point: ContactPoint | None = None


class OtherIdentifier(_Value):
    """A secondary identifier of the dataset (an adms:Identifier), e.g. a DOI, and who issued it."""

    notation: Annotated[str, Field(min_length=1, max_length=500)]
    schema_agency: str | None = None


class DatasetDescription(_Value):
    """What a steward says about a dataset: registered with it, replaced whole by an update.

    Fields from ``creators`` on are its GDI / HealthDCAT-AP catalogue metadata, all optional; which
    of them the GDI shapes require is ``genomebus.schemas.healthdcat.missing_metadata``'s to say.
    """

    title: Annotated[str, Field(min_length=1, max_length=500)]
    description: str = ""
    data_use: Annotated[tuple[DuoCode, ...], Field(min_length=1, description="DUO terms: the permitted uses")]
    data_use_parameters: DataUseParameters = Field(
        DataUseParameters(), description="What some DUO modifiers need: DS's diseases, GS's countries, TS's date, ...")
    dac_id: DacId | None = Field(None, description="The Data Access Committee that decides access to it")
    keywords: tuple[str, ...] = ()
    publisher: str | None = Field(None, description="The organisation that makes the dataset available (dct:publisher)")
    landing_page: HttpUrl | None = None
    access_rights: Literal["controlled", "restricted", "public"] = "controlled"
    individuals: tuple[Individual, ...] = ()
    biosamples: tuple[Biosample, ...] = ()
    creators: tuple[Agent, ...] = Field((), description="Who produced the data (dct:creator)")
    contact_point: ContactPoint | None = Field(
        None, description="Who answers questions about the dataset (dcat:contactPoint, also the publisher's)")
    hdab: Agent | None = Field(None, description="The Health Data Access Body deciding access (healthdcatap:hdab); "
                                                 "until one exists, the organisation that controls the data")
    applicable_legislation: tuple[HttpUrl, ...] = Field(
        (), description="ELI IRIs of the legislation that applies (dcatap:applicableLegislation); health data "
                        "names the EHDS, http://data.europa.eu/eli/reg/2025/327/oj",
        examples=[("http://data.europa.eu/eli/reg/2025/327/oj",)])
    themes: tuple[DataTheme, ...] = Field((), description="EU data themes (dcat:theme); health data is HEAL")
    health_categories: tuple[HealthCategory, ...] = Field(
        (), description="GDI health categories (healthdcatap:healthCategory)")
    legal_basis: tuple[DpvTerm, ...] = Field((), description="Legal bases of processing (dpv:hasLegalBasis)")
    conforms_to: tuple[Standard, ...] = Field((), description="GDI standards it conforms to (dct:conformsTo)")
    synthetic: bool = Field(False, description="Synthetic data (dct:type SYNTHETIC_DATA)")
    is_referenced_by: tuple[HttpUrl, ...] = Field(
        (), description="Publications or other resources citing it, e.g. DOI IRIs (dct:isReferencedBy)")
    other_identifiers: tuple[OtherIdentifier, ...] = Field((), description="Secondary identifiers (adms:identifier)")

    def description_fields(self) -> dict[str, Any]:
        """The description alone, to carry from a command into its fact."""
        return {name: getattr(self, name) for name in DatasetDescription.model_fields}


CATALOGUE_FIELDS = ("creators", "contact_point", "hdab", "applicable_legislation", "themes", "health_categories",
                    "legal_basis", "conforms_to", "synthetic", "is_referenced_by", "other_identifiers")
"""The description's fields that only the catalogue reads (the read model keeps them together)."""


class Reason(_Value):
    """Why something was refused: a machine-readable code and a sentence for people."""

    code: Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]*$", examples=["checksum_mismatch"])]
    message: str


class MetadataWarning(Reason):
    """Catalogue metadata a description lacks: the GDI / HealthDCAT-AP ``property`` and the description's ``field``.

    ``metadata_incomplete``: the GDI shapes require it, the catalogue entry fails them without it;
    ``metadata_recommended``: the profile asks for it, the shapes do not enforce it yet.
    """

    code: Literal["metadata_incomplete", "metadata_recommended"]
    property: Annotated[str, Field(examples=["dcat:contactPoint"])]
    field: Annotated[str, Field(examples=["contact_point"])]


class DatasetRegistered(DatasetDescription, EventModel):
    """A data steward described a new dataset; nothing is served until it is released."""

    context = "reception"
    type: Literal["dataset.registered"] = "dataset.registered"
    subject_field = "dataset_id"
    dataset_id: DatasetId
    warnings: tuple[MetadataWarning, ...] = Field(
        (), description="Catalogue metadata the description lacks (the dataset is registered all the same); "
                        "absent on events from before the catalogue")


class DatasetUpdated(DatasetDescription, EventModel):
    """A steward replaced a dataset's description (title, data use, cohort, ...); its files are unchanged."""

    context = "reception"
    type: Literal["dataset.updated"] = "dataset.updated"
    subject_field = "dataset_id"
    dataset_id: DatasetId
    warnings: tuple[MetadataWarning, ...] = Field(
        (), description="Catalogue metadata the new description lacks (it is accepted all the same)")


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
