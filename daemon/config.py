"""Typed settings: an optional YAML file plus NADIR_<SECTION>__<KEY> environment overrides.

One frozen `Settings` object is built at the edge (`load_settings`) and passed
down explicitly; nothing reads configuration from module globals. Errors name the
file, the key, the line where YAML gives one, and what is allowed.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit, urlunsplit

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    NoDecode,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
)

from daemon import resources

log = logging.getLogger(__name__)


class ConfigError(Exception):
    """A settings or rules file is invalid; the message names file, key and line."""


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TlsSettings(_Section):
    certificate: Path
    private_key: Path
    ca_certificates: Path | None = None  # when set, client certificates are required


class NodeSettings(_Section):
    ae_title: str = Field("NADIR", min_length=1, max_length=16)
    host: str = "0.0.0.0"
    port: int = Field(11112, ge=1, le=65535)
    allowed_calling_aes: Annotated[list[str], NoDecode] = Field(default_factory=list)  # empty: accept any
    max_pdu_length: int = Field(4_194_304, ge=0)
    max_associations: int = Field(20, ge=1)  # per receiving process
    # receiving processes sharing the port (SO_REUSEPORT); 1: the node's process alone
    receivers: int = Field(1, ge=1, le=32)
    network_timeout_s: float = Field(60.0, gt=0)  # also every accepted socket's read timeout
    tls: TlsSettings | None = None
    # before association (daemon.node.gate): a connection must complete its TLS handshake
    # and A-ASSOCIATE-RQ within artim_timeout_s; at most max_half_open connections wait
    # for theirs, max_half_open_per_address from one peer address (per receiving process)
    artim_timeout_s: float = Field(30.0, gt=0)
    max_half_open: int = Field(256, ge=1)
    max_half_open_per_address: int = Field(32, ge=1)
    max_associate_request_bytes: int = Field(262_144, ge=1024)  # the A-ASSOCIATE-RQ PDU
    # a deflated dataset inflating past this is refused (0xA700) without being held in memory
    max_inflated_bytes: int = Field(1_073_741_824, ge=1024)

    @field_validator("ae_title")
    @classmethod
    def _ae_title(cls, v: str) -> str:
        if v != v.strip() or "\\" in v or not v.isprintable():
            raise ValueError("an AE title is 1-16 printable characters without backslash or padding")
        return v

    @field_validator("allowed_calling_aes", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v


class StoreSettings(_Section):
    data_dir: Path = Path("data")
    database_url: str | None = None  # default: SQLite file in data_dir
    min_free_bytes: int = Field(1_073_741_824, ge=0)  # below this, C-STORE answers 0xA700
    retention_days: float = Field(30.0, gt=0)
    # FAILED studies: their own time, from when they failed, for an admin to look (and retry)
    failed_retention_days: float = Field(30.0, gt=0)

    @property
    def spool_dir(self) -> Path:
        return self.data_dir / "spool"

    @property
    def effective_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{(self.data_dir / 'nadir.db').resolve()}"


class LoggingSettings(_Section):
    # text: one line per record; json: one JSON object per line (ts, level, logger,
    # message, exc), for log collectors. Timestamps are UTC with their offset in both.
    format: Literal["text", "json"] = "text"


class AssemblySettings(_Section):
    settle_seconds: float = Field(30.0, gt=0)
    sweep_interval_seconds: float = Field(1.0, gt=0)


class DestinationTls(_Section):
    ca_certificates: Path | None = None  # verify the peer against these; None: system default
    certificate: Path | None = None  # our client certificate, when the peer asks for one
    private_key: Path | None = None


# What a destination may receive, one kind per family of objects (daemon/report/kinds.py
# tells an output's kind from its SOP class): the TID 1500 SR, the SEG, the key images (SC),
# the KOS, the RT Structure Set (for a treatment-planning system) and the research SR
# (radiomics, never clinical: a route's `radiomics:`); the last two only when asked.
OutputKind = Literal["sr", "seg", "sc", "kos", "rtstruct", "research_sr"]
DEFAULT_OUTPUTS: tuple[OutputKind, ...] = ("sr", "seg", "sc", "kos")


class DestinationSettings(_Section):
    """A DICOM peer that receives Nadir's outputs (C-STORE SCP)."""

    ae_title: str = Field(min_length=1, max_length=16)
    host: str
    port: int = Field(ge=1, le=65535)
    tls: DestinationTls | None = None
    # the kinds of output this peer takes (NADIR_DESTINATIONS__<NAME>__OUTPUTS=sr,rtstruct)
    outputs: Annotated[tuple[OutputKind, ...], NoDecode] = Field(DEFAULT_OUTPUTS, min_length=1)

    @field_validator("outputs", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v


# The destination `pacs` when the settings file has no `destinations:` (Orthanc's defaults).
DEFAULT_PACS = {"ae_title": "ORTHANC", "host": "127.0.0.1", "port": 4242}


class RoutingSettings(_Section):
    rules_file: Path = resources.ROUTING_FILE  # the shipped file (daemon/resources.py)
    watch_interval_seconds: float = Field(2.0, gt=0)  # how often the file is checked for changes


class CriteriaSettings(_Section):
    # the criteria's rules files are the shipped ones (daemon.criteria.rules.RULES_DIR);
    # a site folder of <criterion>.yaml files overrides them key by key (as `nadir assess
    # --site` does), wherever the routing file lives; the report cites what it changed
    site_dir: Path | None = None


class JobSettings(_Section):
    # local: a pool of `workers` processes on the node itself (the embedded default);
    # celery: the node puts each due job on RabbitMQ (`broker_url`) and `nadir worker`
    # processes, on this or other machines sharing the database and the spool, run them
    executor: Literal["local", "celery"] = "local"
    broker_url: str = "amqp://guest@127.0.0.1:5672//"
    # celery: a job still due this long after its message was sent is sent again (the
    # broker lost it, or no worker of its queue ran); a duplicate message does nothing
    redispatch_seconds: float = Field(600.0, gt=0)
    workers: int = Field(2, ge=1)  # local worker processes (executor local)
    lease_seconds: float = Field(60.0, gt=0)  # a running job whose lease expires runs again
    heartbeat_seconds: float = Field(10.0, gt=0)
    max_attempts: int = Field(3, ge=1)
    retry_delay_seconds: float = Field(30.0, ge=0)
    poll_seconds: float = Field(1.0, gt=0)

    @model_validator(mode="after")
    def _heartbeat_within_lease(self) -> JobSettings:
        if self.heartbeat_seconds >= self.lease_seconds:
            raise ValueError("heartbeat_seconds must be shorter than lease_seconds (a lease would expire between heartbeats)")
        return self


class OutboxSettings(_Section):
    first_retry_seconds: float = Field(30.0, gt=0)
    backoff_factor: float = Field(2.0, ge=1)
    max_delay_seconds: float = Field(1800.0, gt=0)  # cap of one wait between attempts
    max_age_seconds: float = Field(172_800.0, gt=0)  # past this: dead letter (48 h: a PACS down for a night)
    batch_size: int = Field(50, ge=1)  # instances sent on one association
    poll_seconds: float = Field(1.0, gt=0)
    jitter: float = Field(0.2, ge=0, le=1)  # +- fraction of each delay


class ImagingSettings(_Section):
    # messy series (missing/duplicate slices, uneven spacing, gantry tilt, mixed stacks):
    # "resample" onto a regular grid (or keep the largest consistent stack), or "refuse" the series
    messy_series: Literal["resample", "refuse"] = "resample"
    spacing_tolerance: float = Field(0.01, gt=0, lt=1)  # relative difference between slice gaps


class WebTls(_Section):
    certificate: Path
    private_key: Path


class WebSettings(_Section):
    """The admins' console and HTTP API (daemon/web), served by `nadir serve` on its own port."""

    enabled: bool = True
    host: str = "127.0.0.1"  # loopback unless set: put a reverse proxy in front (deploy/README.md)
    port: int = Field(8080, ge=1, le=65535)
    # local: accounts of `nadir user add` (password login, HTTP Basic for scripts);
    # header: a reverse proxy authenticates and names the user (and role) in headers. One or
    # the other, never both: in header mode no password is accepted, in local mode no header.
    auth: Literal["local", "header"] = "local"
    header_user: str = "X-Remote-User"
    header_role: str = "X-Remote-Role"  # "admin", else the user is a viewer
    # header mode: the addresses the proxy connects from; a request from any other is refused
    trusted_proxies: Annotated[list[str], NoDecode] = Field(default_factory=lambda: ["127.0.0.1", "::1"])
    session_idle_minutes: float = Field(30.0, gt=0)  # a session unused this long ends
    session_max_hours: float = Field(12.0, gt=0)  # and any session after this long
    tls: WebTls | None = None  # serve HTTPS directly (else TLS at the reverse proxy)

    @field_validator("trusted_proxies", mode="before")
    @classmethod
    def _split(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [s.strip() for s in v.split(",") if s.strip()]
        return v


class ResearchSettings(_Section):
    """Research exports (a route's `radiomics:` CSV, one file per study and route)."""

    folder: Path | None = None  # default: <store.data_dir>/research


DEFAULT_TEMPLATES_DIR = resources.REPORT_TEMPLATES_DIR


@dataclass(frozen=True)
class Series:
    number: int
    description: str


class ReportSettings(_Section):
    """Report settings: series numbers and descriptions, language, device identity."""

    manufacturer: str = "Nadir"
    install_id: str = Field("nadir", min_length=1, max_length=64)  # Device Serial Number
    institution_name: str | None = None
    language: str = Field("en", pattern="^(en|fr)$")
    route_languages: dict[str, str] = Field(default_factory=dict)  # route -> en | fr
    ohif_hydratable: bool = False  # Cornerstone3DTools@^0.1.0:Bidirectional: prefix
    # True: volume and intensities in a separate TID 1411 group referencing the SEG segment
    # (conformance.md §1). False (default): in the lesion's TID 1501 group, each NUM anchored
    # on the long axis, the SEG frames referenced as the group's source images. Why the
    # default: PixelMed picks the template of every group from the whole container (any
    # Referenced Segment makes it check TID 1501 groups as TID 1411 and report errors), and
    # OHIF 3.x throws on a NUM without SCOORD child in a group without its own SCOORD.
    volumetric_groups: bool = False
    # True (default): the assessment's numbers (sum, baseline, nadir, % changes) as NUMs,
    # each with a POINT SCOORD near the top-left corner of the longest current target's
    # slice (conformance.md §2.2 rule 6; report/sr_groups.corner_point), so they are
    # structured in the SR and OHIF shows them there, clear of the lesions' labels
    # (tests/viewer). False: in the impression text and the key-image summary only; OHIF
    # 3.12 then drew nothing at all in the SR viewport (tests/viewer), so this is not the
    # default.
    assessment_numbers_on_image: bool = True
    templates_dir: Path = DEFAULT_TEMPLATES_DIR
    # one series per object kind, in the source study (flat keys: one env variable each,
    # e.g. NADIR_REPORT__SR_SERIES_NUMBER=7001)
    sr_series_number: int = Field(9001, ge=1, le=2**31 - 1)
    sr_series_description: str = Field("Nadir measurements (SR)", max_length=64)
    seg_series_number: int = Field(9002, ge=1, le=2**31 - 1)
    seg_series_description: str = Field("Nadir lesions (SEG)", max_length=64)
    sc_series_number: int = Field(9003, ge=1, le=2**31 - 1)
    sc_series_description: str = Field("Nadir key images", max_length=64)
    ko_series_number: int = Field(9004, ge=1, le=2**31 - 1)
    ko_series_description: str = Field("Nadir key objects", max_length=64)
    rtstruct_series_number: int = Field(9005, ge=1, le=2**31 - 1)
    rtstruct_series_description: str = Field("Nadir lesions (RTSTRUCT)", max_length=64)
    # the research SR (radiomics per lesion, a route's `radiomics:`), never the clinical SR's series
    research_sr_series_number: int = Field(9006, ge=1, le=2**31 - 1)
    research_sr_series_description: str = Field("RESEARCH radiomics - not for clinical use", max_length=64)

    @model_validator(mode="after")
    def _series_numbers_distinct(self) -> ReportSettings:
        # an output's kind (daemon/report/kinds.py) and a prior's clinical SR are told by series
        numbers = [self.sr_series_number, self.seg_series_number, self.sc_series_number, self.ko_series_number,
                   self.rtstruct_series_number, self.research_sr_series_number]
        if len(set(numbers)) != len(numbers):
            raise ValueError(f"report: the series numbers of the outputs must differ, got {numbers}")
        return self

    @property
    def sr(self) -> Series:
        return Series(self.sr_series_number, self.sr_series_description)

    @property
    def seg(self) -> Series:
        return Series(self.seg_series_number, self.seg_series_description)

    @property
    def sc(self) -> Series:
        return Series(self.sc_series_number, self.sc_series_description)

    @property
    def ko(self) -> Series:
        return Series(self.ko_series_number, self.ko_series_description)

    @property
    def rtstruct(self) -> Series:
        return Series(self.rtstruct_series_number, self.rtstruct_series_description)

    @property
    def research_sr(self) -> Series:
        return Series(self.research_sr_series_number, self.research_sr_series_description)

    def language_for(self, route: str) -> str:
        lang = self.route_languages.get(route, self.language)
        if lang not in ("en", "fr"):
            raise ValueError(f"route {route!r}: language {lang!r} is not en or fr")
        return lang


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NADIR_",
        env_nested_delimiter="__",
        extra="forbid",
        frozen=True,
    )

    node: NodeSettings = Field(default_factory=NodeSettings)
    store: StoreSettings = Field(default_factory=StoreSettings)
    assembly: AssemblySettings = Field(default_factory=AssemblySettings)
    destinations: dict[str, DestinationSettings] = Field(default_factory=dict)
    routing: RoutingSettings = Field(default_factory=RoutingSettings)
    criteria: CriteriaSettings = Field(default_factory=CriteriaSettings)
    jobs: JobSettings = Field(default_factory=JobSettings)
    outbox: OutboxSettings = Field(default_factory=OutboxSettings)
    report: ReportSettings = Field(default_factory=ReportSettings)
    imaging: ImagingSettings = Field(default_factory=ImagingSettings)
    logging: LoggingSettings = Field(default_factory=LoggingSettings)
    web: WebSettings = Field(default_factory=WebSettings)
    research: ResearchSettings = Field(default_factory=ResearchSettings)

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        # environment overrides the file (passed as init values)
        return (env_settings, init_settings)

    @property
    def research_folder(self) -> Path:
        """Where research exports are written (`research.folder`, else under the data folder)."""
        return self.research.folder or self.store.data_dir / "research"

    def outputs_of(self, destination: str) -> frozenset[OutputKind]:
        """The kinds of output `destination` takes: its `outputs`, or the default for an
        inline destination (`AE@host:port` in the routing file)."""
        dest = self.destinations.get(destination)
        return frozenset(dest.outputs if dest is not None else DEFAULT_OUTPUTS)


# --- YAML with line numbers -------------------------------------------------------


def load_yaml_with_lines(path: Path) -> tuple[Any, dict[tuple[str | int, ...], int]]:
    """Parse a YAML file; return the data and a map from key path to 1-based line."""
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise ConfigError(f"{path}: cannot read: {exc.strerror}") from exc
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f":{mark.line + 1}" if mark is not None else ""
        raise ConfigError(f"{path}{where}: not valid YAML: {exc}") from exc
    lines: dict[tuple[str | int, ...], int] = {}
    if node is not None:
        _walk(node, (), lines)
    return data, lines


def _walk(node: yaml.Node, prefix: tuple[str | int, ...], out: dict[tuple[str | int, ...], int]) -> None:
    out[prefix] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = (*prefix, str(key.value))
            out[k] = key.start_mark.line + 1
            _walk(value, k, out)
            out[k] = key.start_mark.line + 1
    elif isinstance(node, yaml.SequenceNode):
        for i, item in enumerate(node.value):
            _walk(item, (*prefix, i), out)


def line_of(lines: dict[tuple[str | int, ...], int], loc: tuple[str | int, ...]) -> int | None:
    """The line of the deepest key of `loc` that the file has."""
    for n in range(len(loc), -1, -1):
        line = lines.get(tuple(loc[:n]))
        if line is not None and n > 0:
            return line
    return None


Loc = tuple[str | int, ...]
UNKNOWN_SETTING = "unknown key (not a setting; check the spelling)"
# what pydantic puts before the text of a ValueError / assert raised in a validator
_PYDANTIC_PREFIXES = ("Value error, ", "Assertion failed, ")


def error_message(err: Mapping[str, Any], unknown: str = UNKNOWN_SETTING) -> str:
    """One pydantic error as our message: no "Value error," prefix; `unknown` for an unknown key."""
    if err["type"] == "extra_forbidden":
        return unknown
    msg = str(err["msg"])
    for prefix in _PYDANTIC_PREFIXES:
        if msg.startswith(prefix):
            return msg[len(prefix):]
    return msg


def dotted(loc: Loc) -> str:
    return ".".join(str(p) for p in loc) or "(top level)"


def format_validation_error(
    path: Path | str | None,
    exc: ValidationError,
    lines: dict[tuple[str | int, ...], int],
    *,
    key: Callable[[Loc], str] = dotted,
    unknown: str = UNKNOWN_SETTING,
) -> str:
    """One line per problem: file:line: key: what is wrong (what is allowed).

    `path` None means the environment; `key` renders an error's location (default: dotted
    keys); `unknown` is said of a key the model does not have.
    """
    out = []
    for err in exc.errors():
        loc = tuple(err["loc"])
        line = line_of(lines, loc) if lines else None
        where = f"{path}" if path is not None else "environment"
        if line is not None:
            where += f":{line}"
        out.append(f"{where}: {key(loc)}: {error_message(err, unknown)}")
    return "\n".join(out)


# --- secrets ------------------------------------------------------------------------

_SECRET_QUERY_KEYS = ("password", "passwd", "pwd", "secret", "token")


def mask_url(url: str) -> str:
    """`url` with its password (and password-like query values) replaced by ***: user:***@host."""
    try:
        parts = urlsplit(url)
        password = parts.password
    except ValueError:
        return url
    items = [item.partition("=") for item in parts.query.split("&")] if parts.query else []
    secret_query = any(k.lower() in _SECRET_QUERY_KEYS for k, _, _ in items)
    if not parts.scheme or (password is None and not secret_query):
        return url  # unchanged (urlunsplit would also drop the empty host of sqlite:////path)
    if password is not None:
        userinfo, _, hostport = parts.netloc.rpartition("@")
        parts = parts._replace(netloc=f"{userinfo.partition(':')[0]}:***@{hostport}")
    if secret_query:
        query = "&".join(f"{k}=***" if k.lower() in _SECRET_QUERY_KEYS else f"{k}{sep}{v}" for k, sep, v in items)
        parts = parts._replace(query=query)
    return urlunsplit(parts)


def masked(value: Any) -> Any:
    """A JSON-like value with the password of every URL in it masked (for printing settings)."""
    if isinstance(value, dict):
        return {k: masked(v) for k, v in value.items()}
    if isinstance(value, list):
        return [masked(v) for v in value]
    if isinstance(value, str) and "://" in value:
        return mask_url(value)
    return value


def printable_settings(settings: Settings) -> dict[str, Any]:
    """The effective settings as JSON-like data, `store.effective_database_url` added, secrets masked."""
    data = settings.model_dump(mode="json")
    data["store"]["effective_database_url"] = settings.store.effective_database_url
    out: dict[str, Any] = masked(data)
    return out


def load_settings(path: Path | None = None) -> Settings:
    """Build the settings from an optional YAML file and the environment."""
    data: Any = {}
    lines: dict[tuple[str | int, ...], int] = {}
    if path is not None:
        data, lines = load_yaml_with_lines(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path}:1: the settings file must be a mapping of sections")
    if "destinations" not in data:
        # the shipped routing file sends to `pacs`: without a `destinations:` section it is
        # a local Orthanc, and NADIR_DESTINATIONS__PACS__<KEY> overrides any of its keys
        data = {**data, "destinations": {"pacs": dict(DEFAULT_PACS)}}
    try:
        return Settings(**data)
    except ValidationError as exc:
        raise ConfigError(format_validation_error(path, exc, lines)) from exc
