"""Generate Lanling's SAMPLE directory into reference/data/ (see README.md).

The 18 townships and streets are real and public; everything below them (work areas,
villages, grids, people, phones) is invented from a fixed seed, to the published figures
of the Lanling model. Running it again gives byte-identical files, so the data can be
committed and reviewed like code:

    python -m services.routing.reference.generate           # rewrite data/
    python -m services.routing.reference.generate --check   # exit 1 if data/ is stale

Only `random.Random.random()` is used (never choice/shuffle/randrange), because its
output for a given seed is stable across Python versions while the helpers are not.
"""
from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path
from random import Random

from services.routing.roster import username_of

SEED = 371324
DIVISION = "371324"
DATA_DIR = Path(__file__).resolve().parent / "data"
KM_PER_DEGREE_LAT = 111.0
COUNTY_AREA_KM2 = 1724
WORK_AREA_RADIUS_KM = 2.5  # the model's service radius of a 网格化管理服务室

# name, kind, approximate centre (lat, lon), work areas, villages, grids, township mediators.
# Centres are hand-placed to the townships' rough positions for distance only; they are not
# survey data. Counts sum to the model's 161 work areas and 1,229 grids and to the 1,024
# administrative villages of the 2012 figure.
TOWNSHIPS = (
    ("卞庄街道", "街道", 34.857, 118.058, 12, 72, 130, 7),
    ("苍山街道", "街道", 34.830, 118.020, 10, 60, 96, 7),
    ("兰陵镇", "镇", 34.735, 117.998, 10, 68, 80, 7),
    ("大仲村镇", "镇", 34.950, 118.010, 9, 58, 64, 7),
    ("尚岩镇", "镇", 35.030, 117.880, 9, 54, 60, 6),
    ("磨山镇", "镇", 34.920, 117.890, 8, 50, 55, 6),
    ("矿坑镇", "镇", 34.720, 117.870, 9, 56, 62, 6),
    ("新兴镇", "镇", 34.780, 118.120, 9, 56, 65, 7),
    ("南桥镇", "镇", 34.700, 118.110, 9, 58, 67, 7),
    ("金岭镇", "镇", 34.850, 117.930, 8, 50, 55, 6),
    ("芦柞镇", "镇", 34.920, 118.130, 9, 55, 61, 6),
    ("庄坞镇", "镇", 34.640, 118.000, 9, 61, 71, 7),
    ("鲁城镇", "镇", 34.620, 118.120, 8, 52, 57, 6),
    ("向城镇", "镇", 34.780, 117.900, 9, 63, 73, 7),
    ("神山镇", "镇", 35.070, 118.020, 9, 56, 62, 6),
    ("长城镇", "镇", 34.820, 118.210, 9, 57, 64, 7),
    ("车辋镇", "镇", 34.990, 118.150, 8, 52, 57, 6),
    ("下村乡", "乡", 35.010, 117.960, 7, 46, 50, 6),
)
# 社区 among the villages of the two streets (the rest of a street is still rural).
STREET_COMMUNITIES = {"卞庄街道": 22, "苍山街道": 14}
# Short names that would be ambiguous as aliases: 兰陵 and 苍山 name the county (苍山县
# until 2014), so "兰陵" must not silently mean 兰陵镇 nor "苍山" 苍山街道.
NOT_ALIASES = {"兰陵", "苍山"}

# The county centre: 11 comprehensive rooms (the first is 老苗调解工作室, the studio the
# app's 老苗调解 section asks for) and 5 professional rooms. Seats per room total 41.
COMPREHENSIVE_ROOMS = (("老苗调解工作室", 3),) + tuple(
    (f"第{numeral}综合调解室", 3 if index < 3 else 2) for index, numeral in enumerate("一二三四五六七八九十")
)
PROFESSIONAL_ROOMS = (
    ("婚姻家庭调解室", ("婚姻家庭",)),
    ("医疗纠纷调解室", ("医疗纠纷",)),
    ("交通事故调解室", ("交通事故", "人身损害")),
    ("劳动争议调解室", ("劳动争议",)),
    ("物业消费纠纷调解室", ("物业纠纷", "消费纠纷")),
)
PROFESSIONAL_ROOM_SEATS = 3
# 连锁: room number guiding township number (1-based, TOWNSHIPS order); every room guides
# one township, rooms 3 and 4 (three seats each) also guide the last two.
GUIDANCE = {t: t for t in range(1, 17)} | {17: 3, 18: 4}

