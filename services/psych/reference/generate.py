"""Generate the SAMPLE counsellor pool (counsellors.json): 248 invented people.

Nothing here describes a real person. Names are drawn from common surnames and
given-name characters, phone numbers use the unassigned 100 prefix (no SMS can
reach anyone), and recusal persons are random placeholders shaped like keyed
hashes. The output is deterministic for a given seed:

    .venv/bin/python -m services.psych.reference.generate            # rewrite the file
    .venv/bin/python -m services.psych.reference.generate --check    # exit 1 if it differs
"""
from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path

OUTPUT = Path(__file__).with_name("counsellors.json")
SEED = 371324
POOL_SIZE = 248
REFERENCE_YEAR = 2025  # ages 25-70 are drawn as of this year and stored as birth years

# The 18 township-level divisions in the order of ../shared/data/lanling/townships.csv,
# with the project's own codes and approximate centres (lat, lon), the same as routing's
# directory (services/routing/reference/data/townships.json) so distances agree.
TOWNSHIPS = (
    ("371324-001", "卞庄街道", "街道", 34.857, 118.058),
    ("371324-002", "苍山街道", "街道", 34.83, 118.02),
    ("371324-003", "兰陵镇", "镇", 34.735, 117.998),
    ("371324-004", "大仲村镇", "镇", 34.95, 118.01),
    ("371324-005", "尚岩镇", "镇", 35.03, 117.88),
    ("371324-006", "磨山镇", "镇", 34.92, 117.89),
    ("371324-007", "矿坑镇", "镇", 34.72, 117.87),
    ("371324-008", "新兴镇", "镇", 34.78, 118.12),
    ("371324-009", "南桥镇", "镇", 34.7, 118.11),
    ("371324-010", "金岭镇", "镇", 34.85, 117.93),
    ("371324-011", "芦柞镇", "镇", 34.92, 118.13),
    ("371324-012", "庄坞镇", "镇", 34.64, 118.0),
    ("371324-013", "鲁城镇", "镇", 34.62, 118.12),
    ("371324-014", "向城镇", "镇", 34.78, 117.9),
    ("371324-015", "神山镇", "镇", 35.07, 118.02),
    ("371324-016", "长城镇", "镇", 34.82, 118.21),
    ("371324-017", "车辋镇", "镇", 34.99, 118.15),
    ("371324-018", "下村乡", "乡", 35.01, 117.96),
)
# The two county-seat streets hold more of the pool than rural towns.
TOWNSHIP_WEIGHTS = (4, 3) + (1,) * 16

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
GIVEN = {
    "female": "秀英桂兰玉梅春霞丽娟红艳敏静芳慧婷雪琳晓燕淑华凤琴翠萍颖洁",
    "male": "建国志强伟明军平文斌海涛永刚国庆新民德胜宏亮振华立群学成峰",
}

