"""Documents: immutable, versioned content with metadata and ledger receipts."""

from dangan.documents.ingest import (
    Ingested,
    IngestRequest,
    IngestWriter,
    admit_upload,
    build_receipt,
    complete_ingest,
    find_replay,
    record_ingest,
    request_fingerprint,
)
from dangan.documents.service import (
    Document,
    DocumentMetadata,
    DocumentVersion,
    get_document,
    get_version,
    list_documents,
)
from dangan.documents.sniff import SNIFF_BYTES, sniff_media_type
from dangan.documents.validation import VersionValidation, validate_version

__all__ = [
    "SNIFF_BYTES",
    "Document",
    "DocumentMetadata",
    "DocumentVersion",
    "IngestRequest",
    "IngestWriter",
    "Ingested",
    "VersionValidation",
    "admit_upload",
    "build_receipt",
    "complete_ingest",
    "find_replay",
    "request_fingerprint",
    "get_document",
    "get_version",
    "list_documents",
    "record_ingest",
    "sniff_media_type",
    "validate_version",
]