GENERAL_TYPES = ("婚姻家庭", "邻里纠纷", "土地山林", "合同债务", "人身损害")
DISPUTE_ORDER = (
    "婚姻家庭", "邻里纠纷", "土地山林", "合同债务", "劳动争议", "医疗纠纷", "交通事故",
    "物业纠纷", "消费纠纷", "征地拆迁", "环境污染", "人身损害", "城市管理", "其他",
)

# code suffix, name, kind, owned dispute types (lead), co-handled types (joint cases),
# first-level gov categories it answers for when a complaint is not a dispute.
UNITS = (
    ("MEDIATION-CENTRE", "县人民调解中心", "centre",
     ("婚姻家庭", "邻里纠纷", "合同债务", "人身损害", "其他"), (), ()),
    ("MEDICAL-COMMITTEE", "县医疗纠纷人民调解委员会", "committee", ("医疗纠纷",), (), ()),
    ("TRAFFIC-COMMITTEE", "县道路交通事故人民调解委员会", "committee", ("交通事故",), (), ()),
    ("LABOUR-ARBITRATION", "县劳动人事争议仲裁院", "committee", ("劳动争议",), (), ()),
    ("NATURAL-RESOURCES", "县自然资源局", "department", ("土地山林", "征地拆迁"), (), ("国土资源",)),
    ("HOUSING", "县住房和城乡建设局", "department", ("物业纠纷",), ("征地拆迁",), ("城乡建设",)),
    ("MARKET", "县市场监督管理局", "department", ("消费纠纷",), (), ("商贸旅游",)),
    ("ECOLOGY", "临沂市生态环境局兰陵县分局", "department", ("环境污染",), (), ("环境保护",)),
    ("URBAN-ADMIN", "县综合行政执法局", "department", ("城市管理",), ("物业纠纷",), ()),
    ("AGRICULTURE", "县农业农村局", "department", (), ("土地山林",), ("农村农业",)),
    ("HEALTH", "县卫生健康局", "department", (), ("医疗纠纷",), ("卫生计生",)),
    ("HRSS", "县人力资源和社会保障局", "department", (), ("劳动争议",), ("劳动和社会保障",)),
    ("PUBLIC-SECURITY", "县公安局", "judicial", (), ("交通事故", "人身损害"), ("政法",)),
    ("COURT", "县人民法院", "judicial", (), ("合同债务",), ()),
    ("PROCURATORATE", "县人民检察院", "judicial", (), (), ()),
    ("PETITION", "县信访局", "department", (), (), ()),
    ("JUSTICE", "县司法局", "department", (), (), ()),
    ("WOMENS-FEDERATION", "县妇女联合会", "department", (), ("婚姻家庭",), ()),
    ("EDUCATION", "县教育和体育局", "department", (), (), ("教育文体",)),
    ("CIVIL-AFFAIRS", "县民政局", "department", (), (), ("民政",)),
    ("TRANSPORT", "县交通运输局", "department", (), (), ("交通运输",)),
    ("DEVELOPMENT", "县发展和改革局", "department", (), (), ("经济管理",)),
    ("INDUSTRY", "县工业和信息化局", "department", (), (), ("科技与信息产业",)),
    ("DISCIPLINE", "县纪委监委", "department", (), (), ("纪检监察",)),
    ("GOV-OFFICE", "县政府办公室(12345政务服务便民热线)", "department", (), (), ("党务政务",)),
)

