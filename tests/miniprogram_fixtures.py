"""The mini-program's jest fixtures, produced from the API's reply contracts.

Every body is built as the pydantic reply model the gateway serves and dumped exactly as the
RPC layer dumps it (`model_dump(mode="json")`): a field the contract adds, drops or renames
shows up in `miniprogram/test/fixtures.json` (and fails `tests/test_miniprogram_fixtures.py`
until regenerated), so the page tests never run against hand-typed shapes. Regenerate with

    .venv/bin/python -m tests.miniprogram_fixtures
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from shared.contracts.auth import Consent, Me, TokenPair, UserRef
from shared.contracts.booking import Appointment, AppointmentPatient
from shared.contracts.catalog import (
    BookingRules,
    Department,
    DepartmentTree,
    Doctor,
    DoctorList,
    Hospital,
    HospitalDetail,
    HospitalList,
    PersonRef,
    SameDayStop,
    Schedule,
    ScheduleList,
    Slot,
)
from shared.contracts.notify import TemplateItem, TemplateList
from shared.contracts.patients import Patient, PatientList

OUT = Path(__file__).resolve().parent.parent / "miniprogram" / "test" / "fixtures.json"


def dump(model: BaseModel) -> Any:
    return model.model_dump(mode="json")


def slots(prefix: str, remaining: list[int], *, start_hour: int = 8) -> list[Slot]:
    """Half-hour slices from 08:00, capacity 3, each with its own status (as the API gives)."""
    out = []
    for i, left in enumerate(remaining):
        start, end = start_hour * 60 + 30 * i, start_hour * 60 + 30 * (i + 1)
        out.append(
            Slot(
                id=f"{prefix}_s{i}",
                start=f"{start // 60:02d}:{start % 60:02d}",
                end=f"{end // 60:02d}:{end % 60:02d}",
                capacity=3,
                remaining=left,
                status="open" if left > 0 else "full",
            )
        )
    return out


def schedule(
    sid: str,
    date: str,
    session: str,
    status: str,
    remaining: list[int],
    release_at: str | None = None,
) -> Schedule:
    return Schedule.model_validate(
        {
            "id": sid,
            "doctor_id": "doc_1",
            "date": date,
            "session": session,
            "status": status,
            "release_at": release_at,
            "fee_cents": 10000,
            "slots": [s.model_dump() for s in slots(sid, remaining)],
        }
    )


def build_fixtures() -> dict[str, Any]:
    """Every fixture body by name (the names `miniprogram/test/fixtures.js` exports)."""
    hospital = Hospital(
        id="h_1",
        name="协和示范医院",
        address="北京市东城区帅府园1号",
        phone="010-00000000",
        level="三级甲等",
        latitude=39.9127,
        longitude=116.4131,
    )
    rules = BookingRules(
        window_days=7,
        release_time="08:00",
        same_day_stop_time=SameDayStop(am="11:30", pm="16:30", evening="20:30"),
        cancel_before_hours=2,
        per_department_per_day=1,
        max_active=5,
        no_show_limit=3,
        no_show_window_days=90,
        ban_days=30,
    )
    doctor = Doctor(
        id="doc_1",
        name="张明华",
        title="主任医师",
        department_id="dep_cardio",
        hospital_id="h_1",
        specialty="高血压、冠心病、心力衰竭",
        intro="从事心血管内科临床工作三十年。",
        fee_cents=10000,
        published=True,
        next_available_date="2026-12-02",  # type: ignore[arg-type]
    )
    doctor2 = Doctor(
        id="doc_2",
        name="李静",
        title="副主任医师",
        department_id="dep_cardio",
        hospital_id="h_1",
        specialty="心律失常",
        fee_cents=5050,
        published=True,
    )
    patient = Patient(
        id="p_1",
        name="张三",
        id_number_masked="1101**********002X",
        gender="female",
        birth_date="1949-12-31",  # type: ignore[arg-type]
        phone_masked="138****5678",
        relation="self",
        is_default=True,
    )
    patient2 = Patient(
        id="p_2",
        name="张小明",
        id_number_masked="1101**********0035",
        gender="male",
        birth_date="2015-06-01",  # type: ignore[arg-type]
        phone_masked="139****0000",
        relation="child",
        is_default=False,
    )
    appointment = Appointment(
        id="a_1",
        status="booked",
        seq_no=3,
        hospital_id="h_1",
        slot_id="sch_2_am_s0",
        schedule_id="sch_2_am",
        doctor=PersonRef(id="doc_1", name="张明华", title="主任医师"),
        department=PersonRef(id="dep_cardio", name="心血管内科"),
        date="2026-12-02",  # type: ignore[arg-type]
        session="am",
        start="08:00",
        end="08:30",
        fee_cents=10000,
        patient=AppointmentPatient(id="p_1", name="张三", id_number_masked="1101**********002X"),
        cancel_deadline="2026-12-02T06:00:00+08:00",
        created_at="2026-12-01T09:00:03+08:00",
    )

    def leaf(i: str, n: str, parent: str) -> Department:
        return Department(id=i, name=n, parent_id=parent)

    departments = DepartmentTree(
        items=[
            Department(
                id="dep_internal",
                name="内科",
                children=[
                    leaf("dep_cardio", "心血管内科", "dep_internal"),
                    leaf("dep_gastro", "消化内科", "dep_internal"),
                ],
            ),
            Department(
                id="dep_surgery", name="外科", children=[leaf("dep_ortho", "骨科", "dep_surgery")]
            ),
            Department(id="dep_er", name="急诊科"),
        ]
    )
    schedules = ScheduleList(
        items=[
            schedule("sch_1_am", "2026-12-01", "am", "closed", [0]),
            schedule("sch_2_am", "2026-12-02", "am", "open", [2, 0, 1]),
            schedule("sch_2_pm", "2026-12-02", "pm", "full", [0, 0]),
            schedule("sch_2_ev", "2026-12-02", "evening", "stopped", [3]),
            schedule(
                "sch_8_am",
                "2026-12-08",
                "am",
                "not_released",
                [3, 3],
                release_at="2026-12-02T08:00:00+08:00",
            ),
        ]
    )
    # a closed or stopped session's slices are not bookable either
    for item in schedules.items:
        if item.status in ("closed", "stopped", "not_released"):
            for s in item.slots:
                s.status = item.status
    kinds = [
        "booking_confirmed",
        "appointment_cancelled",
        "appointment_moved",
        "visit_reminder",
        "waitlist_promoted",
    ]
    ids = ["TPL_CONFIRMED", "TPL_CANCELLED", "TPL_MOVED", "TPL_REMINDER", "TPL_WAITLIST"]
    consented = Me(
        id="u_1",
        role="patient",
        consents=[
            Consent(kind=k, version="2026-11", at="2026-11-30T10:00:00+08:00")
            for k in ("patient_data", "privacy", "terms")
        ],
    )
    token = TokenPair(
        access_token="at-N",
        refresh_token="rt-N-xxxxxxxxxxxxxxxx",
        expires_in=900,
        user=UserRef(id="u_1", role="patient"),
    )
    return {
        "hospital": dump(hospital),
        "hospitalDetail": dump(HospitalDetail(**hospital.model_dump(), rules=rules)),
        "hospitals": dump(
            HospitalList(
                items=[
                    hospital,
                    Hospital(
                        id="h_2",
                        name="第二人民医院",
                        address="上海市黄浦区",
                        phone="021-1",
                        level="三级乙等",
                    ),
                ]
            )
        ),
        "departments": dump(departments),
        "doctor": dump(doctor),
        "doctors": dump(DoctorList(items=[doctor, doctor2])),
        "schedules": dump(schedules),
        "slot": dump(slots("x", [1])[0]),
        "patient": dump(patient),
        "patient2": dump(patient2),
        "patients": dump(PatientList(items=[patient, patient2])),
        "appointment": dump(appointment),
        "templates": dump(
            TemplateList(
                items=[TemplateItem(kind=k, template_id=i) for k, i in zip(kinds, ids, strict=True)]  # type: ignore[arg-type]
            )
        ),
        "consentedMe": dump(consented),
        "tokenPair": dump(token),
    }


def render() -> str:
    return json.dumps(build_fixtures(), ensure_ascii=False, indent=2) + "\n"


def main() -> None:
    OUT.write_text(render(), encoding="utf-8")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
