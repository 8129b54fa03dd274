"""`lanling classify`: one answer per input line, the fields the issue names, errors that never stop the run."""
from __future__ import annotations

import json

import pytest

from services.routing.explain import ItemInvalid, classify_lines, explain, reference_directory

FIELDS = {"dispute_type", "gov_category", "unit", "mechanism", "level", "psych_needed", "signals", "confidence"}


def test_each_line_gets_one_answer_in_order_with_the_fields_of_the_issue():
    lines = [
        "\ufeff" + json.dumps({"id": "a", "text": "邻居家的狗把我家孩子咬伤了, 不给看病钱", "township": "南桥"},
                              ensure_ascii=False) + "\r\n",
        "",
        "not json",
        json.dumps({"id": "b", "text": "在县医院手术后感染, 医院不承认有责任", "title": "医疗纠纷"}, ensure_ascii=False),
        json.dumps({"text": "x", "channel": "fax"}),
    ]
    answers = list(classify_lines(lines))
    assert [a.get("id") or a.get("line") for a in answers] == ["a", 3, "b", 5]
    assert FIELDS <= set(answers[0]) and FIELDS <= set(answers[2])
    assert answers[2]["dispute_type"] == "医疗纠纷" and answers[2]["mechanism"] == "specialised"
    assert answers[2]["unit"] == "U-MEDICAL-COMMITTEE" and answers[2]["level"] == "county"
    assert answers[1]["error"] == "invalid" and "channel" in answers[3]["fields"]
    assert all(isinstance(a["signals"], list) and a["signals"] for a in (answers[0], answers[2]))
    json.dumps(answers, ensure_ascii=False)  # JSON all the way


def test_the_unit_is_given_even_for_the_supermarket():
    answer = explain({"text": "两口子闹离婚, 为了孩子抚养权吵得不可开交", "township": "371324-009"}, reference_directory())
    assert answer["mechanism"] == "supermarket" and answer["unit"] == "U-MEDIATION-CENTRE"
    assert answer["reasons"][0].startswith("机制=")


def test_the_form_count_not_the_text_count_makes_a_case_major():
    directory = reference_directory()
    estate = {"text": "我们小区2584户业主, 物业公司乱收费, 电梯坏了半年没人修", "township": "卞庄街道"}
    assert explain(estate, directory)["mechanism"] == "specialised"
    assert explain({**estate, "people_count": 12}, directory)["major"] is True


@pytest.mark.parametrize("item, field", [
    ({}, "text"), ({"text": "  "}, "text"), ({"text": "x" * 20_001}, "text"), ({"text": "x", "people_count": 0},
                                                                                "people_count"),
    ({"text": "x", "people_count": True}, "people_count"), ({"text": "x", "township": 3}, "township"),
    (["text"], "_body"),
])
def test_bad_inputs_name_the_field(item, field):
    with pytest.raises(ItemInvalid) as refused:
        explain(item, reference_directory())
    assert field in refused.value.fields