SURNAMES = (
    ("王", 12), ("张", 10), ("李", 9), ("刘", 8), ("孙", 6), ("徐", 5), ("杨", 4), ("陈", 4),
    ("赵", 4), ("高", 3), ("魏", 3), ("朱", 3), ("宋", 3), ("马", 2), ("胡", 2), ("郭", 2),
    ("颜", 2), ("邵", 2), ("孟", 2), ("吕", 2), ("田", 2), ("于", 2), ("韩", 2), ("鲍", 1),
    ("褚", 1), ("房", 1), ("管", 1), ("卢", 1), ("蔡", 1), ("彭", 1), ("程", 1), ("侯", 1),
    ("姜", 1), ("丁", 1), ("袁", 1), ("薛", 1), ("武", 1), ("贾", 1), ("荀", 1), ("庞", 1),
)
MALE_CHARS = "建国华明军伟强磊勇斌涛峰刚林东海平成文志庆宝德振兴永立春长福新洪广连金玉传全宏彦鹏凯浩宇晨阳超帅博"
FEMALE_CHARS = "秀英兰芳红霞梅丽娟敏静燕艳玲萍翠凤云琴慧婷颖倩雪丹洁莉晶璐悦"
VILLAGE_PREFIXES = ("", "", "", "东", "西", "南", "北", "前", "后", "大", "小", "上", "下", "新", "老", "中")
VILLAGE_NATURE = "石柳杨槐枣桑杏沙泉河山岭龙凤马牛鹿黄白红青花桃梨竹松"
VILLAGE_FAMILY_SUFFIXES = ("庄", "家庄", "官庄", "家湖", "屯", "楼", "埠", "店", "集", "寨", "洼", "圩子")
VILLAGE_NATURE_SUFFIXES = ("山", "岭", "沟", "泉", "河", "湖", "埠", "庄", "林", "园", "峪", "涧", "坡", "口", "屯")
COMMUNITY_NAMES = (
    "文峰", "东关", "西关", "南关", "北关", "向阳", "和平", "建设", "振兴", "金桥", "凤凰", "新华",
    "育才", "长青", "惠民", "南苑", "北苑", "城北", "城南", "东城", "西城", "兴隆", "富民", "明珠",
    "锦绣", "会宝", "永安", "前进", "光明", "团结", "繁荣", "翠园", "丽景", "滨河", "中兴", "阳光",
    "幸福", "康乐", "安居", "和顺",
)
VILLAGE_ELDER_BACKGROUNDS = ("老党员", "老干部", "乡贤", "退休教师")
TOWNSHIP_PART_TIME_BACKGROUNDS = ("综治中心兼职调解员", "派出所兼职调解员", "人民法庭兼职调解员", "信访办兼职调解员")
COUNTY_INVITED_BACKGROUNDS = {
    "婚姻家庭调解室": "特邀调解员(妇联)",
    "医疗纠纷调解室": "特邀调解员(退休医师)",
    "交通事故调解室": "特邀调解员(律师)",
    "劳动争议调解室": "特邀调解员(退休仲裁员)",
    "物业消费纠纷调解室": "特邀调解员(律师)",
}
OCCASIONAL_TOWNSHIP_SPECIALTIES = ("劳动争议", "交通事故", "征地拆迁", "消费纠纷", "物业纠纷")

# Capacity: open cases a mediator can carry (full-time, part-time).
CAPACITY = {"county": (10, 5), "township": (8, 4), "village": (5, 3)}
VILLAGE_ELDER_SHARE = 0.3  # villages that also engaged a part-time 乡贤/老党员 mediator
COUNTY_SUPERVISORS = 3
LAO_MIAO = "苗振华"  # invented; the studio is named after the county's best-known mediator


class Seeded:
    """The few random helpers the generator needs, all built on `random()`."""

    def __init__(self, seed: int):
        self._rng = Random(seed)

    def below(self, n: int) -> int:
        return min(int(self._rng.random() * n), n - 1)

    def pick(self, items):
        return items[self.below(len(items))]

    def chance(self, p: float) -> bool:
        return self._rng.random() < p

    def weighted(self, pairs):
        total = sum(weight for _, weight in pairs)
        point = self._rng.random() * total
        for item, weight in pairs:
            point -= weight
            if point < 0:
                return item
        return pairs[-1][0]

    def sample(self, items, k: int) -> list:
        pool = list(items)
        chosen = []
        for _ in range(min(k, len(pool))):
            chosen.append(pool.pop(self.below(len(pool))))
        return chosen

    def point_near(self, lat: float, lon: float, radius_km: float) -> tuple[float, float]:
        """A uniform point in a disc, in a local flat approximation (fine at county scale)."""
        distance = radius_km * math.sqrt(self._rng.random())
        angle = 2 * math.pi * self._rng.random()
        dlat = distance * math.sin(angle) / KM_PER_DEGREE_LAT
        dlon = distance * math.cos(angle) / (KM_PER_DEGREE_LAT * math.cos(math.radians(lat)))
        return round(lat + dlat, 5), round(lon + dlon, 5)


