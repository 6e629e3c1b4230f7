"""The registry database: models, engines and sessions, and the shipped migrations."""

from .models import (
    DATASET_KINDS,
    DATASET_NAME,
    JOB_STATES,
    ROLES,
    STUDY_ROLES,
    UPLOAD_STATES,
    VERSION_STATES,
    Asset,
    Audit,
    Base,
    Blob,
    Contribution,
    Dataset,
    Job,
    ProtocolRequest,
    Site,
    Study,
    StudyDataset,
    Token,
    Upload,
    UploadChunk,
    UTCDateTime,
    Version,
    utcnow,
)
from .session import (
    alembic_config,
    current_revision,
    downgrade,
    head_revision,
    make_engine,
    make_session_factory,
    normalize_url,
    upgrade,
)

__all__ = [
    "DATASET_KINDS", "DATASET_NAME", "JOB_STATES", "ROLES", "STUDY_ROLES", "UPLOAD_STATES",
    "VERSION_STATES", "Asset", "Audit", "Base", "Blob", "Contribution", "Dataset", "Job",
    "ProtocolRequest", "Site", "Study", "StudyDataset", "Token", "UTCDateTime", "Upload",
    "UploadChunk", "Version", "alembic_config", "current_revision", "downgrade", "head_revision",
    "make_engine", "make_session_factory", "normalize_url", "upgrade", "utcnow",
]
