"""Patient profiles (就诊人): real-name people a user books for, PII encrypted at rest."""

from __future__ import annotations

import datetime as dt
import logging
from typing import Protocol

from services.auth.pii import PiiCipher
from services.auth.repository import PatientRepository, UserRepository
from services.auth.service import require_caller
from services.auth.tokens import Clock
from shared.context import INTERNAL_ROLES, Caller
from shared.contracts.events import PatientChanged, PatientProfile, typed_event
from shared.contracts.patients import (
    Patient,
    PatientCreate,
    PatientList,
    PatientResolveParams,
    PatientUpdate,
    ResolvedPatient,
)
from shared.errors import Conflict, Forbidden, Internal, LimitReached, NotFound, ValidationFailed
from shared.idcard import mask_id_number, mask_phone, parse_resident_id
from shared.ids import new_id
from shared.messaging.events import PLATFORM, EventEnvelope, EventPublisher
from shared.storage.mongo import Document

log = logging.getLogger("guahao.auth.patients")

PROFILE_LIMIT = 5


def default_profile_id(docs: list[Document], chosen: str | None) -> str | None:
    """The user's choice while it exists, else the oldest profile (`docs` oldest first)."""
    if any(d["_id"] == chosen for d in docs):
        return chosen
    return docs[0]["_id"] if docs else None


class BookingPort(Protocol):
    async def forget_patient(self, user_id: str, patient_id: str, id_hash: str) -> None: ...