class Names:
    """Invented personal names, unique across everyone in the sample."""

    def __init__(self, rng: Seeded):
        self.rng = rng
        self.used: set[str] = set()

    def reserve(self, name: str) -> str:
        self.used.add(name)
        return name

    def person(self) -> str:
        while True:
            chars = self.rng.pick((MALE_CHARS, FEMALE_CHARS))
            given = "".join(self.rng.pick(chars) for _ in range(1 if self.rng.chance(0.3) else 2))
            name = self.rng.weighted(SURNAMES) + given
            if name not in self.used and given[:1] != given[1:]:
                self.used.add(name)
                return name


class Places:
    """Invented village and community names, unique across the county."""

    def __init__(self, rng: Seeded):
        self.rng = rng
        self.used: set[str] = set()
        self.communities = list(COMMUNITY_NAMES)

    def village(self) -> str:
        while True:
            if self.rng.chance(0.6):
                core = self.rng.weighted(SURNAMES) + self.rng.pick(VILLAGE_FAMILY_SUFFIXES)
            else:
                core = self.rng.pick(VILLAGE_NATURE) + self.rng.pick(VILLAGE_NATURE_SUFFIXES)
            name = self.rng.pick(VILLAGE_PREFIXES) + core + "村"
            if name not in self.used:
                self.used.add(name)
                return name

    def community(self) -> str:
        name = self.communities.pop(self.rng.below(len(self.communities))) + "社区"
        self.used.add(name)
        return name


def township_code(number: int) -> str:
    return f"{DIVISION}-{number:03d}"


def short_name(name: str) -> str:
    for suffix in ("街道", "镇", "乡"):
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def aliases(name: str, kind: str) -> list[str]:
    short = short_name(name)
    candidates = [short, f"{name}办事处" if kind == "街道" else f"{name}人民政府"]
    return [alias for alias in candidates if alias not in NOT_ALIASES and alias != name]


