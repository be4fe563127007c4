"""FHIR Task about a Device -> workorder.* events: steps per status, ids, focus, priority, privacy."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from adapters.fhir.mapping import FhirMapping
from schemas._base import DeptRef, Identifier
from schemas.ids import event_id_for, workorder_id_for
from schemas.work_orders import Priority, WorkOrderRequested
from tests.unit.adapters._fhir import HRP_CARD, SENDER, mapping, payloads, run, task, types
from tests.unit.adapters._fhir import device as device_body

OWNER = {"reference": "Practitioner/eng-7", "display": "设备科 李工"}


class TestSteps:
    @pytest.mark.parametrize(
        ("status", "extra", "expected"),
        [
            ("requested", {}, ["workorder.requested"]),
            ("received", {}, ["workorder.requested"]),
            ("accepted", {"owner": OWNER}, ["workorder.requested", "workorder.assigned"]),
            ("in-progress", {"owner": OWNER}, ["workorder.requested", "workorder.started"]),
            ("on-hold", {}, ["workorder.requested", "workorder.on_hold"]),
            ("failed", {}, ["workorder.requested", "workorder.on_hold"]),
            ("completed", {}, ["workorder.requested", "workorder.completed"]),
            ("cancelled", {}, ["workorder.requested", "workorder.cancelled"]),
            ("rejected", {}, ["workorder.requested", "workorder.rejected"]),
            ("entered-in-error", {}, ["workorder.requested", "workorder.cancelled"]),
        ],
    )
    def test_status_gives_its_events(self, status: str, extra: dict, expected: list[str]) -> None:
        """Each Task status gives the request plus the step the mapping assigns to it."""
        assert types(run(task(status=status, **extra))) == expected

    def test_draft_is_skipped(self) -> None:
        """A draft Task is not a work order yet: archived and skipped."""
        result = run(task(status="draft"))
        assert (result.events, result.skipped) == ((), ("resource: Task status draft: not a work order yet",))

    def test_accepted_without_owner_notes_it(self) -> None:
        """An accepted Task without an owner gives the request and says the assignment is not recorded."""
        result = run(task(status="accepted"))
        assert types(result) == ["workorder.requested"]
        assert "without an owner" in result.skipped[0]

    def test_step_payloads(self) -> None:
        """Engineer, hold reason and resolution come from owner and statusReason."""
        started = payloads(run(task(status="in-progress", owner=OWNER)))[1]
        held = payloads(run(task(status="on-hold", statusReason={"concept": {"text": "等待配件"}})))[1]
        done = payloads(run(task(status="completed", statusReason={"concept": {"text": "更换传感器"}})))[1]
        assert (started, held, done) == (
            {"engineer": "设备科 李工"}, {"reason": "等待配件"}, {"resolution": "更换传感器", "parts": []},
        )  # fmt: skip

    def test_completion_time_is_the_end_of_execution(self) -> None:
        """A completed Task's event occurs at executionPeriod.end."""
        result = run(
            task(
                status="completed",
                executionPeriod={"start": "2024-07-01T10:00:00+08:00", "end": "2024-07-01T15:30:00+08:00"},
            )
        )
        assert result.events[1].event.occurred_at == datetime(2024, 7, 1, 7, 30, tzinfo=UTC)


