"""Tables of the receiving node: studies and their instances.

A `Study` row is the unit of assembly. It is RECEIVING while instances arrive,
READY once none has arrived for the settle time (see `daemon.store.assembly`),
and later parts of Nadir move it on (PROCESSING, DONE, FAILED). An instance that
arrives for a study that is no longer RECEIVING opens a new *revision*: the
study's `revision` is incremented and it is RECEIVING again, so the new revision
is assembled and processed again. Every `Instance` records the revision it
arrived in.

UID columns hold what UI allows (64; the receiver refuses what is not a UID). PatientID,
AccessionNumber and Modality are kept whole in TEXT columns: a modality that sends more
than the VR allows (PS3.5 Table 6.2-1) is warned about, never refused nor truncated, so
the database never refuses a value (`daemon.store.db.widen_text_columns` widens the
VARCHAR columns of an older database).

Other parts declare their own tables in their own modules, deriving from
`daemon.store.db.Base` (they may reference `studies.id`).
"""

from __future__ import annotations

import enum
from datetime import datetime

from sqlalchemy import BigInteger, DateTime, ForeignKey, Index, Integer, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from daemon.store.db import Base

# PS3.5 Table 6.2-1: the maximum length of a value, in characters, per VR
VR_MAX = {"UI": 64, "LO": 64, "SH": 16, "CS": 16, "AE": 16}
UID_LENGTH = VR_MAX["UI"]


class StudyState(enum.StrEnum):
    RECEIVING = "RECEIVING"  # instances are arriving; not settled yet
    READY = "READY"  # settled: no instance for settle_seconds; waiting to be routed
    PROCESSING = "PROCESSING"  # jobs of the current revision are running
    DONE = "DONE"  # every job and delivery of the current revision is finished
    FAILED = "FAILED"  # work of the current revision failed; an admin may retry


# States whose work is finished: retention may remove such a study after its time.
FINISHED_STATES = frozenset({StudyState.DONE})


class Study(Base):
    __tablename__ = "studies"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    study_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    state: Mapped[str] = mapped_column(String(16), index=True, default=StudyState.RECEIVING)
    revision: Mapped[int] = mapped_column(Integer, default=1)
    # values as sent, whole: a modality that exceeds the VR's maximum is warned about, never refused
    patient_id: Mapped[str | None] = mapped_column(Text, nullable=True)
    accession_number: Mapped[str | None] = mapped_column(Text, nullable=True)
    first_received: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    last_received: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # when the current revision was opened (first instance of the revision)
    revision_started: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # when `state` last changed
    state_changed: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    # a route may ask for a longer settle time than the node's default
    settle_seconds: Mapped[float | None] = mapped_column(nullable=True)
    instance_count: Mapped[int] = mapped_column(Integer, default=0)
    # copies refused: another dataset under a SOP Instance UID already stored in this study
    conflicting_duplicates: Mapped[int] = mapped_column(Integer, default=0, server_default=text("0"))


class Instance(Base):
    __tablename__ = "instances"
    __table_args__ = (Index("ix_instances_study_series", "study_id", "series_instance_uid"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    sop_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH), unique=True)
    study_id: Mapped[int] = mapped_column(ForeignKey("studies.id", ondelete="CASCADE"))
    series_instance_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    sop_class_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    transfer_syntax_uid: Mapped[str] = mapped_column(String(UID_LENGTH))
    modality: Mapped[str | None] = mapped_column(Text, nullable=True)
    # path of the file relative to the spool directory
    path: Mapped[str] = mapped_column(String(512))
    size: Mapped[int] = mapped_column(BigInteger)
    revision: Mapped[int] = mapped_column(Integer)
    calling_ae: Mapped[str] = mapped_column(String(VR_MAX["AE"]))
    received: Mapped[datetime] = mapped_column(DateTime(timezone=True))
