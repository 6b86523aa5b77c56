"""The catalog's RPC surface (without a broker) and its booking client (on the real RabbitMQ)."""

from __future__ import annotations

import asyncio
import json
import os
import time
import uuid
from collections.abc import AsyncIterator

import pytest
from aio_pika.abc import AbstractRobustConnection
from pymongo.asynchronous.database import AsyncDatabase

from services.catalog.app import BookingInventory
from services.catalog.handlers import register
from services.catalog.service import CatalogService
from shared.context import CallContext
from shared.contracts.booking import (
    Availability,
    AvailabilityQuery,
    ScheduleAvailability,
    SlotAvailability,
)
from shared.contracts.catalog import ScheduleQuery
from shared.errors import ServiceUnavailable
from shared.messaging.connection import connect_broker
from shared.messaging.rpc import RpcClient, RpcServer, rpc_queue
from shared.storage.mongo import Document
from tests.catalog_kit import (
    PLATFORM_ADMIN,
    CatalogKit,
    add_world,
    am_session,
    build_catalog,
    day,
    hospital_admin,
)

AMQP_URL = os.environ.get("AMQP_URL", "amqp://guest:guest@127.0.0.1:5672/")

METHODS = {
    "ping",
    "list_hospitals",
    "get_hospital",
    "list_departments",
    "list_doctors",
    "get_doctor",
    "doctor_schedules",
    "create_hospital",
    "create_department",
    "create_doctor",
    "update_doctor",
    "update_rules",
    "create_schedule",
    "admin_doctors",
    "admin_schedules",
    "hospital_exists",
    "booking_rules",
    "schedule_for_slot",
    "schedule_definition",
    "hospital_of",
    "fhir_read",
    "fhir_search",
    "fhir_bulk",
}


@pytest.fixture
async def kit(mongo_db: AsyncDatabase[Document]) -> CatalogKit:
    return await build_catalog(mongo_db)


def ctx(caller: object = None) -> CallContext:
    return CallContext(uuid.uuid4().hex, caller=caller)  # type: ignore[arg-type]


async def test_rpc_surface_serves_every_method_with_contract_errors(kit: CatalogKit) -> None:
    server = RpcServer("catalog", connection=None)  # type: ignore[arg-type]  # never started
    register(server, kit.service, appid="wx_test")
    assert set(server._methods) == METHODS
    world = await add_world(kit)

    listed = await server._dispatch("list_hospitals", b"{}", ctx())
    assert [h["id"] for h in listed["ok"]["items"]] == [world.hospital_id]
    body = json.dumps({"doctor_id": world.doctor_id, "from": day(0).isoformat()}).encode()
    assert (await server._dispatch("doctor_schedules", body, ctx())) == {"ok": {"items": []}}

    created = await server._dispatch(
        "create_schedule",
        json.dumps(
            {
                "hospital_id": world.hospital_id,
                "doctor_id": world.doctor_id,
                "date": day(2).isoformat(),
                "session": "pm",
                "slots": [{"start": "14:00", "end": "14:30", "capacity": 2}],
            }
        ).encode(),
        ctx(world.admin),
    )
    assert created["ok"]["status"] == "open" and created["ok"]["slots"][0]["remaining"] == 2
    slot_id = created["ok"]["slots"][0]["id"]
    definition = await server._dispatch(
        "schedule_for_slot", json.dumps({"slot_id": slot_id}).encode(), ctx()
    )
    assert definition["ok"]["id"] == created["ok"]["id"]
    by_id = await server._dispatch(
        "schedule_definition", json.dumps({"schedule_id": created["ok"]["id"]}).encode(), ctx()
    )
    assert by_id == definition
    exists = await server._dispatch(
        "hospital_exists", json.dumps({"hospital_id": "h_nope"}).encode(), ctx()
    )
    assert exists == {"ok": {"exists": False}}

    foreign = await server._dispatch(
        "admin_doctors",
        json.dumps({"hospital_id": world.hospital_id}).encode(),
        ctx(hospital_admin("h_other")),
    )
    assert foreign["error"]["code"] == "NOT_FOUND"
    injected = await server._dispatch("get_hospital", b'{"hospital_id": {"$gt": ""}}', ctx())
    assert injected["error"]["code"] == "VALIDATION_FAILED"
    same_session = json.dumps(
        {
            "hospital_id": world.hospital_id,
            "doctor_id": world.doctor_id,
            "date": day(2).isoformat(),
            "session": "pm",
            "slots": [{"start": "15:00", "end": "15:30", "capacity": 2}],
        }
    ).encode()
    duplicate = await server._dispatch("create_schedule", same_session, ctx(PLATFORM_ADMIN))
    assert duplicate["error"]["code"] == "CONFLICT"