class TestRequest:
    def test_documented_fields(self) -> None:
        """The request names the asset, department, symptom, priority, channel and requester."""
        result = run(
            task(
                priority="asap",
                location={"reference": "Location/icu-5f"},
                requester={"reference": "Practitioner/dr-1", "display": "ICU值班医生"},
            ),
            message_id="task-1",
        )
        event = result.events[0].event
        assert isinstance(event, WorkOrderRequested)
        assert event.subject == workorder_id_for("fhir", "BX-1")
        assert event.event_id == event_id_for("fhir", "task-1", "Task/task-1:requested")
        assert event.occurred_at == datetime(2024, 7, 1, 1, 0, tzinfo=UTC)
        payload = event.payload
        assert payload.asset == Identifier(scheme="fhir.device", value=f"{SENDER}/Device/dev-1")
        assert payload.reporting_department == DeptRef(code="0101", name="重症医学科")
        assert (payload.symptom, payload.priority, payload.channel, payload.requested_by) == (
            "屏幕不亮", Priority.URGENT, "api", "ICU值班医生",
        )  # fmt: skip

    @pytest.mark.parametrize(
        ("fhir", "hub"),
        [("routine", Priority.NORMAL), ("urgent", Priority.HIGH), ("asap", Priority.URGENT),
         ("stat", Priority.URGENT), (None, Priority.NORMAL)],
    )  # fmt: skip
    def test_priorities(self, fhir: str | None, hub: Priority) -> None:
        """FHIR priorities map to the hub's through the mapping; none is normal."""
        body = task(priority=fhir) if fhir else task()
        assert run(body).events[0].event.payload.priority == hub

    def test_focus_by_mapped_identifier(self) -> None:
        """A focus naming the device by HRP card number gives that identifier."""
        result = run(task(focus={"identifier": {"system": HRP_CARD, "value": "ZC-2022-00032"}}))
        assert result.events[0].event.payload.asset == Identifier(scheme="hrp.card", value="ZC-2022-00032")

    def test_focus_by_absolute_url(self) -> None:
        """A focus given as a full URL to a Device is that server's Device (its own base, not the sender's)."""
        result = run(task(focus={"reference": "http://x.example/fhir/Device/abc/_history/2"}))
        assert result.events[0].event.payload.asset == Identifier(
            scheme="fhir.device", value="http://x.example/fhir/Device/abc"
        )

    def test_focus_on_a_device_of_the_same_bundle(self) -> None:
        """In a Bundle, `Device/<id>` naming an entry's Device is that Device (by its HRP card), even
        when the fullUrls are `urn:uuid:` and name no server."""
        body = {
            "resourceType": "Bundle",
            "id": "b-task",
            "type": "batch",
            "entry": [
                {"fullUrl": "urn:uuid:1", "resource": {**device_body(), "id": "pump-9"}},
                {
                    "fullUrl": "urn:uuid:2",
                    "resource": {**task(focus={"reference": "Device/pump-9"}), "meta": {}},
                },
            ],
        }
        for entry in body["entry"]:
            entry["request"] = {"method": "POST", "url": entry["resource"]["resourceType"]}
        result = run(body)
        assert not result.failures, result.failures
        requested = next(e.event for e in result.events if e.event.type == "workorder.requested")
        assert requested.payload.asset == Identifier(scheme="hrp.card", value="ZC-2021-00043")

    def test_relative_focus_without_a_sender_is_refused(self) -> None:
        """`Device/dev-1` from nobody in particular names no device: refused, naming Task.focus."""
        body = task()
        del body["meta"]
        result = run(body)
        assert [(f.code, f.location.field) for f in result.failures] == [("required", "Task.focus")]
        assert "server-local id" in result.failures[0].reason
        assert result.events == ()

    def test_focus_by_unlisted_system_is_kept_qualified(self) -> None:
        """A focus identifier of a system the mapping does not list names the device by `ns`."""
        result = run(task(focus={"identifier": {"system": "urn:vendor:tag", "value": "T-1"}}))
        assert result.events[0].event.payload.asset == Identifier(scheme="ns", value="urn:vendor:tag|T-1")

    def test_focus_on_a_contained_device(self) -> None:
        """A focus on a contained Device uses that device's preferred identifier."""
        result = run(
            task(
                contained=[
                    {
                        "resourceType": "Device",
                        "id": "d",
                        "identifier": [{"system": HRP_CARD, "value": "ZC-9"}],
                    }
                ],
                focus={"reference": "#d"},
            )
        )
        assert result.events[0].event.payload.asset == Identifier(scheme="hrp.card", value="ZC-9")

    def test_non_device_focus_is_skipped(self) -> None:
        """A Task about something other than a Device is not a work order."""
        result = run(task(focus={"reference": "ServiceRequest/s1"}))
        assert result.skipped == ("resource: Task.focus is not a Device: not a work order",)

    def test_without_description_or_code_is_refused(self) -> None:
        """A request with no description and no code fails, naming Task.description."""
        body = task()
        del body["description"]
        assert [f.location.field for f in run(body).failures] == ["Task.description"]

    def test_code_text_stands_in_for_description(self) -> None:
        """Without a description, the Task's code text is the symptom."""
        body = task(code={"text": "设备维修"})
        del body["description"]
        assert run(body).events[0].event.payload.symptom == "设备维修"

    def test_number_falls_back_to_id(self) -> None:
        """Without an identifier, the work order is keyed by the Task's id."""
        body = task()
        del body["identifier"]
        assert run(body).events[0].event.subject == workorder_id_for("fhir", "task-1")


class TestIdsAndPrivacy:
    def test_resend_gives_the_same_ids(self) -> None:
        """The same Task translated twice gives identical events."""
        body = task(status="in-progress", owner=OWNER, meta={"versionId": "3"})
        assert run(body).events == run(body).events

    def test_later_versions_add_a_step_but_not_a_request(self) -> None:
        """A later version of a Task keeps the request's id and gives the new step a new id."""
        first = run(task(status="on-hold", meta={"versionId": "2", "source": SENDER}), message_id="task-1")
        later = run(task(status="on-hold", meta={"versionId": "4", "source": SENDER}), message_id="task-1")
        assert first.events[0].event.event_id == later.events[0].event.event_id
        assert first.events[1].event.event_id != later.events[1].event.event_id
        assert first.events[1].event.event_id == event_id_for("fhir", "task-1", "Task/task-1:on_hold@2")

    def test_patient_requester_is_not_named(self) -> None:
        """A requester that is a Patient (or a bare display) is never put in the event."""
        for requester in ({"reference": "Patient/p1", "display": "王五"}, {"display": "王五"}):
            result = run(task(requester=requester, **{"for": {"reference": "Patient/p1", "display": "王五"}}))
            dumped = result.events[0].event.model_dump_json()
            assert "王五" not in dumped
            assert "p1" not in dumped

    def test_task_codes_filter(self) -> None:
        """With task.codes set, a Task whose code is not listed is skipped."""
        only_repairs = FhirMapping.model_validate(
            {**mapping().model_dump(), "task": {**mapping().task.model_dump(), "codes": ["repair"]}}
        )
        assert types(run(task(code={"coding": [{"code": "repair"}]}), m=only_repairs)) == [
            "workorder.requested"
        ]
        assert run(task(code={"coding": [{"code": "cleaning"}]}), m=only_repairs).events == ()
