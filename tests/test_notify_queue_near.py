"""The `queue_near` subscribe message: configured in the dev set like the other kinds, its
values fit WeChat's keyword rules, and a `queue.near` event is what sends it."""

from __future__ import annotations

from services.notify.messages import EVENT_KINDS
from services.notify.templates import KINDS, appointment_fields, load_templates
from shared.wechat.fake import DEFAULT_TEMPLATES, miniprogram_pages
from shared.wechat.keywords import validate_keyword

APPOINTMENT = {
    "id": "apt_1",
    "user_id": "u_1",
    "date": "2026-12-01",
    "start": "08:30",
    "end": "09:00",
    "session": "am",
    "seq_no": 12,
    "patient": {"name": "张三"},
    "doctor": {"name": "李明", "title": "主任医师"},
    "department": {"name": "心血管内科门诊部第二诊区"},
}


def test_queue_near_is_a_kind_with_a_template_of_the_fake() -> None:
    assert "queue_near" in KINDS
    assert EVENT_KINDS["queue.near"] == "queue_near"
    template = load_templates(None).get("queue_near")
    assert template is not None
    assert template.template_id == DEFAULT_TEMPLATES["queue_near"].template_id
    assert set(template.keywords) == set(DEFAULT_TEMPLATES["queue_near"].keys)


def test_its_values_fit_the_keyword_rules_and_its_page_exists() -> None:
    template = load_templates(None).get("queue_near")
    assert template is not None
    for ahead in range(4):
        data, page = template.render(
            appointment_fields(
                "queue_near", APPOINTMENT, None, {"ahead": ahead, "eta_minutes": ahead * 6}
            )
        )
        assert all(validate_keyword(k, v) is None for k, v in data.items()), data
        assert data["thing5"] == f"前面还有{ahead}人，请到诊室附近候诊"
        assert data["character_string4"] == "12"
        assert page == "pages/appointment-detail/index?id=apt_1"
        assert page.split("?")[0] in miniprogram_pages()
