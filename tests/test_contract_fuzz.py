"""The served OpenAPI document against the running system, fuzzed by schemathesis.

Every operation is called with generated valid and invalid input (its examples, the
coverage phase's boundary values and fuzzing) as the role it is meant for, and every answer
must be documented (all of schemathesis's checks): no 5xx other than the declared 503, a
status the operation declares, the declared content type and a body matching the declared
schema, invalid input refused, authentication not ignored. Ids of a real hospital,
doctor, slot and patient profile are supplied so that calls reach past the 404s.

The stack is private: the fuzzer creates and changes data at random.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import aiohttp
import pytest

from shared.devstack import DevStack
from tests.harness import Api, delete_vhost, start_stack
from tests.system_kit import make_hospital, make_schedule, patient

pytestmark = pytest.mark.slow

# Every check but one. `positive_data_acceptance` expects the API to accept whatever the
# schema admits, and several rules cannot be written as JSON Schema: an ID number's check
# character and plausible birth date, full-width digits accepted and normalised (NFKC), dates
# relative to today and the booking window, cursors only the server issues, template ids the
# hospital configured. Those answer 422 with a field message, which the other checks verify.
CHECKS = ("--checks", "all", "--exclude-checks", "positive_data_acceptance")


@pytest.fixture(scope="module")
def fuzz_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[DevStack]:
    stack, vhost = start_stack(tmp_path_factory.mktemp("fuzz"))
    try:
        yield stack
    finally:
        stack.stop()
        delete_vhost(vhost)


@pytest.fixture
async def fuzz_api(fuzz_stack: DevStack) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession() as session:
        yield Api(fuzz_stack, session)


def schemathesis(stack: DevStack, config: Path, token: str | None, *select: str) -> None:
    command = [
        str(Path(sys.executable).with_name("schemathesis")),
        "--config-file",
        str(config),
        "run",
        f"{stack.gateway_url}/api/v1/openapi.json",
        *CHECKS,
        "--phases",
        "examples,coverage,fuzzing",
        "--max-examples",
        "8",
        "--generation-deterministic",
        "--no-color",
        "--request-timeout",
        "10",
        *select,
    ]
    if token:
        command += ["--header", f"Authorization: Bearer {token}"]
    done = subprocess.run(command, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-6000:] + done.stderr[-2000:]


async def test_every_answer_is_the_documented_one(
    fuzz_api: Api, fuzz_stack: DevStack, tmp_path: Path
) -> None:
    hospital = await make_hospital(fuzz_api)
    schedule = await make_schedule(fuzz_api, hospital, capacity=50)
    token, patient_id = await patient(fuzz_api, 7)
    config = tmp_path / "schemathesis.toml"
    ids = {
        "hospital_id": hospital.id,
        "doctor_id": hospital.doctor_id,
        "department_id": hospital.department_id,
        "schedule_id": schedule["id"],
        "slot_id": schedule["slots"][0]["id"],
        "patient_id": patient_id,
    }
    config.write_text(
        "[parameters]\n"
        + "".join(f"{json.dumps(name)} = {json.dumps(value)}\n" for name, value in ids.items())
    )

    def run_all() -> None:
        # the patient's side (DELETE /me last: it ends this patient)
        schemathesis(
            fuzz_stack,
            config,
            token,
            "--exclude-path-regex",
            "^/api/v1/(admin|auth)",
            "--exclude-path",
            "/api/v1/me",
            "--exclude-method",
            "DELETE",
        )
        # the hospital's side, as its admin
        schemathesis(
            fuzz_stack,
            config,
            hospital.staff_token,
            "--include-path-regex",
            "^/api/v1/admin/hospitals/\\{hospital_id\\}",
        )
        # public sign-in operations: every refusal documented, never a 500
        schemathesis(fuzz_stack, config, None, "--include-path-regex", "^/api/v1/auth/")

    await asyncio.to_thread(run_all)
