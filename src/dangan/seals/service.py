"""Sealing and signing documents: the flow from a request to a new, recorded version.

    seal registration   image (generated or uploaded) → store; key source opened and its
                        certificate checked; ``seal.registered`` in the ledger
    seal a document     current version (a PDF) → PAdES signature of the seal's key with
                        its image, at a position, or sliced along the right edge of every
                        page (cross-page seal, 骑缝章) → new object → new version,
                        ``document.sealed`` and a usage-log row in one transaction
    sign a document     the same with an officer's personal certificate and visible text
                        (``document.signed``)

The signature is made before the transaction, from the version current at the time; if
another version lands meanwhile, recording fails with ``version_conflict`` and the signed
object stays unreferenced (an audit lists it). The seal's status is checked again inside
the transaction, so a seal revoked while a signature was being made never seals.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import hashlib
import io
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from pyhanko.pdf_utils.reader import PdfFileReader
from pyhanko.sign.timestamps import TimeStamper
from pyhanko_certvalidator import ValidationContext
from sqlalchemy import Connection

from dangan.bootstrap import Backends
from dangan.clients import Client
from dangan.config import Settings
from dangan.documents.ingest import build_receipt
from dangan.documents.service import DocumentVersion, get_document
from dangan.documents.versions import NewVersion, add_version
from dangan.errors import Forbidden, InvalidRequest, PayloadTooLarge, UnsupportedMediaType
from dangan.idempotency import find_replay, fingerprint, idempotent_write
from dangan.ids import new_id
from dangan.ledger.service import receipt_proof, with_proof
from dangan.seals import registry
from dangan.seals.appearance import accept_seal_image, render_round_seal, slice_for_cross_page
from dangan.seals.keys import KeyRing, check_seal_certificate, resolve_key_request
from dangan.signing._pdf_errors import PDF_STRUCTURE_ERRORS
from dangan.signing._x509 import to_asn1
from dangan.signing.keys import LoadedKeySigner, SigningCredential
from dangan.signing.pades import (
    DocMdpPermission,
    ExtraWidget,
    InProcessTimeStamper,
    PadesLevel,
    UnsignablePdf,
    http_timestamper,
    sign_pdf,
)
from dangan.signing.trust import deployment_trust
from dangan.storage import StoredObject

#: Points per millimetre: requests place seals in millimetres, PDFs in points (1/72 in).
PT_PER_MM = 72 / 25.4
#: Diameter of an official seal, GA 241.1: 42 mm (40 mm also common).
DEFAULT_SEAL_MM = 42.0


@dataclass(frozen=True)
class Placement:
    """Where a visible signature goes, in millimetres from the page's top-left corner."""

    page: int = -1
    """1-based page number; negative counts from the end (-1: the last page)."""
    x: float | None = None
    """Left edge; default: centred on the page."""
    y: float | None = None
    """Top edge; default: 60 mm above the page's bottom edge (where signature blocks are)."""
    width: float = DEFAULT_SEAL_MM
    height: float = DEFAULT_SEAL_MM


@dataclass(frozen=True)
class SealRequest:
    """``POST /v1/documents/{id}/seal``."""

    seal_id: str
    placement: Placement = Placement()
    cross_page: bool = False
    """Slice the seal along the right edge of every page instead (骑缝章); only the
    placement's ``y`` and ``height`` (the seal's diameter) apply."""
    level: PadesLevel = "B-T"
    reason: str | None = None
    location: str | None = None
    certify: bool = False
    docmdp: DocMdpPermission = "fill_forms"
    operator: str | None = None
    """Who asked, at the approval system (kept in the usage log, not in the ledger)."""


@dataclass(frozen=True)
class SignRequest:
    """``POST /v1/documents/{id}/sign``."""

    officer_id: str
    """The officer's identifier at the organisation (e.g. staff number)."""
    officer_name: str
    """Name as it appears in the certificate and, by default, the visible text."""
    placement: Placement = Placement(width=60.0, height=20.0)
    text: str | None = None
    """Visible text; default: the name and the signing time."""
    level: PadesLevel = "B-T"
    reason: str | None = None
    location: str | None = None
    key_type: Literal["rsa2048", "p256"] = "p256"


