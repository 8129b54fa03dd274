"""Realistic synthetic disputes and submissions, for `lanling demo` and the merge benchmark.

A `Dispute` is one real-world conflict: its kind, place, people and the particulars that
make it this dispute (an amount, a company, a distance). `Generator.report(dispute, channel)`
writes it up as that channel's source system would, each time in other words, so repeats
of one dispute through several channels look the way they do in Lanling: the same facts,
different wording, sometimes another person reporting. All names are invented; phones are
in the fake ranges 1370000xxxx-1390000xxxx.

Pure: no I/O. Places come from the directory snapshot (routing's `places_snapshot()`).
"""
from __future__ import annotations

import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段雷钱汤尹黎易常武乔贺赖龚文"
GIVEN = "秀英桂兰玉兰淑珍凤英建国建华志强永强国强海燕丽娟红梅春梅春生德胜长河传军宝山明亮志刚卫东庆华玉芳秀兰金凤爱民立新振华成才广富"
SYLLABLES = "鑫隆盛兴泰昌恒达宏远金源华瑞丰祥富顺佳和润泽鸿运聚宝永安嘉禾天成新月宝丰锦程汇通晟安"
SITE_KINDS = ("花园", "家园", "小区", "建材厂", "板材厂", "养殖场", "砂场", "工地", "超市", "饭店")
COMPANY_KINDS = ("建筑公司", "劳务公司", "置业公司", "食品公司", "木业公司", "物流公司")
DIRECTIONS = ("东", "西", "南", "北")
HOSPITALS = ("县人民医院", "县中医医院", "县第二人民医院", "卞庄街道卫生院", "向城镇卫生院", "长城镇卫生院", "县妇幼保健院",
             "鲁南医院", "兰陵仁和医院", "苍山康复医院")


@dataclass
class Dispute:
    """One conflict in the world; the same one however many times it is reported."""

    id: int
    kind: str
    township: dict                       # {code, name}
    village: dict | None                 # {code, name, township}
    grid: dict | None                    # {code, village, township}
    applicant: tuple[str, str]           # (name, phone)
    respondent: str
    slots: dict
    urgent: bool = False
    family: list[tuple[str, str]] = field(default_factory=list)  # others who may report it
    details: list[str] = field(default_factory=list)  # the particulars its reports mention


