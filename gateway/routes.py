"""The public HTTP API as data: one `Route` per endpoint, served by one generic handler.

Adding an endpoint is one line in `ROUTES`: the handler (`gateway.dispatch`), the OpenAPI
document (`gateway.openapi`), metrics and rate limits all read this table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, get_args

from pydantic import BaseModel

from shared.contracts.auth import (
    AccountDeleted,
    AuditFilter,
    AuditLog,
    AuditQuery,
    ConsentGiven,
    CreateStaff,
    CreateStaffParams,
    Empty,
    LogoutRequest,
    Me,
    PasswordChange,
    PasswordReset,
    PasswordResetParams,
    PasswordResetResult,
    RefreshRequest,
    StaffAccount,
    StaffList,
    StaffListParams,
    StaffLogin,
    StaffLoginParams,
    StaffPatch,
    StaffPatchParams,
    TokenPair,
    WechatLogin,
)
from shared.contracts.base import Contract
from shared.contracts.booking import (
    Appointment,
    AppointmentList,
    AppointmentQuery,
    AppointmentRef,
    BookParams,
    BookRequest,
    CapacityChange,
    CapacityChangeParams,
    Eligibility,
    EligibilityQuery,
    HospitalAppointmentFilter,
    HospitalAppointmentQuery,
    HospitalAppointmentRef,
    HospitalCancel,
    HospitalCancelParams,
    MoveParams,
    MoveRequest,
    PatientMoveParams,
    SlotState,
    StopResult,
    StopSchedule,
    StopScheduleParams,
    WaitlistEntry,
    WaitlistJoin,
    WaitlistList,
    WaitlistRef,
)
from shared.contracts.catalog import (
    AdminDoctorQuery,
    AdminScheduleFilter,
    AdminScheduleQuery,
    Department,
    DepartmentCreate,
    DepartmentCreateParams,
    DepartmentTree,
    Doctor,
    DoctorCreate,
    DoctorCreateParams,
    DoctorList,
    DoctorPatch,
    DoctorPatchParams,
    DoctorQuery,
    DoctorRef,
    HospitalCreate,
    HospitalDetail,
    HospitalList,
    HospitalRef,
    RulesPatch,
    RulesPatchParams,
    Schedule,
    ScheduleCreate,
    ScheduleCreateParams,
    ScheduleList,
    ScheduleQuery,
    ScheduleRange,
)
from shared.contracts.notify import (
    DeliveryList,
    DeliveryListParams,
    DeliveryQuery,
    DeliveryRef,
    DeliveryView,
    QuotaView,
    SubscriptionResults,
    TemplateList,
    WebhookCreate,
    WebhookCreated,
    WebhookCreateParams,
    WebhookList,
    WebhookRef,
    WebhookSecret,
)
from shared.contracts.patients import (
    Patient,
    PatientCreate,
    PatientList,
    PatientRef,
    PatientUpdate,
    PatientUpdateParams,
)
from shared.contracts.payment import PayArgs, PaymentList, PaymentsFilter, PaymentsQuery, PayParams
from shared.contracts.queue import (
    Display,
    DisplayRef,
    PatientQueue,
    QueueCall,
    QueueCallParams,
    QueuedAppointment,
    QueueEntryRef,
    QueueRecallParams,
    QueueRef,
    QueueView,
)
from shared.contracts.scheduling import (
    CalendarDay,
    CalendarDayParams,
    CalendarList,
    CalendarQuery,
    CalendarRange,
    CalendarSet,
    DoctorTemplatesRef,
    Leave,
    LeaveCreate,
    LeaveCreateParams,
    Preview,
    PreviewQuery,
    PreviewRange,
    Stats,
    StatsFilter,
    StatsQuery,
    TemplateCreate,
    TemplateCreateParams,
    TemplatePatch,
    TemplatePatchParams,
    TemplateRef,
    WeeklyTemplate,
    WeeklyTemplateList,
)

API_PREFIX = "/api/v1"

PATIENT = frozenset({"patient"})
PLATFORM_ADMIN = frozenset({"platform_admin"})
# a hospital's admins (and the platform admin): rules, doctors, schedules, webhooks, staff,
# audit, stop-clinic, capacity
HOSPITAL_STAFF = frozenset({"hospital_admin", "platform_admin"})
# the front desk: appointments (list, get, cancel, check-in, no-show, move) and the queue
FRONT_DESK = frozenset({"desk"}) | HOSPITAL_STAFF
STAFF = FRONT_DESK
ANY_ROLE = frozenset({"patient"}) | STAFF
# roles bound to one hospital (the token's `hid`)
HOSPITAL_ROLES = frozenset({"hospital_admin", "desk"})

# Hospital staff may only touch paths under their own hospital (api.md: another → 404).
HOSPITAL_SCOPE_PREFIX = "/admin/hospitals/{hospital_id}"
HOSPITAL_PARAM = "hospital_id"

RateKey = Literal["caller", "ip", "username_ip", "refresh_family"]

TEMPLATES = "/admin/hospitals/{hospital_id}/doctors/{doctor_id}/templates"
QUEUE = "/admin/hospitals/{hospital_id}/schedules/{schedule_id}/queue"
_PATH_PARAM = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


@dataclass(frozen=True)
class Route:
    """One endpoint: HTTP side (method, path under /api/v1, body/query contracts, who may
    call it) and RPC side (service, method, optional params contract validating the merged
    path + query + body fields).

    - `roles`: None = public; otherwise the token's role must be in the set.
    - `rate`: a rate-limit class of `gateway.limits.Limits`, keyed by `rate_key`:
      `caller` (the user when authenticated, else the client address), `ip` (the client
      address), `username_ip` (the body's `username` + client address) or
      `refresh_family` (the family of the body's `refresh_token`).
    - `client_ip_param`: the RPC param that receives the client address (never the body).
    - `headers`: HTTP header → RPC param name (e.g. `Idempotency-Key` → `idempotency_key`).
    """

    method: str
    path: str
    service: str
    rpc: str
    body: type[Contract] | None = None
    query: type[Contract] | None = None
    reply: type[BaseModel] | None = None
    roles: frozenset[str] | None = None
    status: int = 200
    summary: str = ""
    tag: str = ""
    rate: str | None = None
    rate_key: RateKey = "caller"
    client_ip_param: str | None = None
    headers: dict[str, str] = field(default_factory=dict, hash=False)
    params: type[Contract] | None = None
    created_flag: bool = False  # reply is {"created", "resource"}: `status` if created, else 200
    # ends sessions of some account: the gateway refreshes its revocation list before replying
    revokes_sessions: bool = False
    # open to a token that must change its password first (after a reset)
    password_change_pending_ok: bool = False
    csv: bool = False  # `Accept: text/csv` answers the reply's `items` as CSV
    # statuses beyond those the route's shape implies (see gateway.openapi._error_statuses),
    # e.g. 502 where the service calls WeChat on the request path
    errors: frozenset[int] = frozenset()

    @property
    def full_path(self) -> str:
        return API_PREFIX + self.path

    @property
    def path_params(self) -> tuple[str, ...]:
        return tuple(_PATH_PARAM.findall(self.path))

    @property
    def is_public(self) -> bool:
        return self.roles is None

    @property
    def hospital_scoped(self) -> bool:
        return self.path.startswith(HOSPITAL_SCOPE_PREFIX)

    @property
    def partial_update(self) -> bool:
        """PATCH bodies forward only the fields the client sent."""
        return self.method == "PATCH"

    @property
    def operation_id(self) -> str:
        return f"{self.service}_{self.rpc}"

    @property
    def csv_columns(self) -> list[str]:
        """The CSV header: the fields of the reply's `items` entries."""
        items = self.reply.model_fields.get("items") if self.reply else None
        entry = get_args(items.annotation)[0] if items and get_args(items.annotation) else None
        if not (isinstance(entry, type) and issubclass(entry, BaseModel)):
            return []
        return list(entry.model_fields)


ROUTES: tuple[Route, ...] = (
    Route("POST", "/auth/wechat/login", "auth", "wechat_login", body=WechatLogin,
          reply=TokenPair, rate="wechat_login", rate_key="ip", tag="auth",
          errors=frozenset({401, 502}), summary="WeChat mini-program login"),
    Route("POST", "/auth/staff/login", "auth", "staff_login", body=StaffLogin,
          params=StaffLoginParams, reply=TokenPair, rate="login", rate_key="username_ip",
          client_ip_param="client_ip", tag="auth", errors=frozenset({401}),
          summary="Staff / platform admin login"),
    Route("POST", "/auth/refresh", "auth", "refresh", body=RefreshRequest,
          reply=TokenPair, rate="refresh", rate_key="refresh_family", tag="auth",
          errors=frozenset({401}), summary="Rotate the refresh token"),
    Route("POST", "/auth/logout", "auth", "logout", body=LogoutRequest, reply=Empty,
          roles=ANY_ROLE, password_change_pending_ok=True, tag="auth",
          summary="Revoke the refresh token family"),
    Route("GET", "/me", "auth", "me", reply=Me, roles=ANY_ROLE, password_change_pending_ok=True,
          tag="auth", summary="The authenticated user (with the consents they gave)"),
    Route("POST", "/auth/password", "auth", "change_password", body=PasswordChange,
          reply=TokenPair, roles=STAFF, rate="login", revokes_sessions=True,
          password_change_pending_ok=True, tag="auth",
          summary="Change one's own password (other sessions end; the reply is a new one)"),
    Route("POST", "/me/consents", "auth", "record_consent", body=ConsentGiven, reply=Me,
          roles=ANY_ROLE, tag="auth",
          summary="Record consent to a version of the agreement / privacy policy"),
    Route("DELETE", "/me", "auth", "delete_me", reply=AccountDeleted, roles=PATIENT,
          tag="auth", summary="Delete my account and patient profiles "
          "(409 INVALID_STATE while active appointments remain)"),
    Route("POST", "/patients", "auth", "create_patient", body=PatientCreate, reply=Patient,
          roles=PATIENT, status=201, tag="patients", summary="Add a patient profile"),
    Route("GET", "/patients", "auth", "list_patients", reply=PatientList, roles=PATIENT,
          tag="patients", summary="List my patient profiles"),
    Route("GET", "/patients/{patient_id}", "auth", "get_patient", params=PatientRef,
          reply=Patient, roles=PATIENT, tag="patients", summary="One patient profile"),
    Route("PATCH", "/patients/{patient_id}", "auth", "update_patient", body=PatientUpdate,
          params=PatientUpdateParams, reply=Patient, roles=PATIENT, tag="patients",
          summary="Edit a patient profile"),
    Route("DELETE", "/patients/{patient_id}", "auth", "delete_patient", params=PatientRef,
          reply=Empty, roles=PATIENT, tag="patients", summary="Remove a patient profile"),
    Route("POST", "/admin/hospitals/{hospital_id}/staff", "auth", "create_staff",
          body=CreateStaff, params=CreateStaffParams, reply=StaffAccount,
          roles=HOSPITAL_STAFF, status=201, tag="staff",
          summary="Create a staff account (hospital_admin or desk)"),
    Route("GET", "/admin/hospitals/{hospital_id}/staff", "auth", "list_staff",
          params=StaffListParams, reply=StaffList, roles=HOSPITAL_STAFF, tag="staff",
          summary="The hospital's staff accounts"),
    Route("PATCH", "/admin/hospitals/{hospital_id}/staff/{staff_id}", "auth", "update_staff",
          body=StaffPatch, params=StaffPatchParams, reply=StaffAccount, roles=HOSPITAL_STAFF,
          revokes_sessions=True, tag="staff",
          summary="Disable/enable or change the role (ends the account's sessions)"),
    Route("POST", "/admin/hospitals/{hospital_id}/staff/{staff_id}/reset-password", "auth",
          "reset_staff_password", body=PasswordReset, params=PasswordResetParams,
          reply=PasswordResetResult, roles=HOSPITAL_STAFF, revokes_sessions=True, tag="staff",
          summary="Set or generate a one-time password (ends the account's sessions)"),
    Route("GET", "/admin/hospitals/{hospital_id}/audit", "auth", "audit_log",
          query=AuditFilter, params=AuditQuery, reply=AuditLog, roles=HOSPITAL_STAFF,
          tag="staff", summary="What staff changed (appointments, schedules, rules, staff)"),
    # catalog (public)
    Route("GET", "/hospitals", "catalog", "list_hospitals", reply=HospitalList,
          tag="catalog", summary="Hospitals"),
    Route("GET", "/hospitals/{hospital_id}", "catalog", "get_hospital", params=HospitalRef,
          reply=HospitalDetail, tag="catalog", summary="A hospital with its booking rules"),
    Route("GET", "/hospitals/{hospital_id}/departments", "catalog", "list_departments",
          params=HospitalRef, reply=DepartmentTree, tag="catalog",
          summary="Departments (two levels)"),
    Route("GET", "/doctors", "catalog", "list_doctors", query=DoctorQuery, reply=DoctorList,
          tag="catalog", summary="Published doctors"),
    Route("GET", "/doctors/{doctor_id}", "catalog", "get_doctor", params=DoctorRef,
          reply=Doctor, tag="catalog", summary="A published doctor"),
    Route("GET", "/doctors/{doctor_id}/schedules", "catalog", "doctor_schedules",
          query=ScheduleRange, params=ScheduleQuery, reply=ScheduleList, tag="catalog",
          summary="Clinic sessions with remaining numbers"),
    # appointments (patient)
    Route("GET", "/appointments/eligibility", "booking", "eligibility", query=EligibilityQuery,
          reply=Eligibility, roles=PATIENT, tag="appointments",
          summary="Every rule that would block this booking"),
    Route("POST", "/appointments", "booking", "book", body=BookRequest, params=BookParams,
          headers={"Idempotency-Key": "idempotency_key"}, reply=Appointment, roles=PATIENT,
          status=201, created_flag=True, rate="book", tag="appointments",
          summary="Book a slot (201 new, 200 replay of the same Idempotency-Key)"),
    Route("GET", "/appointments", "booking", "list_appointments", query=AppointmentQuery,
          reply=AppointmentList, roles=PATIENT, tag="appointments",
          summary="My appointments, newest first"),
    Route("GET", "/appointments/{appointment_id}", "booking", "get_appointment",
          params=AppointmentRef, reply=Appointment, roles=PATIENT, tag="appointments",
          summary="One of my appointments"),
    Route("POST", "/appointments/{appointment_id}/cancel", "booking", "cancel_appointment",
          params=AppointmentRef, reply=Appointment, roles=PATIENT, tag="appointments",
          summary="Cancel before the deadline"),
    Route("POST", "/appointments/{appointment_id}/move", "booking", "move_appointment",
          body=MoveRequest, params=PatientMoveParams, reply=Appointment, roles=PATIENT,
          tag="appointments", rate="book",
          summary="改约: move my appointment to another slot of the same doctor or department"),
    # registration fee (payment)
    Route("POST", "/appointments/{appointment_id}/pay", "payment", "pay", params=PayParams,
          reply=PayArgs, roles=PATIENT, rate="book", tag="payments",
          summary="挂号费: the arguments of wx.requestPayment (one prepay however many taps)"),
    Route("GET", "/appointments/{appointment_id}/queue", "booking", "patient_queue",
          params=AppointmentRef, reply=PatientQueue, roles=PATIENT, tag="queue",
          summary="候诊: my place in the queue, now serving, ETA"),
    Route("POST", "/waitlist", "booking", "join_waitlist", body=WaitlistJoin,
          reply=WaitlistEntry, roles=PATIENT, status=201, tag="waitlist",
          summary="候补: wait for a doctor or a department"),
    Route("GET", "/waitlist", "booking", "list_waitlist", reply=WaitlistList, roles=PATIENT,
          tag="waitlist", summary="My waitlist entries"),
    Route("DELETE", "/waitlist/{entry_id}", "booking", "leave_waitlist", params=WaitlistRef,
          reply=WaitlistEntry, roles=PATIENT, tag="waitlist", summary="Leave the waitlist"),
    # subscribe messages (notify)
    Route("GET", "/subscriptions/templates", "notify", "templates", reply=TemplateList,
          tag="subscriptions", summary="WeeklyTemplate ids for wx.requestSubscribeMessage"),
    Route("POST", "/subscriptions", "notify", "record_subscription", body=SubscriptionResults,
          reply=QuotaView, roles=PATIENT, tag="subscriptions",
          summary="Record wx.requestSubscribeMessage results (one accept = one send)"),
    Route("GET", "/subscriptions", "notify", "quota", reply=QuotaView, roles=PATIENT,
          tag="subscriptions", summary="Remaining sends per kind"),
    # hospital administration
    Route("POST", "/admin/hospitals", "catalog", "create_hospital", body=HospitalCreate,
          reply=HospitalDetail, roles=PLATFORM_ADMIN, status=201, tag="admin",
          summary="Create a hospital"),
    Route("PATCH", "/admin/hospitals/{hospital_id}/rules", "catalog", "update_rules",
          body=RulesPatch, params=RulesPatchParams, reply=HospitalDetail,
          roles=HOSPITAL_STAFF, tag="admin", summary="Edit booking rules"),
    Route("POST", "/admin/hospitals/{hospital_id}/departments", "catalog",
          "create_department", body=DepartmentCreate, params=DepartmentCreateParams,
          reply=Department, roles=HOSPITAL_STAFF, status=201, tag="admin",
          summary="Create a department"),
    Route("GET", "/admin/hospitals/{hospital_id}/doctors", "catalog", "admin_doctors",
          params=AdminDoctorQuery, reply=DoctorList, roles=HOSPITAL_STAFF, tag="admin",
          summary="All doctors, published or not"),
    Route("POST", "/admin/hospitals/{hospital_id}/doctors", "catalog", "create_doctor",
          body=DoctorCreate, params=DoctorCreateParams, reply=Doctor, roles=HOSPITAL_STAFF,
          status=201, tag="admin", summary="Create a doctor"),
    Route("PATCH", "/admin/hospitals/{hospital_id}/doctors/{doctor_id}", "catalog",
          "update_doctor", body=DoctorPatch, params=DoctorPatchParams, reply=Doctor,
          roles=HOSPITAL_STAFF, tag="admin", summary="Edit, publish or unpublish a doctor"),
    Route("POST", "/admin/hospitals/{hospital_id}/doctors/{doctor_id}/schedules", "catalog",
          "create_schedule", body=ScheduleCreate, params=ScheduleCreateParams,
          reply=Schedule, roles=HOSPITAL_STAFF, status=201, tag="admin",
          summary="Publish a clinic session"),
    Route("GET", "/admin/hospitals/{hospital_id}/schedules", "catalog", "admin_schedules",
          query=AdminScheduleFilter, params=AdminScheduleQuery, reply=ScheduleList,
          roles=HOSPITAL_STAFF, tag="admin", summary="Clinic sessions of the hospital"),
    Route("POST", "/admin/hospitals/{hospital_id}/schedules/{schedule_id}/stop", "booking",
          "stop_schedule", body=StopSchedule, params=StopScheduleParams, reply=StopResult,
          roles=HOSPITAL_STAFF, tag="admin",
          summary="停诊: cancel every active appointment of the session"),
    Route("POST", "/admin/hospitals/{hospital_id}/slots/{slot_id}/capacity", "booking",
          "change_capacity", body=CapacityChange, params=CapacityChangeParams,
          reply=SlotState, roles=HOSPITAL_STAFF, tag="admin",
          summary="加号 / reduce capacity (never below what is booked)"),
    Route("GET", "/admin/hospitals/{hospital_id}/appointments", "booking",
          "hospital_appointments", query=HospitalAppointmentFilter,
          params=HospitalAppointmentQuery, reply=AppointmentList, roles=FRONT_DESK,
          tag="admin", summary="Appointments of the hospital"),
    Route("GET", "/admin/hospitals/{hospital_id}/appointments/{appointment_id}", "booking",
          "hospital_get_appointment", params=HospitalAppointmentRef, reply=Appointment,
          roles=FRONT_DESK, tag="admin", summary="One appointment"),
    Route("PATCH", "/admin/hospitals/{hospital_id}/appointments/{appointment_id}", "booking",
          "move", body=MoveRequest, params=MoveParams, reply=Appointment,
          roles=FRONT_DESK, tag="admin", summary="改约: move to another slot"),
    Route("POST", "/admin/hospitals/{hospital_id}/appointments/{appointment_id}/cancel",
          "booking", "hospital_cancel", body=HospitalCancel, params=HospitalCancelParams,
          reply=Appointment, roles=FRONT_DESK, tag="admin",
          summary="Cancel on the hospital's side"),
    Route("POST", "/admin/hospitals/{hospital_id}/appointments/{appointment_id}/check-in",
          "booking", "check_in", params=HospitalAppointmentRef, reply=Appointment,
          roles=FRONT_DESK, tag="admin", summary="Check a patient in"),
    Route("POST", "/admin/hospitals/{hospital_id}/appointments/{appointment_id}/complete",
          "booking", "complete", params=HospitalAppointmentRef, reply=Appointment,
          roles=FRONT_DESK, tag="admin", summary="就诊完成: a checked-in visit is done"),
    Route("POST", "/admin/hospitals/{hospital_id}/appointments/{appointment_id}/no-show",
          "booking", "no_show", params=HospitalAppointmentRef, reply=Appointment,
          roles=FRONT_DESK, tag="admin", summary="Record a no-show"),
    # the queue (候诊叫号): the desk, and the waiting-room display (public)
    Route("GET", QUEUE, "booking", "queue_view", params=QueueRef, reply=QueueView,
          roles=FRONT_DESK, tag="queue",
          summary="The session's queue: now serving (per room), waiting, skipped, done"),
    Route("POST", QUEUE + "/call-next", "booking", "queue_call_next", body=QueueCall,
          params=QueueCallParams, reply=QueuedAppointment, roles=FRONT_DESK, tag="queue",
          summary="Call the next waiting patient to a room (409 when nobody waits)"),
    Route("POST", QUEUE + "/{appointment_id}/recall", "booking", "queue_recall",
          body=QueueCall, params=QueueRecallParams, reply=QueuedAppointment,
          roles=FRONT_DESK, tag="queue", summary="Call a called or skipped patient again"),
    Route("POST", QUEUE + "/{appointment_id}/skip", "booking", "queue_skip",
          params=QueueEntryRef, reply=QueuedAppointment, roles=FRONT_DESK, tag="queue",
          summary="过号: the patient is not there (checking in again re-queues them)"),
    Route("POST", QUEUE + "/{appointment_id}/done", "booking", "queue_done",
          params=QueueEntryRef, reply=QueuedAppointment, roles=FRONT_DESK, tag="queue",
          summary="就诊完成: the called patient's visit is done (appointment completed)"),
    Route("GET", "/display/{hospital_id}/{schedule_id}", "booking", "queue_display",
          params=DisplayRef, reply=Display, tag="queue",
          summary="Waiting-room display: now serving, next (masked names), waiting count"),
    # scheduling (排班) and statistics (catalog)
    Route("GET", TEMPLATES, "catalog", "list_templates",
          params=DoctorTemplatesRef, reply=WeeklyTemplateList, roles=HOSPITAL_STAFF,
          tag="scheduling",
          summary="A doctor's weekly templates"),
    Route("POST", TEMPLATES, "catalog", "create_template",
          body=TemplateCreate, params=TemplateCreateParams, reply=WeeklyTemplate,
          roles=HOSPITAL_STAFF, status=201, tag="scheduling",
          summary="Add a weekly template; the booking window is regenerated at once"),
    Route("GET", TEMPLATES + "/{template_id}", "catalog", "get_template",
          params=TemplateRef, reply=WeeklyTemplate, roles=HOSPITAL_STAFF, tag="scheduling",
          summary="One weekly template"),
    Route("PATCH", TEMPLATES + "/{template_id}", "catalog", "update_template",
          body=TemplatePatch, params=TemplatePatchParams, reply=WeeklyTemplate,
          roles=HOSPITAL_STAFF, tag="scheduling",
          summary="Edit a template; sessions with bookings are kept and reported"),
    Route("DELETE", TEMPLATES + "/{template_id}", "catalog", "delete_template",
          params=TemplateRef, reply=WeeklyTemplate, roles=HOSPITAL_STAFF, tag="scheduling",
          summary="Remove a template and its unbooked sessions"),
    Route("PUT", "/admin/hospitals/{hospital_id}/calendar/{date}", "catalog",
          "set_calendar_day", body=CalendarDay, params=CalendarDayParams, reply=CalendarSet,
          roles=HOSPITAL_STAFF, tag="scheduling",
          summary="A holiday (closed) or a 调休 workday (workday_as)"),
    Route("GET", "/admin/hospitals/{hospital_id}/calendar", "catalog", "hospital_calendar",
          query=CalendarRange, params=CalendarQuery, reply=CalendarList, roles=HOSPITAL_STAFF,
          tag="scheduling", summary="Holidays and 调休 workdays in a date range"),
    Route("POST", "/admin/hospitals/{hospital_id}/doctors/{doctor_id}/leave", "catalog",
          "doctor_leave", body=LeaveCreate, params=LeaveCreateParams, reply=Leave,
          roles=HOSPITAL_STAFF, status=201, tag="scheduling",
          summary="Doctor leave: 停诊 of every session in range, patients notified"),
    Route("POST", "/admin/hospitals/{hospital_id}/schedules:preview", "catalog",
          "preview_schedules", query=PreviewRange, params=PreviewQuery, reply=Preview,
          roles=HOSPITAL_STAFF, tag="scheduling",
          summary="What generation would create, replace, remove or keep (writes nothing)"),
    Route("GET", "/admin/hospitals/{hospital_id}/stats", "catalog", "hospital_stats",
          query=StatsFilter, params=StatsQuery, reply=Stats, roles=HOSPITAL_STAFF,
          tag="statistics", csv=True,
          summary="Bookings, cancellations, no-shows and utilisation (JSON, or CSV)"),
    Route("GET", "/admin/hospitals/{hospital_id}/payments", "payment", "list_payments",
          query=PaymentsFilter, params=PaymentsQuery, reply=PaymentList,
          roles=HOSPITAL_STAFF, tag="payments",
          summary="Registration-fee orders and refunds of a day, with totals"),
    # hospital webhooks (notify)
    Route("POST", "/admin/hospitals/{hospital_id}/webhooks", "notify", "create_webhook",
          body=WebhookCreate, params=WebhookCreateParams, reply=WebhookCreated,
          roles=HOSPITAL_STAFF, status=201, tag="webhooks",
          summary="Register a webhook (the secret is shown only here)"),
    Route("GET", "/admin/hospitals/{hospital_id}/webhooks", "notify", "list_webhooks",
          params=HospitalRef, reply=WebhookList, roles=HOSPITAL_STAFF, tag="webhooks",
          summary="The hospital's webhooks"),
    Route("DELETE", "/admin/hospitals/{hospital_id}/webhooks/{webhook_id}", "notify",
          "delete_webhook", params=WebhookRef, reply=Empty, roles=HOSPITAL_STAFF,
          tag="webhooks", summary="Remove a webhook"),
    Route("POST", "/admin/hospitals/{hospital_id}/webhooks/{webhook_id}/rotate-secret",
          "notify", "rotate_webhook_secret", params=WebhookRef, reply=WebhookSecret,
          roles=HOSPITAL_STAFF, tag="webhooks", summary="Issue a new signing secret"),
    Route("GET", "/admin/hospitals/{hospital_id}/webhooks/{webhook_id}/deliveries", "notify",
          "list_deliveries", query=DeliveryQuery, params=DeliveryListParams,
          reply=DeliveryList, roles=HOSPITAL_STAFF, tag="webhooks",
          summary="Delivery log of a webhook"),
    Route("POST", "/admin/hospitals/{hospital_id}/webhooks/{webhook_id}/deliveries/"
          "{delivery_id}/redeliver", "notify", "redeliver", params=DeliveryRef,
          reply=DeliveryView, roles=HOSPITAL_STAFF, tag="webhooks",
          summary="Replay a delivery"),
)
