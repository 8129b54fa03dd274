"""The 人民调解协议书 as printable HTML (templates/agreement.html.j2).

Content follows 人民调解法 第二十九条 (parties, main facts and issues, the
terms with how, when and where they are performed; signed by the parties and
the mediator, sealed by the committee; one copy per party and one kept) and
第三十三条 (the parties may jointly ask the court for 司法确认 within 30 days).

`public=True` masks the parties (name 王**, ID 3713**********1234, phone
138****5678, no address) and masks the same data wherever it appears in the
facts and terms; the full version is for the parties and the case file only.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path
from zoneinfo import ZoneInfo

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.common.privacy import mask_id_number, mask_name, mask_phone, mask_text

TEMPLATES = Path(__file__).resolve().parent / "templates"
PARTY_ROLES = {"applicant": "申请人", "respondent": "被申请人", "third_party": "第三人"}
ADDRESS_HIDDEN = "(公开版不显示)"
CHINESE_NUMBERS = "零一二三四五六七八九十"


@dataclass(frozen=True)
class Party:
    role: str                      # applicant | respondent | third_party
    name: str
    id_number: str | None = None
    phone: str | None = None
    address: str | None = None

    def __post_init__(self) -> None:
        if self.role not in PARTY_ROLES:
            raise ValueError(f"party role must be one of {sorted(PARTY_ROLES)}")


@dataclass(frozen=True)
class AgreementDocument:
    case_no: str
    committee: str                 # the mediation organisation, e.g. 兰陵县卞庄街道人民调解委员会
    parties: tuple[Party, ...]
    facts: str                     # 纠纷主要事实、争议事项
    terms: tuple[str, ...]         # what was agreed, with how, when and where it is performed
    mediators: tuple[str, ...]     # mediators' names (published on the roster, not masked)
    agreed_at: datetime            # aware; shown as the Asia/Shanghai date
    judicial_confirmation: bool = False
    place: str | None = None       # where the mediation took place


@lru_cache(maxsize=1)
def _environment() -> Environment:
    return Environment(loader=FileSystemLoader(TEMPLATES), autoescape=True, undefined=StrictUndefined,
                       trim_blocks=True, lstrip_blocks=True)


def _chinese_date(instant: datetime) -> str:
    local = instant.astimezone(ZoneInfo("Asia/Shanghai"))
    return f"{local.year}年{local.month}月{local.day}日"


def _chinese_count(n: int) -> str:
    """1..99 in Chinese numerals (一式三份)."""
    if n <= 10:
        return CHINESE_NUMBERS[n]
    tens, ones = divmod(n, 10)
    return (CHINESE_NUMBERS[tens] if tens > 1 else "") + "十" + (CHINESE_NUMBERS[ones] if ones else "")


def _masker(parties: tuple[Party, ...]):
    """Masks free text: the parties' own names, ID numbers, phones and addresses, then any phone/ID left."""
    replacements = []
    for party in parties:
        replacements += [(party.name, mask_name(party.name)), (party.id_number, mask_id_number(party.id_number)),
                         (party.phone, mask_phone(party.phone)), (party.address, ADDRESS_HIDDEN)]
    # Longest first, so 王小明 is masked before a shorter name it contains.
    replacements = sorted(((old, new) for old, new in replacements if old), key=lambda pair: -len(pair[0]))

    def mask(text: str) -> str:
        for old, new in replacements:
            text = text.replace(old, new)
        return mask_text(text)
    return mask


def render_agreement(document: AgreementDocument, public: bool = False) -> str:
    """The 调解协议书 as a complete HTML page, ready to print (A4)."""
    if public:
        mask = _masker(document.parties)
        parties = [{"role": PARTY_ROLES[p.role], "name": mask_name(p.name),
                    "id_number": mask_id_number(p.id_number), "phone": mask_phone(p.phone),
                    "address": ADDRESS_HIDDEN if p.address else None} for p in document.parties]
        facts, terms = mask(document.facts), [mask(term) for term in document.terms]
    else:
        parties = [{"role": PARTY_ROLES[p.role], "name": p.name, "id_number": p.id_number,
                    "phone": p.phone, "address": p.address} for p in document.parties]
        facts, terms = document.facts, list(document.terms)
    return _environment().get_template("agreement.html.j2").render(
        case_no=document.case_no, committee=document.committee, parties=parties, facts=facts, terms=terms,
        mediators=list(document.mediators), date=_chinese_date(document.agreed_at), place=document.place,
        judicial_confirmation=document.judicial_confirmation, public=public,
        copies=_chinese_count(len(document.parties) + 1),
    )