# kind -> (weight, facts, details). A report is an opening, one way of stating the fact,
# often one particular (an amount, a size, a name), what was tried, what is asked, a closing:
# repeats of one dispute share its facts and particulars, never their wording.
# Slots: {v} village, {a} applicant, {r} respondent (full name or 某), {n} {m} numbers,
# {d} a direction, {site} an estate or works, {company} a company.
KINDS: dict[str, tuple[int, list[str], list[str]]] = {
    "homestead": (12, [
        "邻居{r}翻盖房子时把院墙往我家这边挪了，占了我家宅基地",
        "与邻居{r}因宅基地界墙发生争执，对方新砌的院墙越界",
        "我家和{r}家宅基地交界处，他家砌墙占了我家的地方",
        "{r}家垒墙侵占我家宅基地",
        "{r}盖新房把墙根打到了我家房基地上",
    ], ["越界{n}公分", "占了大概{n}公分宽", "墙往我家这边挪了{n}公分", "两家的地界差了{n}公分"]),
    "land": (8, [
        "我家的承包地被{r}强行耕种",
        "承包的责任田被{r}占种，双方对地界说法不一",
        "{r}占种我家的口粮田已经两季了",
        "{r}家说早年换过地，把我家承包地种上了",
    ], ["一共{n}亩", "有{n}亩地", "拿不出任何换地手续", "占了{n}亩"]),
    "wages": (12, [
        "在{company}的工地干活，包工头{r}拖欠工资",
        "{company}项目部欠农民工工资，老板{r}一直推脱",
        "给{company}干了大半年，工钱一分没结",
        "{company}拖欠我们的劳务费，多次讨要未果",
        "{company}承建的工程完工了，包工头{r}拿不出工钱",
    ], ["涉及{n}个工人", "一共{m}万元", "欠{m}万元", "我们{n}个人的工钱", "快过年了还不给"]),
    "noise": (6, [
        "{site}门口每天晚上跳广场舞，音响声音太大",
        "{site}附近晚上音响噪音很大，老人孩子休息不了",
        "晚上在{site}楼下放音响，严重扰民",
        "{site}旁边的广场晚上太吵了",
    ], ["十点以后还在跳", "一直闹到十一点", "沟通了好几次没用", "孩子没法写作业"]),
    "farm": (6, [
        "村{d}头{r}的养猪场猪粪直接排到沟里",
        "{d}边的养猪场粪水外排，污染了旁边的水沟",
        "{r}家养猪场离村子太近，猪粪污水乱排",
        "养猪场臭气熏天，粪污流进村里的河沟",
    ], ["离村子不到{n}米", "夏天根本不敢开窗", "气味刺鼻", "{r}也不整改"]),
    "support": (7, [
        "{a}的子女{r}等人都不管老人，不给生活费",
        "儿子{r}拒不履行赡养义务，老人{a}生活困难",
        "{r}兄妹几个互相推诿谁也不赡养老人{a}",
        "老人{a}没人赡养，儿子{r}不管，一个人住在破屋里",
    ], ["老人今年{n}岁了", "也不让老人住老宅", "{r}说他不管", "几个子女互相推"]),
    "loan": (6, [
        "{r}借了我的钱到期不还",
        "{r}借款至今未还，多次催要无果",
        "借给{r}的钱要了几年都没要回来",
        "{r}打了借条，钱一直不还",
    ], ["借款{m}万元", "一共{m}万元", "前年借的", "现在电话也不接", "他家明明盖了新房"]),
    "traffic": (5, [
        "我骑电动车被{r}开的货车撞伤",
        "在村路上被{r}驾驶的车辆撞倒",
        "交通事故已经认定对方{r}全责",
        "被{r}的车撞了以后对方不管了",
    ], ["腿骨折住院", "医药费{m}万元", "花了{m}万元", "对方只给了一点钱"]),
    "property": (6, [
        "{site}的电梯坏了没人修",
        "{site}的电梯经常困人，物业不维修",
        "{site}物业乱收停车费，电梯故障也不修",
        "{site}物业公司收了物业费却不作为",
    ], ["坏了{n}天", "老人上下楼很困难", "业主和物业矛盾很大", "{n}号楼的电梯"]),
    "acquisition": (5, [
        "修{d}边那条路征了我家的地，说好的补偿款没发到手",
        "{v}的征地补偿款去向不明，村会计{r}不公布账目",
        "{d}坡那片地征地时少算了我家的，补偿款不对",
        "{d}坡征地补偿款拨到村里了一直没发到户，{r}说还没批",
    ], ["{n}亩地", "补偿款{m}万元", "差了{m}万元", "涉及{n}户"]),
    "water": (4, [
        "自来水管坏了没人修，一直停水",
        "村里自来水三天两头停水",
        "供水管道破裂，全村停水",
        "吃水成了大问题，水管好几天不来水",
    ], ["已经停了{n}天", "只能到别处挑水", "老人孩子吃水困难", "供水站说没钱修"]),
    "road": (4, [
        "通往{d}边的村路被{site}拉砂石的大车压坏了",
        "{r}的砂场运砂车超载，把村{d}的水泥路压坏了",
        "村{d}的生产路被{site}的大货车压坏了",
        "{site}的大车天天跑，村{d}那段路坑坑洼洼",
    ], ["{n}多米长", "下雨天根本走不了", "尘土飞扬", "孩子上学不安全"]),
    "medical": (3, [
        "我父亲{r}在{hospital}做手术后感染，医院不承认有责任",
        "家属{r}在{hospital}术后出现并发症，认为医院存在过错",
        "{r}在{hospital}治疗时被误诊，耽误了病情",
    ], ["又花了{m}万元", "住院{n}天", "要求赔偿{m}万元", "医院推卸责任"]),
    "prepaid": (4, [
        "在{site}旁的{gym}健身房办了年卡，现在关门了",
        "{gym}健身房突然闭店，会员预付卡里的钱退不了",
        "{gym}健身房老板{r}卷钱跑路了",
        "办卡的{gym}健身房人去楼空，联系不上老板{r}",
    ], ["交了{n}百元", "{n}多名会员", "卡里还剩{n}百元", "要求退款"]),
    "drainage": (4, [
        "邻居{r}家新盖的房子房檐滴水直接滴到我家院里",
        "{r}家排水沟改道，雨水全倒灌进我家院子",
        "邻居家屋檐滴水和雨水管都冲着我家墙根",
        "{r}家的排水管对着我家，一下雨就积水",
    ], ["墙都泡坏了", "院子里积水{n}公分深", "说了也不改", "下雨就淹"]),
    "inheritance": (4, [
        "父母去世后留下的老宅，兄弟{r}一个人占着不让分",
        "与兄弟{r}因分家析产、老宅继承发生纠纷",
        "老人留下的老屋，几个子女为继承吵翻了，{r}占着不让",
    ], ["{n}间老屋", "{r}不让别人进门", "协商多次未果", "要求分割遗产"]),
    "subsidy": (2, [
        "{a}家里符合低保条件，申请了没批下来，{r}说名额满了",
        "{a}家庭困难申请低保未获批准，怀疑村里{r}评定不公平",
        "我家{a}残疾多年，申请低保{v}一直不给批",
    ], ["申请了{n}次", "村里说名额满了", "别人家条件好的都有"]),
    "grave": (2, [
        "{r}家在我家承包地边上埋坟，坟占了我家的地",
        "{r}在我家责任田里新埋了坟",
    ], ["让他迁坟他不同意", "占了{n}平方", "双方吵了起来"]),
}
HISTORY = ("找村里调解了两次没用", "村委会也没处理好", "多次协商未果", "找过镇里，一直没结果", "",
           "沟通了好几次", "", "")
