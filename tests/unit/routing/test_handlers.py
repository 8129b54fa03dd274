"""Routing's use cases over a real (SQLite) database, without a broker: new cases, returns (退单),
escalations up the whole chain, load release, the parties' choice (点将), and what each
case_routed carries (reasons, supervisors with contacts, the history)."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.common.clock import ManualClock
from services.common.db import Database
from services.contracts.envelope import load_event, new_event
from services.contracts.errors import Conflict, Invalid, NotFound
from services.routing import handlers, views
from services.routing.directory import Directory
from services.routing.models import Base, RoutingDecision

DIRECTORY = Directory.from_reference()
TOWNSHIP = "371324-009"  # 南桥镇
VILLAGE = "371324-009-004"  # 前柳涧村, two village mediators
GRID = "371324-009-004-01"
NOW = datetime(2026, 11, 30, 2, 0, tzinfo=timezone.utc)


@pytest.fixture(scope="module")
def db(tmp_path_factory):
    database = Database(f"sqlite:///{tmp_path_factory.mktemp('routing')}/routing.db", Base.metadata, "routing",
                        ManualClock(NOW))
    database.create_all()
    with database.transaction() as uow:
        assert handlers.load_reference(uow, DIRECTORY) == "loaded"
    yield database
    database.dispose()


_numbers = iter(range(1, 10_000))


def case(content="邻居家盖房占了我家宅基地半米, 请求调解", channel="hotline", **fields) -> dict:
    return {"case_no": f"371324-20261130-{next(_numbers):06d}", "content": content,
            "accepted_at": NOW, "source": {"channel": channel, "reference": "r", "received_at": NOW}, **fields}


def run(db, handler, *args):
    """Run a handler in one transaction: (its result, the events it emitted, checked on the wire)."""
    with db.transaction() as uow:
        result = handler(uow, *args)
        events = [(event.type, event.data) for event in uow.emitted]
    for event_type, data in events:  # every payload passes its contract and survives the wire
        _, body = new_event(event_type, data, correlation_id=data.get("case_no"), occurred_at=NOW)
        load_event(body)
    return result, events


def routed(events) -> dict:
    found = [data for event_type, data in events if event_type == "case_routed"]
    assert len(found) == 1, events
    return found[0]


def holders(payload) -> list[str]:
    return [ref["id"] for ref in payload["mediators"]]


def load(db, mediator_id) -> int:
    with db.reading() as session:
        return handlers.mediator_load(session).get(mediator_id, 0)


# --- every case that enters gets a level, a mechanism, someone to hold it, and the reasons ---------


@pytest.mark.parametrize("fields, mechanism, level", [
    (dict(township=TOWNSHIP, village=VILLAGE), "supermarket", "village"),
    (dict(content="我父亲在县医院做手术后死亡, 医院有过错, 要求赔偿", township=TOWNSHIP), "specialised", "county"),
    (dict(content="村里征地补偿款一直不发, 我们几十户村民联名上访", channel="petition", township=TOWNSHIP,
          people_count=40), "joint", "county"),
    (dict(content="两家因为借款三万元不还发生纠纷", channel="walkin", township=TOWNSHIP, centre=f"{TOWNSHIP}-TJ"),
     "chain", "township"),
    (dict(channel="grid", township=TOWNSHIP, grid_code=GRID), "chain", "grid"),
])
def test_a_new_case_is_routed_with_holders_reasons_and_supervisors(db, fields, mechanism, level):
    payload = routed(run(db, handlers.route_new_case, case(**fields))[1])
    assert (payload["mechanism"], payload["level"], payload["attempt"], payload["trigger"]) == (
        mechanism, level, 1, "received")
    assert payload["mediators"] or payload["unit"]
    assert payload["reasons"] and any("规则" in reason for reason in payload["reasons"])
    if payload["mediators"]:
        assert payload["mediator"] == payload["mediators"][0] and payload["mediator"]["phone"]
    roles = [(ref["role"], ref["township"]) for ref in payload["supervisors"]]
    assert roles[0] == ("township_head", TOWNSHIP) and roles.count(("county_supervisor", None)) == 3
    assert all(ref["phone"] and ref["email"] for ref in payload["supervisors"])
    if mechanism == "joint":
        assert payload["joint_plan"]["lead_unit"] == payload["unit"]["id"] and payload["co_units"]
        assert payload["severity"]["major"]


def test_an_estate_size_in_the_text_does_not_make_a_case_major(db):
    text = "我们小区2584户业主, 物业公司乱收费, 电梯坏了半年没人修"
    by_text = routed(run(db, handlers.route_new_case, case(text, township=TOWNSHIP))[1])
    assert by_text["severity"]["people"] == 2584 and not by_text["severity"]["major"]
    assert by_text["mechanism"] == "specialised" and by_text["unit"]["id"] == "U-HOUSING"
    by_form = routed(run(db, handlers.route_new_case, case(text, township=TOWNSHIP, people_count=12))[1])
    assert by_form["mechanism"] == "joint" and by_form["severity"]["major"]


def test_a_redelivered_case_received_routes_nothing_new(db):
    new = case(township=TOWNSHIP, village=VILLAGE)
    routed(run(db, handlers.route_new_case, new)[1])
    assert run(db, handlers.route_new_case, new) == (None, [])


def test_a_grid_report_settled_on_the_spot_is_recorded_without_load(db):
    payload = routed(run(db, handlers.route_new_case, case(channel="grid", grid_code=GRID, resolved_on_site=True))[1])
    assert payload["resolved_on_site"] and payload["level"] == "grid"
    assert payload["mediators"][0]["role"] == "grid_worker"


# --- returned cases (退单) ------------------------------------------------------------------------


def test_a_returned_case_never_goes_back_to_anyone_who_returned_it(db):
    first = routed(run(db, handlers.route_new_case, case("两家借款纠纷", channel="walkin", township=TOWNSHIP,
                                                         centre=f"{TOWNSHIP}-TJ"))[1])
    case_no, seen, payload = first["case_no"], [], first
    township_pool = {m.id for m in DIRECTORY.mediators(level="township", township=TOWNSHIP)}
    for attempt in range(2, len(township_pool) + 2):
        returner = holders(payload)[0]
        seen.append(returner)
        before = load(db, returner)
        payload = routed(run(db, handlers.reroute_returned, {
            "case_no": case_no, "returned_by": returner, "reason": "与当事人系亲属, 申请回避"})[1])
        assert payload["attempt"] == attempt and payload["trigger"] == "returned"
        assert not set(holders(payload)) & set(seen), "went back to someone who returned it"
        assert any(reason.startswith("退单") for reason in payload["reasons"])
        assert payload["history"][-1]["outcome"] == "returned"
        assert load(db, returner) == before - 1  # the returner's load is released
    # everyone at the township returned it: it moves up to the county room guiding the township
    assert payload["level"] == "county" and payload["room"] == DIRECTORY.room_guiding(TOWNSHIP).code
    assert any("暂无可指派" in reason for reason in payload["reasons"])
    assert set(seen) == township_pool


def test_a_unit_that_returns_a_specialised_case_loses_it_to_the_supermarket(db):
    first = routed(run(db, handlers.route_new_case, case("在县医院住院期间被护士打错针, 要求赔偿", township=TOWNSHIP))[1])
    assert first["mechanism"] == "specialised"
    payload = routed(run(db, handlers.reroute_returned, {
        "case_no": first["case_no"], "returned_by": first["unit"]["id"], "reason": "不属于医疗纠纷"})[1])
    assert payload["mechanism"] == "supermarket" and payload["unit"] is None and payload["mediators"]
    assert any("已退回" in reason for reason in payload["reasons"])


def test_a_returned_grid_case_goes_to_the_village(db):
    first = routed(run(db, handlers.route_new_case, case(channel="grid", grid_code=GRID))[1])
    payload = routed(run(db, handlers.reroute_returned, {
        "case_no": first["case_no"], "returned_by": holders(first)[0], "reason": "现场无法调处"})[1])
    assert payload["level"] == "village" and DIRECTORY.mediator(holders(payload)[0]).village == VILLAGE


def test_an_event_about_a_case_never_routed_is_retried(db):
    with pytest.raises(handlers.CaseNotRoutedYet):
        run(db, handlers.reroute_returned, {"case_no": "371324-20261130-999999", "returned_by": "x", "reason": "?"})


# --- escalation (上报) ----------------------------------------------------------------------------


def test_the_whole_escalation_chain_from_grid_to_the_guiding_county_room(db):
    payload = routed(run(db, handlers.route_new_case, case(channel="grid", grid_code=GRID))[1])
    case_no, everyone = payload["case_no"], set(holders(payload))
    assert payload["level"] == "grid"
    for number, level in enumerate(["village", "work_area", "township", "county"], 1):
        below = payload["level"]
        payload = routed(run(db, handlers.escalate_case, {
            "case_no": case_no, "from_level": below, "reason": "调解不成"})[1])
        assert (payload["level"], payload["trigger"], payload["escalated_from"]) == (level, "escalated", below)
        assert len(payload["history"]) == number  # the history is carried along
        assert payload["history"][-1]["outcome"] == "escalated" and payload["history"][-1]["level"] == below
        assert not set(holders(payload)) & everyone  # nobody who failed below gets it again
        everyone |= set(holders(payload))
    guiding = DIRECTORY.room_guiding(TOWNSHIP)
    assert payload["room"] == guiding.code and DIRECTORY.mediator(holders(payload)[0]).room == guiding.code
    assert any("连锁" in reason for reason in payload["reasons"])
    assert run(db, handlers.escalate_case, {"case_no": case_no, "from_level": "county", "reason": "x"}) == (None, [])


# --- the end of a case releases its mediators ---------------------------------------------------


def test_resolving_and_closing_release_the_load_and_end_choice(db):
    payload = routed(run(db, handlers.route_new_case, case(township=TOWNSHIP, village=VILLAGE))[1])
    mediator = holders(payload)[0]
    before = load(db, mediator)
    run(db, handlers.case_ended, {"case_no": payload["case_no"], "outcome": "resolved"}, "resolved")
    assert load(db, mediator) == before - 1
    run(db, handlers.case_ended, {"case_no": payload["case_no"], "outcome": "resolved"}, "closed")
    with pytest.raises(Conflict):
        run(db, handlers.choose_mediators, payload["case_no"], ["MT-009-1"], {"id": "c", "kind": "citizen"})
    with db.reading() as session:
        assert handlers.case_routing(session, payload["case_no"])["status"] == "closed"


def test_a_case_closed_before_it_is_routed_takes_no_load(db):
    early = case(channel="grid", grid_code=GRID)
    run(db, handlers.case_ended, {"case_no": early["case_no"], "outcome": "resolved_on_site"}, "closed")
    payload = routed(run(db, handlers.route_new_case, early)[1])
    with db.reading() as session:
        assert early["case_no"] not in {row for row in session.scalars(
            handlers.select(handlers.OpenAssignment.case_no))}
    assert payload["level"] == "grid"


# --- the parties' choice (超市 点将) ----------------------------------------------------------------


def test_a_valid_choice_one_or_several_is_honoured_and_routed(db):
    payload = routed(run(db, handlers.route_new_case, case(township=TOWNSHIP, village=VILLAGE))[1])
    assert payload["level"] == "village"
    citizen = {"id": "citizen", "kind": "citizen", "role": "citizen"}
    answer, events = run(db, handlers.choose_mediators, payload["case_no"], ["MT-009-3", "MV-009-004-1"], citizen)
    chosen = routed(events)
    assert answer["status"] == "honoured" and not answer["unchanged"]
    assert holders(chosen) == ["MT-009-3", "MV-009-004-1"] and chosen["mediator"]["id"] == "MT-009-3"
    assert (chosen["trigger"], chosen["attempt"], chosen["level"]) == ("party_choice", 2, "township")
    assert any("多对一" in reason for reason in chosen["reasons"]) and chosen["chosen_by"] == "citizen"
    assert load(db, "MT-009-3") >= 1
    again, events = run(db, handlers.choose_mediators, payload["case_no"], ["MT-009-3", "MV-009-004-1"], citizen)
    assert again["unchanged"] and events == []  # a retried request changes nothing


def test_invalid_choices_are_refused_naming_each_mediator(db):
    payload = routed(run(db, handlers.route_new_case, case(township=TOWNSHIP, village=VILLAGE))[1])
    case_no, staff = payload["case_no"], {"id": "reception-009-1", "kind": "staff", "role": "receptionist"}
    returner = holders(payload)[0]
    routed(run(db, handlers.reroute_returned, {"case_no": case_no, "returned_by": returner, "reason": "忙"})[1])
    with pytest.raises(Conflict) as refused:
        run(db, handlers.choose_mediators, case_no, [returner, "MT-001-1", "MT-009-1"], staff)
    assert set(refused.value.fields) == {returner, "MT-001-1"}
    assert "退回" in refused.value.fields[returner][0] and "只受理" in refused.value.fields["MT-001-1"][0]
    with pytest.raises(Invalid) as unknown:
        run(db, handlers.choose_mediators, case_no, ["MX-404"], staff)
    assert "MX-404" in unknown.value.fields
    with pytest.raises(Invalid):
        run(db, handlers.choose_mediators, case_no, [], staff)
    with pytest.raises(NotFound):
        run(db, handlers.choose_mediators, "371324-20261130-999998", ["MT-009-1"], staff)


def test_a_specialised_case_has_no_choice(db):
    payload = routed(run(db, handlers.route_new_case, case("在县医院做手术出了医疗事故", township=TOWNSHIP))[1])
    with pytest.raises(Conflict, match="归口"):
        run(db, handlers.choose_mediators, payload["case_no"], ["MT-009-1"], {"id": "operator", "role": "operator"})


def test_routing_history_explains_every_attempt(db):
    payload = routed(run(db, handlers.route_new_case, case(township=TOWNSHIP, village=VILLAGE))[1])
    routed(run(db, handlers.escalate_case, {"case_no": payload["case_no"], "from_level": "village", "reason": "不成"})[1])
    with db.reading() as session:
        view = handlers.case_routing(session, payload["case_no"])
        stored = session.get(RoutingDecision, (payload["case_no"], 2)).decision
    assert [a["trigger"] for a in view["attempts"]] == ["received", "escalated"]
    assert view["attempts"][0]["outcome"] == "escalated" and view["attempts"][1]["reasons"][0].startswith("上报")
    assert stored["level"] == "work_area"


# --- the published roster (超市) --------------------------------------------------------------------


def test_the_roster_filters_and_shows_who_can_take_a_case_now():
    full = DIRECTORY.mediators(level="township", township=TOWNSHIP)[0]
    load = {full.id: full.capacity}
    township = views.roster_view(DIRECTORY, load, township="南桥镇")
    levels = [view["level"] for view in township]
    assert levels == sorted(levels, key=views.ROSTER_ORDER.index) and "county" in levels
    assert all(view["township"] in (TOWNSHIP, None) and "phone" not in view for view in township)
    busy = next(view for view in township if view["id"] == full.id)
    assert (busy["open_cases"], busy["available"]) == (full.capacity, False)
    free = views.roster_view(DIRECTORY, load, township=TOWNSHIP, level="township", available=True)
    assert full.id not in {view["id"] for view in free} and free
    village = views.roster_view(DIRECTORY, load, township=TOWNSHIP, village=VILLAGE)
    assert {view["id"] for view in village} == {"MV-009-004-1", "MV-009-004-2"}
    experts = views.roster_view(DIRECTORY, load, specialty="医疗纠纷", level="county")
    assert experts and all("医疗纠纷" in view["specialties"] for view in experts)
    with pytest.raises(Invalid) as refused:
        views.roster_view(DIRECTORY, load, specialty="打麻将", level="province", township="北京")
    assert set(refused.value.fields) == {"specialty", "level"}
