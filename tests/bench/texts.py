"""Hotline work orders with realistic Chinese text for the load generator.

The text comes from real citizen messages (`../shared/data/gov-messages/messages.csv`,
never committed) when this checkout has them, else from a built-in list of typical
Lanling disputes. Every order has its own order number, caller and phone.
"""
from __future__ import annotations

import csv
import random
import re
from datetime import datetime, timedelta, timezone

from tests.bench.common import shared_data

TOWNSHIPS = ("卞庄街道", "苍山街道", "兰陵镇", "大仲村镇", "尚岩镇", "磨山镇", "矿坑镇", "新兴镇", "南桥镇",
             "金岭镇", "芦柞镇", "庄坞镇", "鲁城镇", "向城镇", "神山镇", "长城镇", "车辋镇", "下村乡")
SURNAMES = "王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕"
GIVEN = "秀英桂兰玉梅建国志强丽娟红霞海燕明华文静春花立新德胜保国永刚凤英金山"
BUILT_IN = (
    "俺家东边邻居盖房子占了俺家宅基地半米，找村里调解了两回没用，请求调解。",
    "我在镇上的建筑工地干了八个月，包工头一直拖欠工资两万三千元，过年前说给也没给，请帮忙讨薪。",
    "村里修路把我家的承包地占了两分，说好的补偿款到现在还没发下来，找了村委好几次都推。",
    "楼上住户家里漏水，把我家天花板泡坏了，找他协商赔偿他不理，物业也不管，请求调解。",
    "我和前夫离婚时说好孩子抚养费每月八百，他已经一年没给了，电话也不接，希望有人出面。",
    "我父亲在镇卫生院做手术后出现感染，医院说不是他们的责任，我们想要个说法，申请医疗纠纷调解。",
    "早上在国道上被一辆货车剐了电动车，人受了轻伤，司机只肯赔五百块，双方谈不拢。",
    "兄弟三个分家，老宅子的归属一直谈不拢，老母亲的赡养也没人管，请村里和镇上帮忙调解。",
    "邻居家养的狗把我家孩子咬了，打疫苗花了两千多，邻居不承认是他家的狗，请求处理。",
    "流转出去的土地租金对方两年没付，合同写得清清楚楚，找他就说没钱，想请调解委员会出面。",
    "小区门口的烧烤摊每天晚上吵到凌晨两点，油烟也大，打过12345好几次了，希望彻底解决。",
    "我在网上买的家电有质量问题，商家不给退也不给修，已经拖了一个多月，请求帮忙维权。",
    "村东头的养猪场臭气熏天，污水直接排到沟里，周边几十户人家都受影响，请有关部门管一管。",
    "我们几个农民工在工厂干活受伤，厂里不给交工伤保险，现在看病的钱都要自己出，怎么办。",
    "婆媳关系闹得很僵，丈夫常年在外打工，家里天天吵架，老人说要去镇上上访，想请人调解一下。",
    "物业费涨了一倍，业主都不同意，物业就停了电梯，老人上下楼很困难，请相关部门协调。",
)
_MASKED = re.compile(r"[A-Z]\d*(市|区|县|镇|乡)")


def _message_texts(limit: int = 4000) -> list[str]:
    path = shared_data("gov-messages", "messages.csv")
    if path is None:
        return []
    texts = []
    with path.open(encoding="utf-8") as fh:
        for row in csv.DictReader(fh):
            text = " ".join((row.get("text") or "").split())
            if len(text) >= 30:
                texts.append(_MASKED.sub("本\\1", text)[:700])
            if len(texts) >= limit:
                break
    return texts


def corpus() -> tuple[list[str], str]:
    texts = _message_texts()
    return (texts, "gov-messages/messages.csv") if texts else (list(BUILT_IN), "built-in")


class Orders:
    """An endless supply of distinct hotline work orders."""

    def __init__(self, run_id: str, seed: int = 12345):
        self.rng = random.Random(seed)
        self.texts, self.source = corpus()
        self.run_id = run_id
        self.count = 0

    def next(self) -> dict:
        rng = self.rng
        self.count += 1
        return {
            "order_no": f"12345-{self.run_id}-{self.count:07d}",
            "caller_name": rng.choice(SURNAMES) + "".join(rng.sample(GIVEN, rng.choice((1, 2)))),
            "caller_phone": f"1{rng.choice('3578')}{rng.randrange(10**9):09d}",
            "received_at": (datetime.now(timezone.utc) - timedelta(minutes=rng.randrange(1, 30))).isoformat(),
            "township": rng.choice(TOWNSHIPS),
            "content": rng.choice(self.texts),
        }

    def batch(self, n: int) -> list[dict]:
        return [self.next() for _ in range(n)]
