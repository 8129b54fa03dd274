"""The 调解协议书: full for the parties, masked when public, printable."""
from __future__ import annotations

from datetime import datetime, timezone

import pytest

from services.mediation.agreement import AgreementDocument, Party, render_agreement

APPLICANT = Party("applicant", "王小明", "371324199001011234", "13812345678", "卞庄街道东关村1号")
RESPONDENT = Party("respondent", "欧阳娜娜", "37132419850202345X", "13987654321")
DOCUMENT = AgreementDocument(
    case_no="371324-20260305-000042",
    committee="兰陵县卞庄街道人民调解委员会",
    parties=(APPLICANT, RESPONDENT),
    facts="王小明与欧阳娜娜因宅基地界址发生争议。\n王小明(电话13812345678)称围墙越界。",
    terms=("欧阳娜娜于2026年3月10日前拆除越界围墙。", "王小明放弃其他请求。"),
    mediators=("赵调解",),
    agreed_at=datetime(2026, 3, 4, 17, 0, tzinfo=timezone.utc),   # Mar 5 01:00 in Lanling
    judicial_confirmation=True,
    place="卞庄街道调解中心",
)
PERSONAL = ("王小明", "欧阳娜娜", "371324199001011234", "37132419850202345X", "13812345678", "13987654321",
            "东关村1号")


def test_the_full_version_shows_the_parties():
    html = render_agreement(DOCUMENT)
    assert all(value in html for value in PERSONAL)
    assert "公开版" not in html


def test_the_public_version_masks_the_parties_everywhere():
    html = render_agreement(DOCUMENT, public=True)
    assert not [value for value in PERSONAL if value in html]
    assert "王**" in html and "欧***" in html
    assert "138****5678" in html and "3713**********345X" in html
    assert "王**与欧***因宅基地界址发生争议" in html         # names masked inside the facts too
    assert "公开版" in html and "(公开版不显示)" in html


def test_content_of_the_document():
    html = render_agreement(DOCUMENT)
    assert "人民调解协议书" in html and "编号: 371324-20260305-000042" in html
    assert html.index("欧阳娜娜于2026年3月10日前拆除越界围墙") < html.index("王小明放弃其他请求")
    assert "一式三份" in html                                  # two parties and the committee
    assert "2026年3月5日" in html                              # the local date, not the UTC one
    assert "赵调解" in html and "兰陵县卞庄街道人民调解委员会(印章)" in html
    assert html.count("(签名、盖章或按指印)") == 2              # a signature line per party
    assert "@page" in html and "size: A4" in html


def test_court_confirmation_is_marked_only_when_requested():
    assert "申请司法确认" in render_agreement(DOCUMENT)
    without = AgreementDocument(**{**DOCUMENT.__dict__, "judicial_confirmation": False})
    assert "申请司法确认" not in render_agreement(without)


def test_text_is_escaped():
    hostile = AgreementDocument(**{**DOCUMENT.__dict__, "facts": "<script>alert(1)</script>"})
    html = render_agreement(hostile)
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_unknown_party_roles_are_refused():
    with pytest.raises(ValueError):
        Party("witness", "张三")