class PatientService:
    """A patient's own profiles; any other user's profile does not exist for them.

    The default profile is stored as the user's `default_patient_id` (one atomic write to
    move it); when it is unset or deleted, the oldest remaining profile is the default.
    """

    def __init__(
        self,
        patients: PatientRepository,
        users: UserRepository,
        cipher: PiiCipher,
        clock: Clock,
        *,
        events: EventPublisher | None = None,
        booking: BookingPort | None = None,
    ) -> None:
        self.patients = patients
        self.users = users
        self.cipher = cipher
        self.clock = clock
        self.events = events
        self.booking = booking

    async def create(self, caller: Caller | None, params: PatientCreate) -> Patient:
        user_id = self._patient_user(caller)
        user = await self.users.get(user_id)
        if "patient_data" not in ((user or {}).get("consents") or {}):
            # PIPL: ID numbers and phones are sensitive; a separate consent comes first
            raise Forbidden(
                "请先同意就诊人信息处理规则 / consent to the processing of patient "
                "data first (POST /me/consents, kind patient_data)",
                consent_required="patient_data",
            )
        now = self.clock()
        try:
            person = parse_resident_id(params.id_number, today=now.date())
        except ValueError as exc:
            raise ValidationFailed.field("id_number", str(exc)) from None
        patient_id = new_id("p")
        doc: Document = {
            "_id": patient_id,
            "user_id": user_id,
            "id_hash": self.cipher.lookup_hash(person.number),
            "gender": person.gender,
            "birth_date": person.birth_date.isoformat(),
            "relation": params.relation,
            "created_at": now,
            "updated_at": now,
            **self._seal(patient_id, name=params.name, id_number=person.number, phone=params.phone),
        }
        # Slots 0..LIMIT-1 under a unique (user_id, slot) index cap the count without a
        # transaction: a lost race for a slot just moves on to the next free one.
        for _ in range(2 * PROFILE_LIMIT):
            existing = await self.patients.list_for_user(user_id)
            if any(d["id_hash"] == doc["id_hash"] for d in existing):
                raise Conflict(
                    "该就诊人已存在 / this person is already a profile",
                    fields={"id_number": "该身份证号已添加 / already added"},
                )
            taken = {d["slot"] for d in existing}
            free = [slot for slot in range(PROFILE_LIMIT) if slot not in taken]
            if not free:
                raise LimitReached(
                    f"最多添加{PROFILE_LIMIT}个就诊人 / at most {PROFILE_LIMIT} profiles",
                    limit=PROFILE_LIMIT,
                )
            if await self.patients.insert({**doc, "slot": free[0]}):
                log.info(
                    "patient profile created", extra={"user_id": user_id, "patient_id": patient_id}
                )
                await self._publish(self._event("patient.registered", doc))
                return await self._reply(user_id, patient_id)
        raise Internal("就诊人保存冲突，请重试 / concurrent change, retry")

    async def list_profiles(self, caller: Caller | None) -> PatientList:
        """Default first, then oldest first."""
        user_id = self._patient_user(caller)
        docs, default_id = await self._profiles(user_id)
        docs.sort(key=lambda d: d["_id"] != default_id)
        return PatientList(items=[self._to_patient(d, default_id) for d in docs])

    async def get(self, caller: Caller | None, patient_id: str) -> Patient:
        return await self._reply(self._patient_user(caller), patient_id)

    async def update(
        self, caller: Caller | None, patient_id: str, params: PatientUpdate
    ) -> Patient:
        user_id = self._patient_user(caller)
        fields: Document = {"updated_at": self.clock()}
        if params.relation is not None:
            fields["relation"] = params.relation
        fields |= self._seal(patient_id, name=params.name, phone=params.phone)
        updated = await self.patients.update(user_id, patient_id, fields)
        if updated is None:
            raise NotFound()
        await self._publish(self._event("patient.updated", updated))
        if params.is_default:
            await self.users.set_default_patient(user_id, patient_id)
        log.info("patient profile updated", extra={"user_id": user_id, "patient_id": patient_id})
        return await self._reply(user_id, patient_id)

    async def delete(self, caller: Caller | None, patient_id: str) -> None:
        user_id = self._patient_user(caller)
        doc = await self.patients.get(user_id, patient_id)
        if doc is None:
            raise NotFound()
        if self.booking is not None:
            # before the profile goes: once this returns it can never book again
            await self.booking.forget_patient(user_id, patient_id, doc["id_hash"])
        if not await self.patients.delete(user_id, patient_id):
            raise NotFound()
        await self.users.clear_default_patient(user_id, patient_id)
        log.info("patient profile deleted", extra={"user_id": user_id, "patient_id": patient_id})

    async def resolve(self, caller: Caller | None, params: PatientResolveParams) -> ResolvedPatient:
        """Internal lookup for booking: the profile `patient_id` of `user_id`, with its
        person hash. Allowed for service-to-service calls (no caller, or an internal or
        platform role) and for the owner themself; never routed by the gateway."""
        if (
            caller is not None
            and caller.role not in INTERNAL_ROLES
            and not (caller.role == "patient" and caller.user_id == params.user_id)
        ):
            raise Forbidden()
        doc = await self.patients.get(params.user_id, params.patient_id)
        if doc is None:
            raise NotFound()
        return ResolvedPatient(**self._view(doc), id_hash=doc["id_hash"])

    async def openid_of(self, caller: Caller | None, user_id: str) -> str:
        """Internal lookup for notify: the WeChat openid its subscribe messages go to.
        Service-to-service only (never routed by the gateway); NotFound unless `user_id`
        is a patient user."""
        if caller is not None and caller.role not in INTERNAL_ROLES:
            raise Forbidden()
        user = await self.users.get(user_id)
        if user is None or user.get("role") != "patient" or not user.get("openid"):
            raise NotFound()
        return str(user["openid"])

    def _patient_user(self, caller: Caller | None) -> str:
        caller = require_caller(caller)
        if caller.role != "patient":
            raise Forbidden()
        return caller.user_id

    async def _profiles(self, user_id: str) -> tuple[list[Document], str | None]:
        docs = await self.patients.list_for_user(user_id)
        user = await self.users.get(user_id)
        return docs, default_profile_id(docs, (user or {}).get("default_patient_id"))

    async def _reply(self, user_id: str, patient_id: str) -> Patient:
        docs, default_id = await self._profiles(user_id)
        doc = next((d for d in docs if d["_id"] == patient_id), None)
        if doc is None:
            raise NotFound()
        return self._to_patient(doc, default_id)

    def _to_patient(self, doc: Document, default_id: str | None) -> Patient:
        return Patient(
            **self._view(doc), relation=doc["relation"], is_default=doc["_id"] == default_id
        )

    def _view(self, doc: Document) -> Document:
        """The fields every reply shares: decrypted name, masked numbers."""
        return {
            "id": doc["_id"],
            "name": self._open(doc, "name"),
            "id_number_masked": mask_id_number(self._open(doc, "id_number")),
            "gender": doc["gender"],
            "birth_date": dt.date.fromisoformat(doc["birth_date"]),
            "phone_masked": mask_phone(self._open(doc, "phone")),
        }

    def _event(self, event_type: str, doc: Document) -> EventEnvelope:
        """`patient.registered|updated`: what booking keeps of a profile (its projection).
        Internal: routed as `<type>.platform`, which no hospital binding matches.

        Published straight after the write, not through an outbox: an outbox would keep the
        name in clear in the stored profile, and a lost event only costs booking one
        read-through to auth at the profile's first booking (a deletion does not rely on
        events: booking is told synchronously)."""
        return typed_event(
            event_type,
            PLATFORM,
            PatientChanged(
                patient=PatientProfile(
                    id=doc["_id"],
                    user_id=doc["user_id"],
                    id_hash=doc["id_hash"],
                    name=self._open(doc, "name"),
                    id_number_masked=mask_id_number(self._open(doc, "id_number")),
                )
            ),
            at=self.clock(),
        )

    async def _publish(self, event: EventEnvelope) -> None:
        if self.events is None:
            return
        try:
            await self.events.publish(event)
        except Exception as exc:
            log.warning("patient event not published", extra={"error": repr(exc)})

    def _seal(self, patient_id: str, **values: str | None) -> Document:
        """`<field>_enc` for every given value, bound to its profile and field."""
        return {
            f"{field}_enc": self.cipher.encrypt(f"patients/{patient_id}/{field}", value)
            for field, value in values.items()
            if value is not None
        }

    def _open(self, doc: Document, field: str) -> str:
        return self.cipher.decrypt(f"patients/{doc['_id']}/{field}", doc[f"{field}_enc"])
