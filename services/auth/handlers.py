"""RPC entry points of `rpc.auth`: contract in, service call, contract out.

Replicas compete on the one `rpc.auth` queue; every method is safe to serve from any of them.
"""

from __future__ import annotations

from typing import Any

from services.auth.audit import AuditTrail
from services.auth.patients import PatientService
from services.auth.service import AuthService
from services.auth.staff import StaffService
from shared.access import require_internal_or_caller
from shared.context import CallContext
from shared.contracts.auth import (
    AccountDeleted,
    AuditLog,
    AuditQuery,
    ConsentGiven,
    CreateStaffParams,
    LogoutRequest,
    Me,
    PasswordChange,
    PasswordResetParams,
    PasswordResetResult,
    RefreshRequest,
    RevocationList,
    RevocationQuery,
    SigningKeys,
    StaffAccount,
    StaffList,
    StaffListParams,
    StaffLoginParams,
    StaffPatchParams,
    TokenPair,
    WechatLogin,
)
from shared.contracts.notify import UserOpenid, UserOpenidQuery
from shared.contracts.patients import (
    Patient,
    PatientCreate,
    PatientList,
    PatientRef,
    PatientResolveParams,
    PatientUpdateParams,
    ResolvedPatient,
)
from shared.messaging.rpc import RpcServer


def register(
    server: RpcServer,
    auth: AuthService,
    patients: PatientService,
    staff: StaffService,
    audit: AuditTrail,
) -> None:
    """Serve the auth methods from `server`."""

    async def wechat_login(params: WechatLogin, ctx: CallContext) -> TokenPair:
        return await auth.wechat_login(params.code)

    async def staff_login(params: StaffLoginParams, ctx: CallContext) -> TokenPair:
        return await auth.staff_login(params.username, params.password, params.client_ip)

    async def refresh(params: RefreshRequest, ctx: CallContext) -> TokenPair:
        return await auth.refresh(params.refresh_token)

    async def logout(params: LogoutRequest, ctx: CallContext) -> dict[str, Any]:
        await auth.logout(ctx.caller, params.refresh_token)
        return {}

    async def me(params: None, ctx: CallContext) -> Me:
        return await auth.me(ctx.caller)

    async def record_consent(params: ConsentGiven, ctx: CallContext) -> Me:
        return await auth.record_consent(ctx.caller, params)

    async def delete_me(params: None, ctx: CallContext) -> AccountDeleted:
        return await auth.delete_account(ctx.caller)

    async def signing_keys(params: None, ctx: CallContext) -> SigningKeys:
        return auth.signing_keys()

    async def create_staff(params: CreateStaffParams, ctx: CallContext) -> StaffAccount:
        return await staff.create_staff(ctx.caller, params)

    async def list_staff(params: StaffListParams, ctx: CallContext) -> StaffList:
        return await staff.list_staff(ctx.caller, params.hospital_id)

    async def update_staff(params: StaffPatchParams, ctx: CallContext) -> StaffAccount:
        return await staff.update_staff(ctx.caller, params)

    async def reset_staff_password(
        params: PasswordResetParams, ctx: CallContext
    ) -> PasswordResetResult:
        return await staff.reset_password(ctx.caller, params)

    async def change_password(params: PasswordChange, ctx: CallContext) -> TokenPair:
        return await staff.change_password(ctx.caller, params)

    async def revocations(params: RevocationQuery, ctx: CallContext) -> RevocationList:
        return await staff.revocations(ctx.caller, params.since)

    async def audit_log(params: AuditQuery, ctx: CallContext) -> AuditLog:
        return await audit.log(ctx.caller, params)

    async def create_patient(params: PatientCreate, ctx: CallContext) -> Patient:
        return await patients.create(ctx.caller, params)

    async def list_patients(params: None, ctx: CallContext) -> PatientList:
        return await patients.list_profiles(ctx.caller)

    async def get_patient(params: PatientRef, ctx: CallContext) -> Patient:
        return await patients.get(ctx.caller, params.patient_id)

    async def update_patient(params: PatientUpdateParams, ctx: CallContext) -> Patient:
        return await patients.update(ctx.caller, params.patient_id, params)

    async def delete_patient(params: PatientRef, ctx: CallContext) -> dict[str, Any]:
        await patients.delete(ctx.caller, params.patient_id)
        return {}

    async def resolve_patient(params: PatientResolveParams, ctx: CallContext) -> ResolvedPatient:
        require_internal_or_caller(ctx)
        return await patients.resolve(ctx.caller, params)

    async def user_openid(params: UserOpenidQuery, ctx: CallContext) -> UserOpenid:
        require_internal_or_caller(ctx)
        return UserOpenid(openid=await patients.openid_of(ctx.caller, params.user_id))

    for handler in (
        wechat_login,
        staff_login,
        refresh,
        logout,
        me,
        record_consent,
        delete_me,
        signing_keys,
        create_staff,
        list_staff,
        update_staff,
        reset_staff_password,
        change_password,
        revocations,
        audit_log,
        create_patient,
        list_patients,
        get_patient,
        update_patient,
        delete_patient,
        resolve_patient,
        user_openid,
    ):
        server.add_method(handler.__name__, handler)