def test_schedule_query_takes_from_by_its_wire_name_or_attribute_name() -> None:
    by_alias = ScheduleQuery.model_validate_json('{"doctor_id": "doc_1", "from": "2026-12-01"}')
    by_name = ScheduleQuery.model_validate_json('{"doctor_id": "doc_1", "from_": "2026-12-01"}')
    assert by_alias == by_name and by_alias.from_ is not None


# the booking client on the real broker


@pytest.fixture
async def broker() -> AsyncIterator[AbstractRobustConnection]:
    connection = await connect_broker(AMQP_URL, name="tests-catalog")
    yield connection
    await connection.close()


@pytest.fixture
async def fake_booking(
    broker: AbstractRobustConnection,
) -> AsyncIterator[tuple[str, dict[str, ScheduleAvailability]]]:
    """A stand-in `availability` method on a uniquely named service (RabbitMQ is shared)."""
    name = f"testbooking{uuid.uuid4().hex[:10]}"
    table: dict[str, ScheduleAvailability] = {}
    server = RpcServer(name, broker)

    async def availability(params: AvailabilityQuery, ctx: CallContext) -> Availability:
        if "sch_slow" in params.schedule_ids:
            await asyncio.sleep(3)
        return Availability(items=[table[s] for s in params.schedule_ids if s in table])

    server.add_method("availability", availability)
    await server.start()
    yield name, table
    await server.drain(1)
    channel = await broker.channel()
    await channel.queue_delete(rpc_queue(name))
    await channel.close()


async def test_schedules_carry_booking_numbers_fetched_over_rpc(
    kit: CatalogKit,
    broker: AbstractRobustConnection,
    fake_booking: tuple[str, dict[str, ScheduleAvailability]],
) -> None:
    name, table = fake_booking
    inventory = BookingInventory(RpcClient(broker), service=name)
    service = CatalogService(kit.repo, kit.relay, inventory, kit.clock)
    world = await add_world(kit)
    schedule = await service.create_schedule(world.admin, am_session(world, day(2)))
    table[schedule.id] = ScheduleAvailability(
        schedule_id=schedule.id,
        stopped=False,
        slots=[SlotAvailability(id=slot.id, capacity=3, remaining=0) for slot in schedule.slots],
    )
    listed = await service.doctor_schedules(ScheduleQuery(doctor_id=world.doctor_id))
    assert listed.items[0].status == "full"
    assert [s.remaining for s in listed.items[0].slots] == [0, 0]


async def test_booking_client_gives_up_quickly_when_booking_is_slow_or_absent(
    broker: AbstractRobustConnection,
    fake_booking: tuple[str, dict[str, ScheduleAvailability]],
) -> None:
    name, _ = fake_booking
    slow = BookingInventory(RpcClient(broker), service=name, timeout=0.5)
    started = time.monotonic()
    with pytest.raises(ServiceUnavailable):
        await slow.availability(["sch_slow"])
    assert time.monotonic() - started < 2
    absent = BookingInventory(RpcClient(broker), service=f"absent{uuid.uuid4().hex[:8]}")
    with pytest.raises(ServiceUnavailable):
        await absent.availability(["sch_1"])