DEMANDS = ("请求调解", "希望尽快解决", "要求对方赔偿", "请帮忙协调", "", "请依法处理", "")
URGENT_ENDINGS = (
    "他今天又拿着刀在我家门口骂，说要砍死我们，快来人！",
    "再不解决我就喝农药死给你们看。",
    "现在两家正在打起来了，有人受伤，赶紧派人来！",
)
OPENINGS = {
    "hotline": ("来电人反映：", "市民来电：", "来电人称，", ""),
    "petition": ("", "信访人反映：", "我是{v}村民，", ""),
    "opinion": ("有网友发帖称，", "网帖反映：", "网友爆料，"),
    "app": ("", "", "求助："),
    "grid": ("网格员日常巡查发现，", "网格员走访了解到，", "本网格内"),
    "walkin": ("来访人反映：", "", "来访人称，"),
}
CLOSINGS = {
    "hotline": ("要求相关部门协调处理。", "请求处理。", ""),
    "petition": ("请求上级主持公道。", "恳请领导重视。", "请求依法处理。"),
    "opinion": ("网友呼吁有关部门尽快介入。", "帖子引起不少网友关注。", ""),
    "app": ("希望政府管一管。", "谁来管管？", ""),
    "grid": ("现场调解未果，现上报。", "双方意见分歧较大，现上报。"),
    "walkin": ("请求调解中心调解。", "", "希望尽快调解。"),
}


def _name(rng: random.Random) -> str:
    return rng.choice(SURNAMES) + rng.choice(GIVEN[::2]) + (rng.choice(GIVEN[1::2]) if rng.random() < 0.7 else "")


def _phone(rng: random.Random) -> str:
    return f"13{rng.choice('789')}0000{rng.randrange(10000):04d}"


def _word(rng: random.Random) -> str:
    return rng.choice(SYLLABLES) + rng.choice(SYLLABLES)