class SealingService:
    """Seal registry operations and the sealing/signing flow of one process."""

    def __init__(self, *, settings: Settings, backends: Backends) -> None:
        self.settings = settings
        self.backends = backends
        self.keys = KeyRing()
        self.timestamper: TimeStamper = (
            http_timestamper(settings.tsa_url)
            if settings.tsa_url
            else InProcessTimeStamper(backends.signing.tsa)
        )
        self._officers: dict[tuple[str, str, str, str], SigningCredential] = {}
        self._officers_lock = threading.Lock()
        self._images: dict[str, bytes] = {}

    def close(self) -> None:
        """Close opened key sources."""
        self.keys.close()

    # --- registry -----------------------------------------------------------------------

    def register(
        self,
        client: Client,
        *,
        organisation: str,
        name: str,
        kind: str,
        image: Mapping[str, Any] | None,
        key: Mapping[str, Any] | None,
    ) -> tuple[registry.Seal, Any]:
        """Register a seal (blocking: run it in a thread). Returns the seal and its
        ledger proof once committed."""
        registry.check_registration(client, organisation=organisation, kind=kind)
        png = self._seal_image(image or {}, organisation=organisation, kind=kind)
        now = self.backends.clock()
        stored_key = resolve_key_request(
            key or {},
            settings=self.settings,
            pki=self.backends.signing.pki,
            organisation=organisation,
            now=now,
        )
        seal_id = new_id(now)
        credential = self.keys.credential(seal_id, stored_key)
        check_seal_certificate(credential.certificate, now=now)
        certificate = credential.certificate.public_bytes(serialization.Encoding.DER)
        stored_image = self._put(png)

        def job(conn: Connection) -> tuple[registry.Seal, Any]:
            return registry.register_seal(
                conn,
                seal_id=seal_id,
                client=client,
                organisation=organisation,
                name=name,
                kind=kind,
                image=stored_image,
                certificate=certificate,
                certificate_sha256=hashlib.sha256(certificate).hexdigest(),
                key_source=stored_key,
                now=self.backends.clock(),
            )

        try:
            return self.backends.writer.run(job, complete=with_proof)
        except BaseException:
            self.keys.forget(seal_id)
            raise

    def change_status(
        self, client: Client, seal_id: str, *, action: str, reason: str | None
    ) -> tuple[registry.Seal, Any]:
        """Suspend, reinstate or revoke (blocking)."""

        def job(conn: Connection) -> tuple[registry.Seal, Any]:
            return registry.change_status(
                conn,
                seal_id=seal_id,
                action=action,
                client=client,
                reason=reason,
                now=self.backends.clock(),
            )

        seal, proof = self.backends.writer.run(job, complete=with_proof)
        if seal.status == "revoked":
            self.keys.forget(seal_id)
        return seal, proof

    def seal_image(self, seal: registry.Seal) -> bytes:
        """The seal's PNG (cached; objects never change)."""
        png = self._images.get(seal.image_sha256)
        if png is None:
            png = b"".join(self.backends.store.read(seal.image_sha256))
            self._images[seal.image_sha256] = png
        return png

    # --- sealing and signing ------------------------------------------------------------

    async def seal_document(
        self,
        client: Client,
        document_id: str,
        request: SealRequest,
        *,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Seal the document's current version; (receipt of the new version, replayed)."""
        fp = fingerprint({"op": "seal", "document": document_id, "request": asdict(request)})
        prepared = await asyncio.to_thread(
            self._prepare_seal, client, document_id, request, idempotency_key, fp
        )
        if isinstance(prepared, dict):
            return prepared, True
        seal, version, credential, (widgets, page, box, first_png), pdf = prepared
        stored = await self._sign_and_store(
            pdf,
            credential,
            level=request.level,
            page=page,
            box=box,
            appearance=first_png,
            extra_widgets=widgets,
            reason=request.reason,
            location=request.location,
            certify=request.certify,
            docmdp=request.docmdp,
        )

        def write(conn: Connection) -> NewVersion:
            current = registry.get_seal(conn, seal.id, for_update=True)
            registry.require_active(current)
            new = add_version(
                conn,
                document_id=document_id,
                based_on=version,
                stored=stored,
                media_type="application/pdf",
                client=client,
                event="document.sealed",
                details={
                    "seal": seal.id,
                    "certificate_sha256": seal.certificate_sha256,
                    "pades_level": request.level,
                    "cross_page": request.cross_page,
                },
                now=self.backends.clock(),
            )
            registry.record_use(
                conn,
                seal_id=seal.id,
                document_id=document_id,
                version=new.version.version,
                client=client,
                operator=request.operator,
                entry=new.entry,
            )
            return new

        extra = {"seal": {"id": seal.id, "kind": seal.kind, "cross_page": request.cross_page}}
        return await self._record(client, idempotency_key, fp, write, extra)

    async def sign_document(
        self,
        client: Client,
        document_id: str,
        request: SignRequest,
        *,
        idempotency_key: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """Sign the current version as an officer; (receipt of the new version, replayed)."""
        fp = fingerprint({"op": "sign", "document": document_id, "request": asdict(request)})
        prepared = await asyncio.to_thread(
            self._prepare_signing, client, document_id, request, idempotency_key, fp
        )
        if isinstance(prepared, dict):
            return prepared, True
        version, credential, (page, box), pdf = prepared
        stored = await self._sign_and_store(
            pdf,
            credential,
            level=request.level,
            page=page,
            box=box,
            text=request.text
            or f"{request.officer_name}\n{self.backends.clock():%Y-%m-%d %H:%M %Z}",
            reason=request.reason,
            location=request.location,
        )
        certificate = credential.certificate.public_bytes(serialization.Encoding.DER)
        certificate_sha256 = hashlib.sha256(certificate).hexdigest()

        def write(conn: Connection) -> NewVersion:
            return add_version(
                conn,
                document_id=document_id,
                based_on=version,
                stored=stored,
                media_type="application/pdf",
                client=client,
                event="document.signed",
                details={"certificate_sha256": certificate_sha256, "pades_level": request.level},
                now=self.backends.clock(),
            )

        extra = {
            "signer": {
                "certificate_sha256": certificate_sha256,
                "subject": credential.certificate.subject.rfc4514_string(),
            }
        }
        return await self._record(client, idempotency_key, fp, write, extra)

    async def seal_pdf(
        self,
        seal: registry.Seal,
        pdf: bytes,
        *,
        page: int,
        box: tuple[float, float, float, float],
        level: PadesLevel = "B-T",
        reason: str | None = None,
        changes: Callable[[Any], None] | None = None,
    ) -> StoredObject:
        """Seal ``pdf`` (not yet a document) with ``seal`` at ``box`` (points) on the
        0-based ``page`` and store the result; ``changes`` edit the document in the
        signature's own update (see :func:`sign_pdf`). The caller records the result,
        checking inside its transaction that the seal is still active
        (:func:`registry.require_active`) and logging the use (:func:`registry.record_use`)."""
        registry.require_active(seal)
        credential = await asyncio.to_thread(self.keys.credential, seal.id, seal.key_source)
        return await self._sign_and_store(
            pdf,
            credential,
            level=level,
            page=page,
            box=box,
            appearance=self.seal_image(seal),
            reason=reason,
            changes=changes,
        )

    def _replay(self, client: Client, key: str | None, fp: str) -> dict[str, Any] | None:
        if key is None:
            return None
        with self.backends.engine.connect() as conn:
            return find_replay(conn, client_id=client.id, key=key, fingerprint=fp)

    async def _record(
        self,
        client: Client,
        key: str | None,
        fp: str,
        write: Callable[[Connection], NewVersion],
        extra: Mapping[str, Any],
    ) -> tuple[dict[str, Any], bool]:
        """Run ``write`` in the writer's next batch, keeping the answer under ``key``."""
        job, complete = idempotent_write(
            client_id=client.id,
            key=key,
            fingerprint=fp,
            write=write,
            respond=lambda conn, new, sealed: {**_version_receipt(conn, new, sealed), **extra},
            clock=self.backends.clock,
        )
        return await asyncio.wrap_future(self.backends.writer.submit(job, complete=complete))

    # --- steps ----------------------------------------------------------------------------

    def _prepare_seal(
        self,
        client: Client,
        document_id: str,
        request: SealRequest,
        idempotency_key: str | None,
        fp: str,
    ) -> dict[str, Any] | tuple[Any, ...]:
        """Everything sealing needs before signing (blocking), or the stored answer of
        a retried request."""
        replay = self._replay(client, idempotency_key, fp)
        if replay is not None:
            return replay
        with self.backends.engine.connect() as conn:
            seal = registry.get_seal(conn, request.seal_id)
        registry.require_same_organisation(seal, client)
        registry.require_active(seal)
        version, pdf = self._prepare_document(client, document_id)
        credential = self.keys.credential(seal.id, seal.key_source)
        layout = _seal_layout(pdf, request, self.seal_image(seal))
        return seal, version, credential, layout, pdf

    def _prepare_signing(
        self,
        client: Client,
        document_id: str,
        request: SignRequest,
        idempotency_key: str | None,
        fp: str,
    ) -> dict[str, Any] | tuple[Any, ...]:
        """Everything an officer's signature needs before signing (blocking), or the
        stored answer of a retried request."""
        replay = self._replay(client, idempotency_key, fp)
        if replay is not None:
            return replay
        version, pdf = self._prepare_document(client, document_id)
        credential = self._officer_credential(client, request)
        return version, credential, _place(pdf, request.placement), pdf

    def _prepare_document(self, client: Client, document_id: str) -> tuple[DocumentVersion, bytes]:
        with self.backends.engine.connect() as conn:
            document = get_document(conn, document_id)
        if document.metadata.organisation != client.organisation:
            raise Forbidden(
                f"this API key acts for {client.organisation!r}; document {document_id} "
                f"belongs to {document.metadata.organisation!r}"
            )
        version = document.versions[-1]
        if version.media_type != "application/pdf":
            raise UnsupportedMediaType(
                f"only PDFs are sealed or signed; version {version.version} is "
                f"{version.media_type}"
            )
        if version.size > self.settings.max_sign_bytes:
            raise PayloadTooLarge(
                f"the PDF has {version.size} bytes; at most {self.settings.max_sign_bytes} "
                "are sealed or signed (DANGAN_MAX_SIGN_BYTES)"
            )
        pdf = b"".join(self.backends.store.read(version.sha256))
        return version, pdf

    def _officer_credential(self, client: Client, request: SignRequest) -> SigningCredential:
        """The officer's development certificate, issued on first use in this process.

        Production deployments give officers their own keys (tokens); the development PKI
        stands in for them so that the flow can be tried end to end.
        """
        key = (client.organisation, request.officer_id, request.officer_name, request.key_type)
        with self._officers_lock:
            credential = self._officers.get(key)
            if credential is None:
                issued = self.backends.signing.pki.issue_signing_certificate(
                    person=request.officer_name,
                    organisation=client.organisation,
                    key_type=request.key_type,
                    now=self.backends.clock(),
                )
                signer = LoadedKeySigner.create(
                    certificate=issued.certificate,
                    private_key=issued.private_key,
                    chain=issued.chain,
                )
                credential = SigningCredential(
                    signer=signer, certificate=issued.certificate, chain=issued.chain
                )
                self._officers[key] = credential
        return credential

    async def _sign_and_store(
        self, pdf: bytes, credential: SigningCredential, *, level: PadesLevel, **options: Any
    ) -> StoredObject:
        """Sign and store the result, in a worker thread: the CPU work (hashing, the
        signature, the timestamp) then does not hold up this loop's other requests."""
        now = self.backends.clock()
        context = self._validation_context(credential, now) if level in ("B-LT", "B-LTA") else None

        def work() -> StoredObject:
            # pyHanko's async API, on an event loop of this worker thread.
            signed = asyncio.run(
                sign_pdf(
                    pdf,
                    signer=credential.signer,
                    now=now,
                    level=level,
                    timestamper=self.timestamper if level != "B-B" else None,
                    validation_context=context,
                    **options,
                )
            )
            return self._put(signed)

        return await asyncio.to_thread(work)

    def _validation_context(self, credential: SigningCredential, now: datetime) -> ValidationContext:
        """What goes into the DSS for B-LT/B-LTA: the chain and the issuing CA's CRL."""
        signing = self.backends.signing
        trust = deployment_trust(signing)
        intermediates = (*credential.chain, signing.pki.tsa.certificate, *signing.pki.chain)
        return ValidationContext(
            trust_roots=[to_asn1(root) for root in trust.roots],
            other_certs=[to_asn1(c) for c in intermediates],
            crls=list(trust.crls),
            allow_fetching=False,
            moment=now,
        )

    def _put(self, content: bytes) -> StoredObject:
        writer = self.backends.store.open_writer()
        try:
            writer.write(content)
            return writer.commit()
        finally:
            writer.abort()

    def _seal_image(self, image: Mapping[str, Any], *, organisation: str, kind: str) -> bytes:
        if "png_base64" in image:
            try:
                raw = base64.b64decode(image["png_base64"], validate=True)
            except (binascii.Error, TypeError, ValueError) as exc:
                raise InvalidRequest("image.png_base64 is not base64") from exc
            return accept_seal_image(raw)
        return render_round_seal(
            organisation=image.get("text") or organisation,
            center_text=image.get("center_text", registry.KIND_LABELS[kind]),
            bottom_text=image.get("bottom_text"),
        )


def _version_receipt(conn: Connection, new: NewVersion, sealed: Any) -> dict[str, Any]:
    version = new.version
    receipt = build_receipt(
        new.document_id,
        version.version,
        StoredObject(version.sha256, version.size),
        version.media_type,
        new.entry,
    )
    if sealed is not None:
        receipt["ledger"] = receipt_proof(conn, new.entry, sealed)
    return receipt


# --- layout ---------------------------------------------------------------------------------


def _pages(pdf: bytes) -> list[tuple[float, float, float, float]]:
    """Each page's visible box (CropBox, else MediaBox) in points."""
    try:
        reader = PdfFileReader(io.BytesIO(pdf), strict=False)
        boxes = []
        for index in range(int(reader.root["/Pages"]["/Count"])):
            page = reader.find_page_for_modification(index)[0].get_object()
            box = _inherited(page, "/CropBox") or _inherited(page, "/MediaBox")
            boxes.append(tuple(float(v) for v in box))  # type: ignore[arg-type]
    except (*PDF_STRUCTURE_ERRORS, TypeError) as exc:
        raise UnsignablePdf("the PDF's pages cannot be read") from exc
    return boxes  # type: ignore[return-value]


def _inherited(page: Any, key: str) -> Any:
    node = page
    while node is not None:
        if key in node:
            return node[key]
        node = node.get("/Parent")
        node = node.get_object() if node is not None else None
    return None


def _page_index(page: int, count: int) -> int:
    if page == 0 or not -count <= page <= count:
        raise InvalidRequest(f"the PDF has pages 1 to {count} (or -1 to -{count}); not {page}")
    return page - 1 if page > 0 else count + page


def _place(pdf: bytes, placement: Placement) -> tuple[int, tuple[float, float, float, float]]:
    """The 0-based page and the box in points for ``placement``."""
    pages = _pages(pdf)
    index = _page_index(placement.page, len(pages))
    x0, y0, x1, y1 = pages[index]
    width, height = placement.width * PT_PER_MM, placement.height * PT_PER_MM
    if width <= 0 or height <= 0:
        raise InvalidRequest("width and height must be positive")
    left = x0 + placement.x * PT_PER_MM if placement.x is not None else (x0 + x1 - width) / 2
    top = y1 - placement.y * PT_PER_MM if placement.y is not None else y0 + 60 * PT_PER_MM + height
    box = (left, top - height, left + width, top)
    if box[0] < x0 - 0.01 or box[2] > x1 + 0.01 or box[1] < y0 - 0.01 or box[3] > y1 + 0.01:
        raise InvalidRequest("the seal or signature would not lie entirely on the page")
    return index, box


def _seal_layout(
    pdf: bytes, request: SealRequest, png: bytes
) -> tuple[Sequence[ExtraWidget], int, tuple[float, float, float, float], bytes]:
    """Widgets of the seal: one at the placement, or a slice on every page's right edge."""
    if not request.cross_page:
        page, box = _place(pdf, request.placement)
        return (), page, box, png
    pages = _pages(pdf)
    if len(pages) < 2:
        raise InvalidRequest("a cross-page seal needs a document of two pages or more")
    diameter = request.placement.height * PT_PER_MM
    slices = slice_for_cross_page(png, pages=len(pages))
    boxes = []
    for i, (x0, y0, x1, y1) in enumerate(pages):
        # Slice i spans its share of the seal's width, ending at the page's right edge.
        share = diameter / len(pages)
        if request.placement.y is not None:
            top = y1 - request.placement.y * PT_PER_MM
        else:
            top = (y0 + y1 + diameter) / 2
        if top - diameter < y0 or top > y1:
            raise InvalidRequest(f"the cross-page seal would not lie on page {i + 1}")
        boxes.append((x1 - share, top - diameter, x1, top))
    widgets = [ExtraWidget(i, boxes[i], slices[i]) for i in range(1, len(pages))]
    return widgets, 0, boxes[0], slices[0]

