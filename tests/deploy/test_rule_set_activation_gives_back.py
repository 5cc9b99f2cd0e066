"""The rule set activation gives back what it took: the real handler, moto's SES as a server,
CloudFormation's event sequences (create, update, delete, rollback, cleanup) and the answers it
PUTs to the response URL."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import pytest
from deploy.stand_ins import CloudFormation, LambdaContext, ResponseEndpoint, SesProxy


def active(ses: Any) -> str | None:
    name: str | None = ses.describe_active_receipt_rule_set().get("Metadata", {}).get("Name")
    return name


class Stack:
    """Sends one custom resource's events through the handler, as CloudFormation would, and
    returns the answer that reached the response URL."""

    def __init__(
        self, handler: ModuleType, cloudformation: CloudFormation, response: ResponseEndpoint
    ) -> None:
        self.handler = handler
        self.cloudformation = cloudformation
        self.response = response

    def send(self, request_type: str, rule_set_name: str | None = None, **kw: Any) -> Any:
        event = self.cloudformation.event(request_type, rule_set_name, **kw)
        self.handler.handler(event, LambdaContext())
        return self.response.only_answer(event["RequestId"])

    def create(self, rule_set_name: str) -> Any:
        return self.send("Create", rule_set_name)

    def update(self, rule_set_name: str, physical_id: str, old: str) -> Any:
        return self.send("Update", rule_set_name, physical_id=physical_id, old_rule_set_name=old)

    def delete(self, physical_id: str, rule_set_name: str = "ours") -> Any:
        return self.send("Delete", rule_set_name, physical_id=physical_id)


@pytest.fixture
def stack(handler: ModuleType, cloudformation: CloudFormation, response: ResponseEndpoint) -> Stack:
    return Stack(handler, cloudformation, response)


def test_create_with_nothing_active_records_none_and_delete_deactivates(
    ses: Any, stack: Stack
) -> None:
    created = stack.create("ours")
    assert created["Status"] == "SUCCESS"
    assert created["PhysicalResourceId"] == "ours|previous:"
    assert created["Data"] == {"PreviousRuleSetName": ""}
    assert active(ses) == "ours"

    deleted = stack.delete(created["PhysicalResourceId"])
    assert (deleted["Status"], deleted["PhysicalResourceId"]) == ("SUCCESS", "ours|previous:")
    assert active(ses) is None
    ses.delete_receipt_rule_set(RuleSetName="ours")  # possible only because it is inactive


def test_create_records_the_active_set_and_delete_restores_it(ses: Any, stack: Stack) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    created = stack.create("ours")
    assert created["Status"] == "SUCCESS"
    assert created["PhysicalResourceId"] == "ours|previous:theirs"
    assert created["Data"] == {"PreviousRuleSetName": "theirs"}
    assert active(ses) == "ours"

    assert stack.delete(created["PhysicalResourceId"])["Status"] == "SUCCESS"
    assert active(ses) == "theirs"


def test_delete_deactivates_when_the_previous_set_was_deleted_meanwhile(
    ses: Any, stack: Stack
) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    created = stack.create("ours")
    ses.delete_receipt_rule_set(RuleSetName="theirs")

    deleted = stack.delete(created["PhysicalResourceId"])
    assert deleted["Status"] == "SUCCESS"
    assert active(ses) is None
    assert [s["Name"] for s in ses.list_receipt_rule_sets()["RuleSets"]] == ["ours"]


def test_delete_leaves_alone_a_set_someone_else_activated_since(ses: Any, stack: Stack) -> None:
    ses.create_receipt_rule_set(RuleSetName="original")
    ses.set_active_receipt_rule_set(RuleSetName="original")
    created = stack.create("ours")
    ses.set_active_receipt_rule_set(RuleSetName="theirs")  # an operator switches sets

    assert stack.delete(created["PhysicalResourceId"])["Status"] == "SUCCESS"
    assert active(ses) == "theirs"


def test_delete_with_nothing_active_changes_nothing(ses: Any, stack: Stack) -> None:
    created = stack.create("ours")
    ses.set_active_receipt_rule_set()  # deactivated by hand
    assert stack.delete(created["PhysicalResourceId"])["Status"] == "SUCCESS"
    assert active(ses) is None


def test_a_set_that_was_already_active_stays_active_after_delete(
    ses: Any, stack: Stack, ses_proxy: SesProxy
) -> None:
    """An imported rule set that was active before: the stack took nothing, gives back nothing."""
    ses.set_active_receipt_rule_set(RuleSetName="ours")
    created = stack.create("ours")
    assert created["PhysicalResourceId"] == "ours|previous:ours"
    ses_proxy.actions.clear()
    assert stack.delete(created["PhysicalResourceId"])["Status"] == "SUCCESS"
    assert ses_proxy.actions == ["DescribeActiveReceiptRuleSet"]
    assert active(ses) == "ours"


def test_rename_activates_the_new_set_keeps_the_original_previous_and_cleanup_spares_it(
    ses: Any, stack: Stack
) -> None:
    ses.create_receipt_rule_set(RuleSetName="renamed")
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    created = stack.create("ours")

    updated = stack.update("renamed", created["PhysicalResourceId"], old="ours")
    assert updated["Status"] == "SUCCESS"
    assert updated["PhysicalResourceId"] == "renamed|previous:theirs"
    assert updated["Data"] == {"PreviousRuleSetName": "theirs"}
    assert active(ses) == "renamed"

    # UPDATE_COMPLETE_CLEANUP_IN_PROGRESS: a Delete for the old physical id, old properties.
    cleanup = stack.delete(created["PhysicalResourceId"], rule_set_name="ours")
    assert (cleanup["Status"], cleanup["PhysicalResourceId"]) == (
        "SUCCESS",
        "ours|previous:theirs",
    )
    assert active(ses) == "renamed"
    ses.delete_receipt_rule_set(RuleSetName="ours")  # the old set can now go

    assert stack.delete(updated["PhysicalResourceId"], "renamed")["Status"] == "SUCCESS"
    assert active(ses) == "theirs"


def test_an_update_rolled_back_reactivates_the_old_set_and_its_cleanup_spares_it(
    ses: Any, stack: Stack
) -> None:
    ses.create_receipt_rule_set(RuleSetName="renamed")
    created = stack.create("ours")
    updated = stack.update("renamed", created["PhysicalResourceId"], old="ours")

    # UPDATE_ROLLBACK_IN_PROGRESS: an Update back to the old properties, then the cleanup
    # Delete for the physical id the failed update returned.
    rolled_back = stack.update("ours", updated["PhysicalResourceId"], old="renamed")
    assert rolled_back["PhysicalResourceId"] == "ours|previous:"
    assert active(ses) == "ours"
    assert stack.delete(updated["PhysicalResourceId"], "renamed")["Status"] == "SUCCESS"
    assert active(ses) == "ours"


def test_an_update_that_keeps_the_name_keeps_the_physical_id(ses: Any, stack: Stack) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    created = stack.create("ours")
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    updated = stack.update("ours", created["PhysicalResourceId"], old="ours")
    assert updated["PhysicalResourceId"] == created["PhysicalResourceId"]  # no cleanup Delete
    assert updated["Data"] == {"PreviousRuleSetName": "theirs"}
    assert active(ses) == "ours"


def test_a_failed_update_answers_with_the_old_physical_id(ses: Any, stack: Stack) -> None:
    created = stack.create("ours")
    failed = stack.update("missing", created["PhysicalResourceId"], old="ours")
    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"] == created["PhysicalResourceId"]
    assert "RuleSetDoesNotExist" in failed["Reason"]
    assert active(ses) == "ours"


def test_rollback_of_a_create_that_failed_after_activating_gives_back_the_previous_set(
    ses: Any, stack: Stack, ses_proxy: SesProxy, handler: ModuleType, monkeypatch: Any
) -> None:
    """SetActiveReceiptRuleSet takes effect but its answer is lost: the Create fails, and the
    rollback's Delete (carrying the FAILED answer's physical id) still gives `theirs` back."""
    monkeypatch.setattr(handler, "MAX_ATTEMPTS", 1)
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    ses_proxy.faults["SetActiveReceiptRuleSet"] = ("apply-then-fail",)

    failed = stack.create("ours")
    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"] == "ours|previous:theirs"
    assert "InternalFailure" in failed["Reason"]
    assert active(ses) == "ours"  # the change took effect

    ses_proxy.faults.clear()
    assert stack.delete(failed["PhysicalResourceId"])["Status"] == "SUCCESS"
    assert active(ses) == "theirs"


def test_rollback_of_a_create_that_failed_before_recording_touches_nothing(
    ses: Any, stack: Stack, ses_proxy: SesProxy
) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    ses_proxy.faults["DescribeActiveReceiptRuleSet"] = ("fail", "AccessDenied", "not allowed")

    failed = stack.create("ours")
    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"] == "cdk-ses-bounce:nothing-activated"
    assert "AccessDenied" in failed["Reason"]

    ses_proxy.faults.clear()
    ses_proxy.actions.clear()
    deleted = stack.delete(failed["PhysicalResourceId"])
    assert deleted["Status"] == "SUCCESS"
    assert ses_proxy.actions == []  # no SES call at all
    assert active(ses) == "theirs"


def test_rollback_of_a_create_whose_activation_was_refused_leaves_the_previous_set(
    ses: Any, stack: Stack
) -> None:
    ses.set_active_receipt_rule_set(RuleSetName="theirs")
    failed = stack.create("missing")
    assert failed["Status"] == "FAILED"
    assert failed["PhysicalResourceId"] == "missing|previous:theirs"
    assert "RuleSetDoesNotExist" in failed["Reason"]
    assert stack.delete(failed["PhysicalResourceId"], "missing")["Status"] == "SUCCESS"
    assert active(ses) == "theirs"


def test_a_resource_created_by_version_0_3_keeps_its_id_and_deactivates_on_delete(
    ses: Any, stack: Stack
) -> None:
    """0.3's physical id is the bare rule set name (previous unknown). Upgrading adds
    ServiceTimeout, so CloudFormation sends an Update: the id must not change, or the cleanup
    Delete of the old id would deactivate the set that is meant to stay active."""
    ses.set_active_receipt_rule_set(RuleSetName="ours")
    updated = stack.update("ours", "ours", old="ours")
    assert (updated["Status"], updated["PhysicalResourceId"]) == ("SUCCESS", "ours")
    assert active(ses) == "ours"

    assert stack.delete("ours")["Status"] == "SUCCESS"
    assert active(ses) is None