def split(total: int, parts: int, rng: Seeded, minimum: int) -> list[int]:
    """`total` as `parts` sizes, each at least `minimum`, roughly even with some spread."""
    sizes = [total // parts + (1 if i < total % parts else 0) for i in range(parts)]
    for _ in range(parts):
        giver, taker = rng.below(parts), rng.below(parts)
        if giver != taker and sizes[giver] > minimum:
            sizes[giver] -= 1
            sizes[taker] += 1
    return sizes


def build() -> dict[str, list[dict] | dict]:
    """Every record of the sample directory, by file stem."""
    check_figures()
    rng = Seeded(SEED)
    names = Names(rng)
    places = Places(rng)
    townships, work_areas, villages, grids, grid_workers = [], [], [], [], []
    villages_by_township: dict[str, list[dict]] = {}
    villages_by_work_area: dict[str, list[dict]] = {}

    for number, (name, kind, lat, lon, area_count, village_count, grid_count, _) in enumerate(TOWNSHIPS, 1):
        code = township_code(number)
        townships.append({"code": code, "name": name, "kind": kind, "aliases": aliases(name, kind),
                          "lat": lat, "lon": lon})
        radius = math.sqrt(COUNTY_AREA_KM2 * village_count / 1024 / math.pi)
        community_quota = STREET_COMMUNITIES.get(name, 0)
        village_number = 0
        township_villages = []
        for area_number, size in enumerate(split(village_count, area_count, rng, minimum=3), 1):
            area_lat, area_lon = rng.point_near(lat, lon, max(radius - WORK_AREA_RADIUS_KM, 1.0))
            area_code = f"{code}-W{area_number:02d}"
            area_villages = []
            for _ in range(size):
                village_number += 1
                is_community = village_number <= community_quota
                village_lat, village_lon = rng.point_near(area_lat, area_lon, WORK_AREA_RADIUS_KM)
                village = {
                    "code": f"{code}-{village_number:03d}",
                    "name": places.community() if is_community else places.village(),
                    "kind": "社区" if is_community else "村",
                    "township": code, "work_area": area_code, "lat": village_lat, "lon": village_lon,
                }
                area_villages.append(village)
            first = area_villages[0]["name"]
            work_areas.append({"code": area_code, "name": first[:-2 if first.endswith("社区") else -1] + "片区",
                               "township": code, "lat": area_lat, "lon": area_lon})
            villages_by_work_area[area_code] = area_villages
            township_villages += area_villages
        villages += township_villages
        villages_by_township[code] = township_villages

        grid_counts = {village["code"]: 1 for village in township_villages}
        weights = [(village["code"], 6 if village["kind"] == "社区" else 1) for village in township_villages]
        for _ in range(grid_count - village_count):
            village_code = rng.weighted(weights)
            grid_counts[village_code] += 1
        for village in township_villages:
            for grid_number in range(1, grid_counts[village["code"]] + 1):
                grid_code = f"{village['code']}-{grid_number:02d}"
                worker_id = "GW-" + grid_code[len(DIVISION) + 1:]
                grids.append({"code": grid_code, "name": f"{village['name']}第{grid_number}网格",
                              "village": village["code"], "township": code, "grid_worker": worker_id})
                grid_workers.append({"id": worker_id, "name": names.person(),
                                     "phone": f"1390000{len(grid_workers) + 1:04d}",
                                     "grid": grid_code, "village": village["code"], "township": code,
                                     "active": True})

    centres, rooms, mediators = build_centres_and_mediators(
        rng, names, townships, villages, villages_by_township, villages_by_work_area)
    units = [
        {"code": f"U-{suffix}", "name": name, "kind": kind, "dispute_types": sort_types(owns),
         "co_handles": sort_types(co), "gov_categories": list(categories), "phone": f"0539-00{n:05d}"}
        for n, (suffix, name, kind, owns, co, categories) in enumerate(UNITS, 1)
    ]
    staff = build_staff(names, townships, centres, units)
    accounts = build_accounts(mediators, grid_workers, staff)
    records = {
        "townships": townships, "work_areas": work_areas, "villages": villages, "grids": grids,
        "centres": centres, "rooms": rooms, "units": units, "mediators": mediators,
        "grid_workers": grid_workers, "staff": staff, "accounts": accounts,
    }
    records["manifest"] = {
        "sample": True,
        "seed": SEED,
        "generator": "services/routing/reference/generate.py",
        "counts": {stem: len(rows) for stem, rows in records.items()},
    }
    return records


def build_centres_and_mediators(rng, names, townships, villages, villages_by_township, villages_by_work_area):
    county_lat, county_lon = townships[0]["lat"], townships[0]["lon"]  # the county seat, 卞庄
    county_centre = f"{DIVISION}-TJ"
    centres = [{"code": county_centre, "name": "兰陵县人民调解中心", "level": "county", "township": None,
                "lat": county_lat, "lon": county_lon, "phone": "0539-0010000"}]
    for number, township in enumerate(townships, 1):
        centres.append({"code": f"{township['code']}-TJ", "name": f"{township['name']}人民调解中心",
                        "level": "township", "township": township["code"],
                        "lat": township["lat"], "lon": township["lon"], "phone": f"0539-00{10000 + number:05d}"})

    room_specs = [(name, "comprehensive", seats, ()) for name, seats in COMPREHENSIVE_ROOMS]
    room_specs += [(name, "professional", PROFESSIONAL_ROOM_SEATS, types) for name, types in PROFESSIONAL_ROOMS]
    guided: dict[int, list[str]] = {}
    for township_number, room_number in GUIDANCE.items():
        guided.setdefault(room_number, []).append(township_code(township_number))

    phones = iter(f"1380000{serial:04d}" for serial in range(1, 10_000))
    rooms, mediators = [], []
    for room_number, (room_name, kind, seats, types) in enumerate(room_specs, 1):
        room_code = f"{county_centre}-{room_number:02d}"
        room = {"code": room_code, "name": room_name, "kind": kind, "centre": county_centre,
                "specialties": list(types), "guides": sorted(guided[room_number]), "lead": None}
        for seat in range(1, seats + 1):
            invited = kind == "professional" and seat == seats
            is_lao_miao = room_number == 1 and seat == 1
            if types:
                specialties = list(types) + [rng.pick(GENERAL_TYPES)]
            elif is_lao_miao:
                specialties = ["邻里纠纷", "婚姻家庭", "土地山林", "合同债务"]
            else:
                specialties = rng.sample(GENERAL_TYPES, 2 + rng.below(2))
                if rng.chance(0.2):
                    specialties.append("征地拆迁")
            name = names.reserve(LAO_MIAO) if is_lao_miao else names.person()
            if is_lao_miao:
                background = "老苗调解工作室负责人"
            elif invited:
                background = COUNTY_INVITED_BACKGROUNDS[room_name]
            else:
                background = "县人民调解中心专职调解员"
            home = rng.pick(villages)
            mediators.append(mediator(
                f"MC-{room_number:02d}-{seat}", name, next(phones), "county", specialties, not invited,
                background, recusal(rng, home, villages_by_township[home["township"]]),
                centre=county_centre, room=room_code))
        room["lead"] = f"MC-{room_number:02d}-1"
        rooms.append(room)

    for number, (_, _, _, _, _, _, _, seats) in enumerate(TOWNSHIPS, 1):
        code = township_code(number)
        full_time = 4 if seats >= 7 else 3
        for seat in range(1, seats + 1):
            specialties = rng.sample(GENERAL_TYPES, 2 + rng.below(2))
            if rng.chance(0.25):
                specialties.append(rng.pick(OCCASIONAL_TOWNSHIP_SPECIALTIES))
            is_full_time = seat <= full_time
            background = "司法所专职调解员" if is_full_time else rng.pick(TOWNSHIP_PART_TIME_BACKGROUNDS)
            home = rng.pick(villages_by_township[code])
            mediators.append(mediator(
                f"MT-{number:03d}-{seat}", names.person(), next(phones), "township", specialties, is_full_time,
                background, recusal(rng, home, villages_by_township[code]), centre=f"{code}-TJ", township=code))

    for village in villages:
        neighbours = [v for v in villages_by_work_area[village["work_area"]] if v["code"] != village["code"]]
        seats = 2 if rng.chance(VILLAGE_ELDER_SHARE) else 1
        for seat in range(1, seats + 1):
            is_full_time = seat == 1
            specialties = ["邻里纠纷"] + rng.sample(("婚姻家庭", "土地山林", "合同债务", "人身损害"), 1 + rng.below(2))
            if not is_full_time:
                specialties = rng.sample(("邻里纠纷", "婚姻家庭", "土地山林"), 1 + rng.below(2))
            background = "村调委会主任" if is_full_time else rng.pick(VILLAGE_ELDER_BACKGROUNDS)
            # A village mediator serves their own village, so only relatives' villages are recused.
            relatives = [rng.pick(neighbours)["code"]] if neighbours and rng.chance(0.4) else []
            mediators.append(mediator(
                f"MV-{village['code'][len(DIVISION) + 1:]}-{seat}", names.person(), next(phones), "village",
                specialties, is_full_time, background, relatives,
                township=village["township"], village=village["code"]))
    return centres, rooms, mediators


def recusal(rng: Seeded, home: dict, same_township: list[dict]) -> list[str]:
    """The home village plus up to two relatives' villages, usually in the same township."""
    villages = {home["code"]}
    for _ in range(rng.below(3)):
        villages.add(rng.pick(same_township)["code"])
    return sorted(villages)


def mediator(identifier, name, phone, level, specialties, full_time, background, recusal_villages,
             *, centre=None, room=None, township=None, village=None) -> dict:
    return {
        "id": identifier, "name": name, "phone": phone, "level": level,
        "centre": centre, "room": room, "township": township, "village": village,
        "specialties": sort_types(specialties), "full_time": full_time,
        "capacity": CAPACITY[level][0 if full_time else 1],
        "recusal_villages": sorted(set(recusal_villages)), "background": background, "active": True,
    }


def build_staff(names, townships, centres, units) -> list[dict]:
    """Township heads, county supervisors, receptionists and unit liaisons, with invented contacts.

    Names are drawn in the order the accounts were first generated in (heads, supervisors,
    receptionists), so adding the liaisons changed nobody else's name."""
    county_centre = centres[0]["code"]
    streets = {township["code"] for township in townships if township["kind"] == "街道"}
    phones = iter(f"1370000{serial:04d}" for serial in range(1, 10_000))
    staff = []

    def add(identifier, role, *, centre=None, township=None, unit=None):
        staff.append({"id": identifier, "name": names.person(), "role": role, "phone": next(phones),
                      "email": f"{identifier.lower()}@lanling.example", "centre": centre, "township": township,
                      "unit": unit, "active": True})

    for number, township in enumerate(townships, 1):
        add(f"TH-{number:03d}", "township_head", centre=f"{township['code']}-TJ", township=township["code"])
    for number in range(1, COUNTY_SUPERVISORS + 1):
        add(f"CS-{number}", "county_supervisor", centre=county_centre)
    for centre in centres:
        desks = 2 if centre["level"] == "county" or centre["township"] in streets else 1
        suffix = "COUNTY" if centre["township"] is None else centre["township"][len(DIVISION) + 1:]
        for desk in range(1, desks + 1):
            add(f"RC-{suffix}-{desk}", "receptionist", centre=centre["code"], township=centre["township"])
    for unit in units:
        add(f"UL-{unit['code'][2:]}-1", "unit_liaison", unit=unit["code"])
    return staff


def build_accounts(mediators, grid_workers, staff) -> list[dict]:
    """Gateway identities for everyone who acts in the system; passwords are set at load time.

    `directory_id` is the person's directory id, except for a unit liaison: there it is the
    unit's code, because a 归口 case is held by the unit and whoever signs for the unit acts
    for it (mediation matches holders on directory ids)."""
    accounts = [account(m["id"].lower(), "mediator", m["id"], m["township"], m["name"]) for m in mediators]
    accounts += [account(w["id"].lower(), "grid_worker", w["id"], w["township"], w["name"]) for w in grid_workers]
    for person in staff:
        accounts.append(account(username_of(person), person["role"],
                                person["unit"] if person["role"] == "unit_liaison" else person["id"],
                                person["township"], person["name"]))
    return sorted(accounts, key=lambda a: a["username"])


def account(username, role, directory_id, township, display_name) -> dict:
    return {"username": username, "role": role, "directory_id": directory_id, "township": township,
            "display_name": display_name}


def sort_types(types) -> list[str]:
    return sorted(set(types), key=DISPUTE_ORDER.index)


def check_figures() -> None:
    """The published figures the tables above must add up to."""
    assert len(TOWNSHIPS) == 18
    assert sum(t[4] for t in TOWNSHIPS) == 161, "work areas"
    assert sum(t[5] for t in TOWNSHIPS) == 1024, "villages"
    assert sum(t[6] for t in TOWNSHIPS) == 1229, "grids"
    assert sum(t[7] for t in TOWNSHIPS) == 117 and min(t[7] for t in TOWNSHIPS) >= 6, "township mediators"
    assert len(COMPREHENSIVE_ROOMS) == 11 and len(PROFESSIONAL_ROOMS) == 5
    assert sum(s for _, s in COMPREHENSIVE_ROOMS) + PROFESSIONAL_ROOM_SEATS * len(PROFESSIONAL_ROOMS) == 41
    assert sorted(GUIDANCE) == list(range(1, 19)) and set(GUIDANCE.values()) == set(range(1, 17))


def render(records) -> dict[str, str]:
    """File name -> text. One record per line, keys in a fixed order: small, reviewable diffs."""
    files = {}
    for stem, rows in records.items():
        if isinstance(rows, dict):
            files[f"{stem}.json"] = json.dumps(rows, ensure_ascii=False, indent=2) + "\n"
        else:
            lines = ",\n".join("  " + json.dumps(row, ensure_ascii=False) for row in rows)
            files[f"{stem}.json"] = "[\n" + lines + "\n]\n"
    return files


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DATA_DIR)
    parser.add_argument("--check", action="store_true", help="compare with the files in --out; change nothing")
    args = parser.parse_args(argv)
    files = render(build())
    if args.check:
        stale = [name for name, text in files.items()
                 if not (args.out / name).exists() or (args.out / name).read_text(encoding="utf-8") != text]
        for name in stale:
            print(f"stale: {args.out / name}", file=sys.stderr)
        return 1 if stale else 0
    args.out.mkdir(parents=True, exist_ok=True)
    for name, text in files.items():
        (args.out / name).write_text(text, encoding="utf-8")
    print(f"wrote {len(files)} files to {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