# For each occupation: share of the pool, age range, share of women, likely
# certifications and specialities, the availability template, the chance of
# taking urgent call-outs, and weekly capacity.
OCCUPATIONS = {
    "教师": dict(weight=48, ages=(25, 60), female=0.65,
                 certs={"国家三级心理咨询师": 4, "国家二级心理咨询师": 1},
                 specs=("青少年", "亲子关系", "情绪疏导"), template="evenings", callout=0.15, capacity=(1, 3)),
    "医生": dict(weight=20, ages=(28, 60), female=0.45,
                 certs={"心理治疗师": 3, "国家二级心理咨询师": 2},
                 specs=("危机干预", "哀伤辅导", "成瘾", "创伤"), template="clinic", callout=0.4, capacity=(1, 3)),
    "护士": dict(weight=18, ages=(25, 55), female=0.95,
                 certs={"国家三级心理咨询师": 3, "国家二级心理咨询师": 1},
                 specs=("哀伤辅导", "老年", "情绪疏导"), template="clinic", callout=0.3, capacity=(1, 3)),
    "社工": dict(weight=28, ages=(25, 55), female=0.7,
                 certs={"中级社会工作师": 2, "助理社会工作师": 2, "国家三级心理咨询师": 1},
                 specs=("婚姻家庭", "老年", "青少年", "成瘾", "团体辅导"), template="daytime", callout=0.4, capacity=(2, 4)),
    "退休干部": dict(weight=24, ages=(58, 70), female=0.3,
                     certs={"国家三级心理咨询师": 3, "婚姻家庭咨询师": 1},
                     specs=("婚姻家庭", "老年", "情绪疏导", "团体辅导"), template="daytime", callout=0.2, capacity=(1, 3)),
    "心理咨询师(专职)": dict(weight=30, ages=(26, 60), female=0.7,
                             certs={"国家二级心理咨询师": 4, "国家三级心理咨询师": 1, "心理治疗师": 1},
                             specs=("危机干预", "创伤", "哀伤辅导", "婚姻家庭", "职场压力", "成瘾"),
                             template="full_time", callout=0.6, capacity=(4, 8)),
    "妇联干部": dict(weight=14, ages=(28, 58), female=0.95,
                     certs={"国家三级心理咨询师": 2, "婚姻家庭咨询师": 2},
                     specs=("婚姻家庭", "亲子关系", "情绪疏导"), template="daytime", callout=0.3, capacity=(1, 3)),
    "律师": dict(weight=8, ages=(28, 60), female=0.4,
                 certs={"国家三级心理咨询师": 3, "婚姻家庭咨询师": 1},
                 specs=("婚姻家庭", "职场压力", "情绪疏导"), template="evenings", callout=0.1, capacity=(1, 2)),
    "乡村医生": dict(weight=18, ages=(30, 65), female=0.3,
                     certs={"国家三级心理咨询师": 1},
                     specs=("老年", "情绪疏导", "成瘾"), template="daytime", callout=0.5, capacity=(1, 3)),
    "社区民警": dict(weight=10, ages=(25, 55), female=0.25,
                     certs={"国家三级心理咨询师": 3, "国家二级心理咨询师": 1},
                     specs=("危机干预", "情绪疏导", "成瘾", "创伤"), template="shifts", callout=0.6, capacity=(1, 2)),
}
SPECIALITIES = ("婚姻家庭", "亲子关系", "青少年", "老年", "危机干预", "情绪疏导",
                "哀伤辅导", "职场压力", "成瘾", "创伤", "团体辅导")
WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
INACTIVE_SHARE = 0.06
VILLAGES_PER_TOWNSHIP = 45  # recusal villages use codes every township has in the directory


def slots_for(template: str, rng: random.Random) -> list[dict]:
    """Weekly time slots (local time) in which a counsellor can see a party."""
    def slot(day, start, end):
        return {"day": day, "start": start, "end": end}

    if template == "evenings":
        days = sorted(rng.sample(WEEKDAYS, rng.randint(2, 3)), key=WEEKDAYS.index)
        return [slot(d, "19:00", "21:00") for d in days] + [slot("sat", "09:00", "12:00")]
    if template == "clinic":
        days = sorted(rng.sample(WEEKDAYS, 2), key=WEEKDAYS.index)
        return [slot(d, "14:00", "17:30") for d in days]
    if template == "daytime":
        days = sorted(rng.sample(WEEKDAYS, rng.randint(2, 4)), key=WEEKDAYS.index)
        return [slot(d, "08:30", "11:30") for d in days] + [slot(d, "14:00", "17:00") for d in days[:1]]
    if template == "full_time":
        week = [slot(d, "08:30", "12:00") for d in WEEKDAYS] + [slot(d, "14:00", "17:30") for d in WEEKDAYS]
        return week + ([slot("sat", "09:00", "12:00")] if rng.random() < 0.5 else [])
    if template == "shifts":
        days = sorted(rng.sample(WEEKDAYS + ("sat", "sun"), 3), key=(WEEKDAYS + ("sat", "sun")).index)
        return [slot(d, "09:00", "17:00") for d in days]
    raise ValueError(f"unknown availability template {template!r}")


