"""Vocabulary shared by routing's pure modules (classify, directory, decide)."""
from __future__ import annotations

from dataclasses import dataclass, field

DISPUTE_TYPES = (
    "婚姻家庭", "邻里纠纷", "土地山林", "合同债务", "劳动争议", "医疗纠纷", "交通事故",
    "物业纠纷", "消费纠纷", "征地拆迁", "环境污染", "人身损害", "城市管理", "其他",
)

# The 15 first-level classes of the official government-message taxonomy.
GOV_CATEGORIES = (
    "城乡建设", "农村农业", "政法", "教育文体", "劳动和社会保障", "民政", "党务政务", "经济管理",
    "卫生计生", "商贸旅游", "环境保护", "交通运输", "纪检监察", "国土资源", "科技与信息产业",
)

LEVELS = ("grid", "village", "work_area", "township", "county")
MECHANISMS = ("supermarket", "specialised", "joint", "chain")


@dataclass(frozen=True)
class Severity:
    """What the text says about how serious a case is. Whether it is *major* (重大) is decided by
    decide.py with the `major` rules of rules/mechanism.yaml, which also weigh the submission
    form's own people count: a count read in a text is often an estate's size ("小区2584户")."""

    people: int | None = None          # people involved, when the text or channel says
    amount_yuan: int | None = None     # money at stake, when stated
    mass_risk: bool = False            # group petition / mass-incident risk
    repeat_complaint: bool = False     # "多次反映", "一直没人管" ...
    extreme_risk: bool = False         # threats of suicide or of an extreme act


@dataclass(frozen=True)
class Classification:
    dispute_type: str
    gov_category: str
    psych_needed: bool
    severity: Severity = field(default_factory=Severity)
    signals: tuple[str, ...] = ()      # every rule that fired, human-readable, e.g. "劳动争议: 欠薪, 工资"
    confidence: float = 0.0            # 0..1
    gov_confidence: float = 0.0        # 0..1, the same margin measure for gov_category