class Generator:
    """Disputes spread over the county's townships and villages, and their reports."""

    def __init__(self, places: dict, seed: int = 7, tag: str = ""):
        self.rng = random.Random(seed)
        self.tag = tag  # keeps references of two generators apart
        self.townships = [t for t in places["townships"]]
        self.villages_of: dict[str, list[dict]] = {}
        for village in places.get("villages", ()):
            self.villages_of.setdefault(village["township"], []).append(village)
        self.grids_of: dict[str, list[dict]] = {}
        for grid in places.get("grids", ()):
            self.grids_of.setdefault(grid["village"], []).append(grid)
        self.kinds = list(KINDS)
        self.kind_weights = [KINDS[k][0] for k in self.kinds]
        self._next_id = 0
        self._serial = 0

    # -- disputes -------------------------------------------------------------
    def dispute(self, urgent_rate: float = 0.01) -> Dispute:
        rng = self.rng
        township = rng.choice(self.townships)
        villages = self.villages_of.get(township["code"]) or [None]
        village = rng.choice(villages)
        grids = self.grids_of.get(village["code"], []) if village else []
        self._next_id += 1
        kind = rng.choices(self.kinds, self.kind_weights)[0]
        surname = rng.choice(SURNAMES)
        slots = {
            "n": rng.randint(2, 90),
            "m": round(rng.uniform(0.8, 60), 1),
            "d": rng.choice(DIRECTIONS),
            "site": _word(rng) + rng.choice(SITE_KINDS),
            "company": _word(rng) + rng.choice(COMPANY_KINDS),
            "hospital": rng.choice(HOSPITALS),
            "gym": _word(rng),
        }
        applicant = (surname + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2]), _phone(rng))
        family = [(surname + rng.choice(GIVEN[::2]) + rng.choice(GIVEN[1::2]), _phone(rng)) for _ in range(2)]
        details = rng.sample(KINDS[kind][2], k=min(2, len(KINDS[kind][2])))
        return Dispute(self._next_id, kind, township, village, rng.choice(grids) if grids else None, applicant,
                       _name(rng), slots, urgent=rng.random() < urgent_rate, family=family, details=details)

    # -- reports --------------------------------------------------------------
    def text(self, dispute: Dispute, channel: str, variant: int | None = None) -> str:
        rng = self.rng
        _, facts, _ = KINDS[dispute.kind]
        fact = facts[variant % len(facts)] if variant is not None else rng.choice(facts)
        village = dispute.village["name"] if dispute.village else dispute.township["name"]
        named = rng.random() < 0.6
        respondent = dispute.respondent if named else dispute.respondent[0] + "某"
        values = {**dispute.slots, "v": village, "a": dispute.applicant[0], "r": respondent}
        parts = [fact.format(**values)]
        for detail in rng.sample(dispute.details, k=min(len(dispute.details), rng.choice((0, 1, 1, 2)))):
            parts.append(detail.format(**values))
        parts += [rng.choice(HISTORY), rng.choice(DEMANDS)]
        body = "，".join(p for p in parts if p) + "。"
        if rng.random() < 0.5:  # say where
            body = f"{village}{rng.choice(('', '村民', '的'))}{body}" if rng.random() < 0.5 else f"我是{village}的，{body}"
        opening = rng.choice(OPENINGS[channel]).format(v=village.removesuffix("村"))
        text = f"{opening}{body}{rng.choice(CLOSINGS[channel])}"
        if dispute.urgent:
            text += URGENT_ENDINGS[dispute.id % len(URGENT_ENDINGS)]
        return text

    def reporter(self, dispute: Dispute, first: bool) -> tuple[str, str]:
        """Who reports it: the applicant, or (for a repeat) sometimes a family member."""
        if first or self.rng.random() < 0.7:
            return dispute.applicant
        return self.rng.choice(dispute.family)

    def submission(self, dispute: Dispute, channel: str, at: datetime, *, first: bool = True,
                   variant: int | None = None) -> dict:
        """A channel's payload reporting the dispute, received at `at`."""
        self._serial += 1
        serial = f"{self.tag}{at.astimezone(timezone(timedelta(hours=8))):%Y%m%d}{self._serial:07d}"
        rng = self.rng
        name, phone = self.reporter(dispute, first)
        text = self.text(dispute, channel, variant)
        township = dispute.township["name"] if rng.random() < 0.7 else dispute.township["code"]
        village = dispute.village["name"] if dispute.village and rng.random() < 0.85 else None
        stamp = at.isoformat()
        optional = {"village": village} if village else {}
        if channel == "hotline":
            return {"order_no": f"GD{serial}", "caller_name": name, "caller_phone": phone, "received_at": stamp,
                    "content": text, "township": township, **optional}
        if channel == "petition":
            return {"petition_no": f"XF-{serial}", "petitioner_name": name, "petitioner_phone": phone,
                    "form": rng.choice(("letter", "visit", "online")), "received_at": stamp, "content": text,
                    "township": township, **optional}
        if channel == "opinion":
            return {"lead_id": f"YQ{serial}", "source_platform": rng.choice(("微博", "抖音", "本地论坛", "微信公众号")),
                    "url": f"https://example.org/post/{serial}", "published_at": stamp, "title": text[:24],
                    "summary": text, "township": dispute.township["name"],
                    **({"village": dispute.village["name"]} if dispute.village and rng.random() < 0.5 else {}),
                    "heat": round(rng.uniform(1, 500), 1)}
        if channel == "app":
            return {"post_id": f"APP{serial}", "user_id": f"u{phone[-8:]}", "phone": phone,
                    "section": rng.choice(("speak", "speak", "speak", "miao", "ask_gov")), "content": text,
                    "township": township, "posted_at": stamp, "real_name": name, **optional}
        if channel == "grid":
            grid = dispute.grid
            if grid is None:
                raise ValueError("a dispute without a grid cannot be reported by a grid worker")
            resolved = rng.random() < 0.25 and not dispute.urgent
            report = {"report_no": f"WG{serial}", "grid_code": grid["code"],
                      "worker_id": grid.get("grid_worker") or f"GW-{grid['code']}", "content": text,
                      "resolved_on_site": resolved, "reported_at": stamp,
                      "parties": [{"role": "applicant", "name": name, "phone": phone},
                                  {"role": "respondent", "name": dispute.respondent}]}
            if resolved:
                report["outcome"] = "经网格员现场调解，双方达成一致，矛盾已化解。"
            return report
        if channel == "walkin":
            return {"visit_no": f"JF{serial}", "centre": f"{dispute.township['code']}-TJ",
                    "receptionist_id": "R-01", "visitor_name": name, "visitor_phone": phone, "content": text,
                    "township": township, "visited_at": stamp, **optional}
        raise ValueError(f"unknown channel {channel!r}")

    def channel_for(self, dispute: Dispute, exclude: tuple[str, ...] = ()) -> str:
        """A channel that might report this dispute (grid only where a grid covers it)."""
        choices = [("hotline", 34), ("app", 20), ("petition", 14), ("walkin", 12), ("opinion", 6), ("grid", 14)]
        options = [(c, w) for c, w in choices if c not in exclude and (c != "grid" or dispute.grid)]
        return self.rng.choices([c for c, _ in options], [w for _, w in options])[0]