def weighted(rng: random.Random, table: dict) -> str:
    return rng.choices(list(table), weights=list(table.values()))[0]


def counsellor(seq: int, rng: random.Random) -> dict:
    occupation = rng.choices(list(OCCUPATIONS), weights=[o["weight"] for o in OCCUPATIONS.values()])[0]
    spec = OCCUPATIONS[occupation]
    gender = "female" if rng.random() < spec["female"] else "male"
    township_code = rng.choices([t[0] for t in TOWNSHIPS], weights=TOWNSHIP_WEIGHTS)[0]
    specialities = set(rng.sample(spec["specs"], rng.randint(1, min(2, len(spec["specs"])))))
    specialities.update(rng.sample(SPECIALITIES, rng.choice((0, 0, 1, 2))))
    callout = rng.random() < spec["callout"]
    villages = sorted({f"{township_code}-{rng.randint(1, VILLAGES_PER_TOWNSHIP):03d}"
                       for _ in range(rng.choice((0, 1, 1, 2, 3)))})
    persons = [hashlib.sha256(f"sample-recusal-{seq}-{i}".encode()).hexdigest()
               for i in range(rng.choice((0, 0, 0, 1, 2)))]
    given_chars = GIVEN[gender]
    given = "".join(rng.choice(given_chars) for _ in range(rng.choice((1, 2, 2))))
    return {
        "id": f"PC-{seq:04d}",
        "name": rng.choice(SURNAMES) + given,
        "gender": gender,
        "birth_year": REFERENCE_YEAR - rng.randint(*spec["ages"]),
        "occupation": occupation,
        "specialities": sorted(specialities, key=SPECIALITIES.index),
        "certification": weighted(rng, spec["certs"]),
        "township_code": township_code,
        "phone": f"100{rng.randint(0, 99_999_999):08d}",
        "weekly_capacity": rng.randint(*spec["capacity"]),
        "availability": {
            "slots": slots_for(spec["template"], rng),
            "urgent_callout": callout,
            "callout_response_minutes": rng.choice((30, 45, 60, 90)) if callout else None,
            "away_until": None,
        },
        "recusal": {"villages": villages, "persons": persons},
        "active": rng.random() >= INACTIVE_SHARE,
    }


def generate(seed: int = SEED, size: int = POOL_SIZE) -> dict:
    rng = random.Random(seed)
    return {
        "about": ("SAMPLE DATA: invented counsellors for development and demos. No record describes "
                  "a real person; phone numbers use the unassigned 100 prefix. See README.md."),
        "generated_by": "services/psych/reference/generate.py",
        "seed": seed,
        "reference_year": REFERENCE_YEAR,
        "townships": [{"code": c, "name": n, "kind": k, "lat": lat, "lon": lon} for c, n, k, lat, lon in TOWNSHIPS],
        "counsellors": [counsellor(seq, rng) for seq in range(1, size + 1)],
    }


def render(document: dict) -> str:
    """Pretty JSON with one township or counsellor per line, so diffs stay readable."""
    def one_line(value) -> str:
        return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))

    head = {k: v for k, v in document.items() if k not in ("townships", "counsellors")}
    lines = ["{"] + [f" {one_line(k)}: {one_line(v)}," for k, v in head.items()]
    for key in ("townships", "counsellors"):
        rows = [f"  {one_line(row)}" for row in document[key]]
        lines += [f" {one_line(key)}: [", ",\n".join(rows), " ]" + ("," if key == "townships" else "")]
    return "\n".join(lines + ["}"]) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="compare with the shipped file instead of writing it")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        same = OUTPUT.exists() and OUTPUT.read_text(encoding="utf-8") == text
        print("counsellors.json is up to date" if same else "counsellors.json differs from the generator output")
        return 0 if same else 1
    OUTPUT.write_text(text, encoding="utf-8")
    print(f"wrote {OUTPUT} ({POOL_SIZE} sample counsellors)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
