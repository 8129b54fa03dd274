"""The routing classifier: classes, severity parsing, explanations, robustness, and an accuracy floor."""
from __future__ import annotations

import json
import shutil

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.routing import evaluate
from services.routing.classify import RULES_DIR, classify, load_rules, normalize, parse_number, warm_up
from services.routing.domain import DISPUTE_TYPES, GOV_CATEGORIES, Classification

# Floors set from measured figures (dispute 0.958, gov 0.931 on 404 texts) minus a margin for
# harmless rule edits; a drop below them is a regression, not noise.
FIXTURE_DISPUTE_FLOOR = 0.92
FIXTURE_GOV_FLOOR = 0.90


# --- every class on texts that are not in the fixture --------------------------------------------

DISPUTE_EXAMPLES = {
    "婚姻家庭": "俺媳妇非要离婚，说俺家给的彩礼少了，孩子才两岁，她要带走",
    "邻里纠纷": "隔壁邻居家的房檐滴水全落在俺家院里，墙根都泡酥了，找他说他不管",
    "土地山林": "俺家的宅基地被后邻占了半米，宅基地证上写得清清楚楚",
    "合同债务": "去年借给同学三万块钱，打了借条，现在他说没钱不还",
    "劳动争议": "在厂里干了三个月，老板拖欠工资不给，还说要扣押金",
    "医疗纠纷": "俺爹在镇卫生院输液后出了事，医生说不是他们的责任，我们怀疑是医疗事故",
    "交通事故": "俺骑电动车在路口被一辆货车撞了，腿骨折，司机跑了",
    "物业纠纷": "小区物业费年年涨，电梯坏了物业公司也不修",
    "消费纠纷": "网购的羽绒服是假货，商家不给退款",
    "征地拆迁": "修路征地补偿款到现在还没发，拆迁办说等上面拨款",
    "环境污染": "村边的养猪场臭味熏天，粪水直接排进河沟里",
    "人身损害": "赶集的时候被人打伤了鼻梁骨，医药费花了五千多",
    "城市管理": "县城南关街上占道经营的摊贩把人行道全堵了，城管不管",
    "其他": "想咨询一下今年城乡居民医保的缴费标准是多少",
}

GOV_EXAMPLES = {
    "城乡建设": "小区楼顶违章建筑一直没人拆，住建局和城管互相推",
    "农村农业": "今年的种粮补贴和农机补贴到现在还没发到农户手里",
    "政法": "家里电动车被偷了，报警以后派出所一直没有立案",
    "教育文体": "镇中学强制学生在学校补课，每个学生收八百块补课费",
    "劳动和社会保障": "单位一直不给我们交养老保险和医疗保险，退休以后怎么办",
    "民政": "俺娘是五保户，敬老院不收，低保也停了",
    "党务政务": "村里的党支部好几年没开过党员大会，入党申请交上去也没人管",
    "经济管理": "有人在村里搞非法集资，说投资养老项目给高息，银行的人也在推销",
    "卫生计生": "孩子打完疫苗发高烧，接种点说是正常反应，疾控中心也不给说法",
    "商贸旅游": "景区门票涨价还强制购物，旅行社的导游态度恶劣",
    "环境保护": "化工厂晚上偷排废水，河里的鱼都死了，环保局来了也不管",
    "交通运输": "镇上到县城的公交班次太少，客车还经常超载",
    "纪检监察": "村支书把扶贫款挪用了，还收了人家的好处费给关系户办低保",
    "国土资源": "有人在基本农田上盖厂房，国土所来看了一眼就走了",
    "科技与信息产业": "村里手机信号太差，宽带网速也慢，运营商一直说等基站",
}


def test_examples_cover_every_class():
    assert set(DISPUTE_EXAMPLES) == set(DISPUTE_TYPES)
    assert set(GOV_EXAMPLES) == set(GOV_CATEGORIES)


@pytest.mark.parametrize("expected,text", DISPUTE_EXAMPLES.items())
def test_dispute_type(expected, text):
    assert classify(text).dispute_type == expected


@pytest.mark.parametrize("expected,text", GOV_EXAMPLES.items())
def test_gov_category(expected, text):
    assert classify(text).gov_category == expected


def test_gov_category_is_its_own_dimension():
    """Same dispute type, different government category, decided by the text's own words."""
    private_loan = classify("朋友借了我五万块钱打了借条，现在不还了")
    bank_loan = classify("替人担保了信用社的贷款，他不还，银行天天找我催收还扣了我的钱")
    assert private_loan.dispute_type == bank_loan.dispute_type == "合同债务"
    assert private_loan.gov_category == "政法"
    assert bank_loan.gov_category == "经济管理"
    bribe = classify("村主任收了人家两万块钱，就把村里的低保名额给了他亲戚")
    assert bribe.gov_category == "纪检监察"


def test_title_weighs_more_than_body():
    body = "小区门口有人摆摊卖菜，楼下饭店油烟也大"
    assert classify(body, title="饭店油烟扰民").dispute_type == "环境污染"
    assert classify(body, title="小区门口占道摆摊").dispute_type == "城市管理"


# --- explicit priorities -----------------------------------------------------------------------

def test_medical_beats_personal_injury_when_the_hospital_is_a_party():
    result = classify("俺娘在医院摔倒骨折了，护士不在，医院说跟他们没关系，我们要求医疗鉴定")
    assert result.dispute_type == "医疗纠纷"
    assert any(s.startswith("precedence 医疗纠纷 over 人身损害") for s in result.signals)


def test_unpaid_wages_are_a_labour_dispute_even_with_a_contract():
    result = classify("合同上写着每月五千，老板拖欠工资三个月，说合同违约不给了")
    assert result.dispute_type == "劳动争议"
    assert result.gov_category == "劳动和社会保障"


def test_vehicle_hitting_a_person_is_a_traffic_accident():
    assert classify("一辆三轮车把俺娘撞倒了，腿骨折，医药费两万").dispute_type == "交通事故"


# --- the language of a real message board (own paraphrases, not quotes) --------------------------

BOARD_EXAMPLES = [
    # (title, text, dispute_type, gov_category)
    ("能否在小区门口增设公交站点", "我们小区住了上千户，最近的公交站要走一公里，请公交公司考虑调整线路在门口设站",
     "其他", "交通运输"),
    ("地铁口何时开通", "地铁站的四号出口修好一年多了还围着，请问什么时候开通", "其他", "交通运输"),
    ("饭馆油烟直排", "楼下新开的饭馆把油烟直接排到住户窗户底下，熏得家里没法开窗", "环境污染", "环境保护"),
    ("酒吧噪音扰民", "街对面的酒吧每天放音乐到凌晨三点，低音炮吵得整栋楼睡不着觉", "环境污染", "环境保护"),
    ("开发商逾期交房", "合同写的去年底交房，到现在楼还没封顶，开发商不给说法也不付违约金", "合同债务", "城乡建设"),
    ("买房捆绑车位", "售楼处要求买房必须再买一个车位，不买就不卖房，这合理吗", "消费纠纷", "城乡建设"),
    ("道路两边违停", "这条路两边天天停满了车，本来四车道只剩一条能走，希望交警加强违停执法", "城市管理", "政法"),
    ("红绿灯配时太短", "十字路口的行人绿灯只有十几秒，老人根本走不过去，请调整信号灯时间", "其他", "政法"),
    ("人才购房补贴", "我是应届研究生，落户后买了首套房，人才购房补贴申请了两次都没通过", "其他", "城乡建设"),
    ("生育津贴什么时候发", "我五月份生的孩子，生育保险的津贴到现在还没发下来", "其他", "劳动和社会保障"),
    ("组级道路硬化", "我们组到村部的路还是土路，下雨天泥泞不堪，请求把这段路硬化", "其他", "交通运输"),
    ("学区划分", "小区离学校只有三百米，今年的学区划分却把我们划到了三公里外", "其他", "教育文体"),
]


@pytest.mark.parametrize("title,text,dispute_type,gov_category", BOARD_EXAMPLES)
def test_message_board_phrasings(title, text, dispute_type, gov_category):
    result = classify(text, title=title)
    assert (result.dispute_type, result.gov_category) == (dispute_type, gov_category), result.signals


def test_a_place_is_not_the_topic():
    """A hospital or a school that only says where the road is does not make a medical or school case."""
    result = classify("人民医院西面那段路坑坑洼洼，下雨全是积水，希望市政修一修", title="医院西面的路坑太多")
    assert result.dispute_type == "城市管理"
    assert result.gov_category == "城乡建设"
    assert any(s.startswith("places, not topics: 医院(西面)") for s in result.signals)
    # the same word is a topic when nothing after it names a place
    assert classify("医院误诊把阑尾炎当成胃病，耽误了手术").dispute_type == "医疗纠纷"


def test_a_number_inside_a_longer_number_is_not_a_keyword():
    result = classify("我家住1109房，阳台的悬空梁断了")
    assert not any("110" in s for s in result.signals if s.startswith("gov"))
    assert classify("晚上有人砸门，我打了110").gov_category == "政法"


def test_a_passing_mention_is_below_a_types_minimum():
    result = classify("交警说这段路以后要拓宽")
    assert result.dispute_type != "交通事故"
    assert any("交通事故" in s and "below its minimum" in s for s in result.signals)


def test_a_contractors_unpaid_bill_stays_a_debt_even_with_wages_in_it():
    result = classify("老板拖欠我们工程款三十多万，我手下工人的工资也发不出来", title="拖欠工程款")
    assert result.dispute_type == "合同债务"
    assert not any(s.startswith("precedence 劳动争议 over 合同债务") for s in result.signals)
    assert classify("老板拖欠我们三个月工资，合同上写的每月五千").dispute_type == "劳动争议"


def test_a_request_for_a_footbridge_is_not_a_traffic_accident():
    result = classify("小学门口车多，去年有学生被车撞了，家长请求修建人行天桥", title="请修一座人行天桥")
    assert result.dispute_type == "城市管理"


# --- negation ----------------------------------------------------------------------------------

def test_negated_fight_does_not_count():
    result = classify("两家因为滴水的事吵了几句，没有打架")
    assert result.dispute_type == "邻里纠纷"
    assert "negated 打架 (after 没有)" in result.signals
    assert not any(s.startswith("dispute 人身损害") for s in result.signals)


def test_negation_is_limited_to_the_clause():
    # the negator belongs to the previous clause: the fight is real
    result = classify("村里没人管，他上来就打人，打伤了俺的胳膊")
    assert result.dispute_type == "人身损害"


def test_negation_does_not_cancel_what_is_missing():
    assert classify("干了半年了，老板一直没有发工资").dispute_type == "劳动争议"


# --- severity ----------------------------------------------------------------------------------

@pytest.mark.parametrize("token,value", [
    ("8000", 8000), ("1.5万", 15_000), ("二十万", 200_000), ("十八万八", 188_000), ("一千二", 1_200),
    ("两万四千", 24_000), ("一百零五", 105), ("五六", 5), ("几十", 30), ("十几万", 130_000), ("三百万", 3_000_000),
])
def test_parse_number(token, value):
    assert parse_number(token, vague_digit=3) == value


@pytest.mark.parametrize("text,amount", [
    ("借了他3万元到现在不还", 30_000),
    ("彩礼要了二十多万", 200_000),
    ("在厂里干活工资8000元一直没给", 8_000),
    ("彩礼十八万八，三金另算", 188_000),
    ("欠我¥5,000不还", 5_000),
    ("老板 owes me 15000 RMB", 15_000),
    ("欠俺工钱八千，说过年给", 8_000),
])
def test_amount(text, amount):
    assert classify(text).severity.amount_yuan == amount


@pytest.mark.parametrize("text", ["邻居占了俺家一块地", "小区占地3万平方米", "2019年就反映过", "打了3次电话"])
def test_not_money(text):
    assert classify(text).severity.amount_yuan is None


@pytest.mark.parametrize("text,people", [
    ("俺们30多名工人的工资没发", 30),
    ("几十户村民的地被占了", 30),
    ("俺们五六个人一起去要钱", 5),
    ("二百多购房户交了钱拿不到房", 200),
])
def test_people(text, people):
    assert classify(text).severity.people == people


def test_population_figures_are_not_people_involved():
    assert classify("这个小区居住着3000多人，门口的路灯坏了").severity.people is None
    assert classify("全县10万人口，只有一个公厕").severity.people is None


def test_people_count_from_the_submission_wins_when_larger():
    result = classify("俺们五六个人的工资没发", people_count=12)
    assert result.severity.people == 12
    assert "people 12: given by the submission" in result.signals


@pytest.mark.parametrize("text", [
    "村民准备集体上访", "全村人联名写了信", "工人们堵路拉横幅讨薪", "二十多户业主要去市里上访讨说法",
])
def test_mass_risk(text):
    assert classify(text).severity.mass_risk


def test_one_weak_group_cue_is_not_a_mass_risk():
    assert not classify("我想去信访局问问").severity.mass_risk


def test_petition_channel_counts_as_a_group_cue():
    text = "这件事我们已经反映了好几年，要去上访"
    assert not classify(text).severity.mass_risk
    assert classify(text, channel="petition").severity.mass_risk


def test_many_people_plus_a_cue_is_a_mass_risk_but_a_housing_estate_size_alone_is_not():
    assert classify("40多名农民工一起去讨薪").severity.mass_risk
    assert not classify("小区2584户业主的电梯坏了").severity.mass_risk


@pytest.mark.parametrize("text", [
    "我们小区三千多户业主都在维权，全体业主强烈要求开发商整改",        # 维权, 全体业主: no crowd is forming
    "小区有一千多户，去年有业主上访过一次，问题还是没解决",             # an estate's size is not a group
    "商贩在路口摆摊把路都堵了，车过不去",                               # 堵路 as traffic, alone
    "我们不想拉横幅，只想通过正当途径解决问题",                         # negated
    "希望整治本市旅游行业的乱象",                                       # 游行 inside 旅游行业
    "大家一起想想办法吧，这个路灯修一修",
])
def test_weak_or_ambiguous_group_words_are_not_a_mass_risk(text):
    assert not classify(text).severity.mass_risk


@pytest.mark.parametrize("text", [
    "几百户业主不断拉横幅上访，开发商还是不理",                         # 不断 does not negate
    "我们三百多名业主已经去市政府上访了两次",                           # a group the writer claims as "we"
    "几十户村民联名投诉这个砖厂",
])
def test_collective_action_is_a_mass_risk(text):
    assert classify(text).severity.mass_risk


@pytest.mark.parametrize("text", ["这个问题我已经多次反映了", "至今没有解决，打了好几次电话", "部门之间互相推诿"])
def test_repeat_complaint(text):
    assert classify(text).severity.repeat_complaint


def test_a_single_weak_repeat_cue_is_not_enough():
    assert not classify("路灯一直不亮").severity.repeat_complaint


@pytest.mark.parametrize("text", [
    "再不给钱俺就从楼上跳下去，跳楼给他们看", "俺娘气得喝农药了", "他要是再逼俺，俺就跟他同归于尽",
    "工钱要不回来，俺真不想活了", "实在走投无路了，今天必须讨个说法",
])
def test_extreme_risk(text):
    result = classify(text)
    assert result.severity.extreme_risk
    assert result.psych_needed, "an extreme-behaviour risk always calls for psychological support"


def test_asking_for_an_explanation_alone_is_not_an_extreme_risk():
    assert not classify("我们就是想讨个说法").severity.extreme_risk


def test_negated_extreme_cue():
    assert not classify("你放心，我不会跳楼的，就是想把钱要回来").severity.extreme_risk


@pytest.mark.parametrize("text", [
    "儿子出车祸走了以后，俺天天哭，晚上睡不着觉",
    "丈夫家暴，我想离婚，现在精神崩溃了",
    "俺是失独家庭，老两口以泪洗面",
])
def test_psych_needed(text):
    assert classify(text).psych_needed


def test_one_family_word_does_not_call_for_psych_support():
    assert not classify("想咨询一下协议离婚需要什么材料").psych_needed


# --- explanation and determinism ---------------------------------------------------------------

def test_signals_list_every_rule_that_fired():
    result = classify("包工头拖欠俺们工资四十多万，合同上写着月底结，没有打架，俺们三十多名工人准备集体上访",
                      title="工地欠薪")
    signals = "\n".join(result.signals)
    for expected in ["dispute 劳动争议", "欠薪[标题]", "包工头", "combo", "precedence 劳动争议 over 合同债务",
                     "negated 打架", "gov 劳动和社会保障", "prior from 劳动争议", "amount 400000 yuan",
                     "people 30", "mass_risk: 集体上访"]:
        assert expected in signals, expected
    # every word credited to the winner is really in the text
    winner = next(s for s in result.signals if s.startswith("dispute 劳动争议 ") and ":" in s)
    text = normalize("工地欠薪 包工头拖欠俺们工资四十多万，合同上写着月底结，没有打架，俺们三十多名工人准备集体上访")
    for credited in winner.split(": ", 1)[1].split(", "):
        assert credited.split("×")[0].split("[")[0] in text


def test_fallback_to_other_is_explained():
    result = classify("今天天气不错")
    assert result.dispute_type == "其他"
    assert any(s.startswith("dispute 其他: best score") for s in result.signals)


def test_deterministic():
    text = "邻居家的狗把俺孩子咬伤了，打狂犬疫苗花了三千，他不给钱还骂人"
    first = classify(text, title="狗咬人", channel="hotline")
    assert all(classify(text, title="狗咬人", channel="hotline") == first for _ in range(5))
    assert classify(text, title="狗咬人", channel="hotline", rules=RULES_DIR) == first


def test_confidence_reflects_the_margin():
    clear = classify("欠薪！老板拖欠工资半年，农民工讨薪无门")
    mixed = classify("老板拖欠工资，邻居家的狗还咬了俺")
    for result in (clear, mixed):
        assert 0.0 <= result.confidence <= 1.0 and 0.0 <= result.gov_confidence <= 1.0
    assert clear.confidence > mixed.confidence


# --- robustness --------------------------------------------------------------------------------

@pytest.mark.parametrize("text", ["", "   \n\t", "😭😭😭🙏🙏", "OK", "？？？！！！", "1234567890"])
def test_degenerate_input(text):
    result = classify(text)
    assert result.dispute_type == "其他"
    assert result.gov_category in GOV_CATEGORIES
    assert result.severity.amount_yuan is None


def test_huge_text_is_cut_and_still_classified():
    result = classify("俺家的宅基地被邻居占了，" * 50_000)
    assert result.dispute_type == "土地山林"
    assert any(s.startswith("text truncated") for s in result.signals)


def test_emoji_do_not_hide_words():
    assert classify("养猪场😤臭味熏天🤮粪水直排🙏").dispute_type == "环境污染"


def test_traditional_characters_read_like_simplified():
    traditional = classify("醫院手術失敗，俺爹沒了，醫生說是併發症，要求醫療鑒定")
    simplified = classify("医院手术失败，俺爹没了，医生说是并发症，要求医疗鉴定")
    assert traditional.dispute_type == simplified.dispute_type == "医疗纠纷"
    assert traditional.gov_category == simplified.gov_category


def test_mixed_english_and_full_width():
    result = classify("My boss 拖欠工资 three months，ＴＯＴＡＬ １５０００元，老板 not answering")
    assert result.dispute_type == "劳动争议"
    assert result.severity.amount_yuan == 15_000


def test_typos_and_dialect():
    assert classify("俺家临居把墙垒到俺家宅机地上了恁说咋办").dispute_type == "土地山林"
    assert classify("老板托欠工资俺们去要他还骂人").dispute_type == "劳动争议"
    assert classify("楼下烧烤店躁音太大天天半夜吵").dispute_type == "环境污染"


@settings(max_examples=150, deadline=None)
@given(st.text(max_size=300), st.text(max_size=40), st.sampled_from([None, "petition", "hotline", "grid"]),
       st.one_of(st.none(), st.integers(min_value=0, max_value=100_000)))
def test_any_input_gives_a_valid_classification(text, title, channel, people_count):
    result = classify(text, title=title, channel=channel, people_count=people_count)
    assert isinstance(result, Classification)
    assert result.dispute_type in DISPUTE_TYPES and result.gov_category in GOV_CATEGORIES
    assert 0.0 <= result.confidence <= 1.0 and 0.0 <= result.gov_confidence <= 1.0
    assert result.severity.amount_yuan is None or result.severity.amount_yuan >= 10


# --- rules are data ----------------------------------------------------------------------------

def test_a_county_can_change_the_rules_without_code(tmp_path):
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    text = "村东头那口老井到底归谁管"
    assert classify(text, rules=tmp_path / "rules").dispute_type != "土地山林"
    path = tmp_path / "rules" / "dispute_types.yaml"
    original = path.read_text(encoding="utf-8")
    assert "土地纠纷, 地被占," in original
    path.write_text(original.replace("土地纠纷, 地被占,", "土地纠纷, 地被占, 老井,"), encoding="utf-8")
    edited = load_rules(tmp_path / "rules", reload=True)
    assert classify(text, rules=edited).dispute_type == "土地山林"
    assert "dispute 土地山林 3.0: 老井" in classify(text, rules=edited).signals


def test_an_unknown_class_in_the_rules_is_refused(tmp_path):
    shutil.copytree(RULES_DIR, tmp_path / "rules")
    path = tmp_path / "rules" / "gov_categories.yaml"
    path.write_text(path.read_text(encoding="utf-8").replace("  民政:\n", "  民正:\n", 1), encoding="utf-8")
    with pytest.raises(ValueError, match="民正"):
        load_rules(tmp_path / "rules")


def test_warm_up_and_benchmark_report_figures():
    warm_up()
    figures = evaluate.benchmark(["老板拖欠工资", "邻居家的狗咬人"])
    assert figures["texts"]["n"] == 2
    assert 0 < figures["texts"]["mean_ms"] <= figures["texts"]["max_ms"]


# --- the labelled set --------------------------------------------------------------------------

def test_fixture_is_large_and_covers_every_class():
    rows = evaluate.load_labelled()
    assert len(rows) >= 300
    for dimension, labels in evaluate.DIMENSIONS.items():
        counts = {label: sum(row[dimension] == label for row in rows) for label in labels}
        assert min(counts.values()) >= 8, counts


def test_fixture_accuracy_stays_above_the_floor():
    report = evaluate.evaluate(evaluate.load_labelled())
    assert report["dispute_type"]["accuracy"] >= FIXTURE_DISPUTE_FLOOR
    assert report["gov_category"]["accuracy"] >= FIXTURE_GOV_FLOOR
    for dimension in evaluate.DIMENSIONS:
        weakest = {label: c["accuracy"] for label, c in report[dimension]["per_class"].items()
                   if c["accuracy"] is not None and c["accuracy"] < 0.5}
        assert not weakest, f"{dimension}: classes below half right: {weakest}"


def test_evaluate_command_prints_a_json_summary(tmp_path, capsys):
    path = tmp_path / "set.jsonl"
    path.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in [
        {"text": "老板拖欠工资不给", "dispute_type": "劳动争议", "gov_category": "劳动和社会保障"},
        {"text": "邻居家滴水檐滴到俺院里", "dispute_type": "邻里纠纷", "gov_category": "政法"},
    ]), encoding="utf-8")
    assert evaluate.main([str(path), "--data", str(tmp_path / "no-data")]) == 0
    summary = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["n"] == 2
    assert summary["dispute_type_accuracy"] == 1.0


def test_real_messages_when_present():
    messages = evaluate.load_gov_messages()
    if messages is None:
        pytest.skip("gov-messages data set not found")
    spread = evaluate.prediction_spread(messages[::10])
    # the message board is mostly public-service requests, not disputes; but not all of it
    assert 0.15 <= spread["dispute_other_share"] <= 0.6
    # a mass risk sends a case to 联动 at county level: on a message board it is rare
    assert spread["mass_risk_share"] <= 0.03


# Hand annotations of real messages, by id only (the messages are never in the repository): the
# development set the rules were tuned on, and a held-out set labelled blind and never tuned on.
# Floors sit a few points under the measured figures (dev 0.783 / 0.808, held-out 0.695 / 0.755).
REAL_FLOORS = {"gov_messages_dev.jsonl": (0.75, 0.78), "gov_messages_heldout.jsonl": (0.66, 0.72)}


def test_hand_annotated_real_messages_when_present():
    directory = evaluate.find_data()
    if directory is None:
        pytest.skip("gov-messages data set not found")
    board = evaluate.load_board(directory)
    for name, (dispute_floor, gov_floor) in REAL_FLOORS.items():
        rows, missing = evaluate.load_annotations(evaluate.DEFAULT_FIXTURE.with_name(name), board)
        assert not missing and len(rows) >= 200
        report = evaluate.evaluate(rows)
        assert report["dispute_type"]["accuracy"] >= dispute_floor, (name, report["dispute_type"]["accuracy"])
        assert report["gov_category"]["accuracy"] >= gov_floor, (name, report["gov_category"]["accuracy"])


def _write_board(directory):
    import csv
    directory.mkdir()
    with open(directory / "messages.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "user", "title", "time", "text", "oppose", "likes"])
        writer.writerow(["1", "u", "楼下酒吧噪音扰民", "", "酒吧每天放音乐到凌晨，吵得睡不着", "0", "0"])
        writer.writerow(["2", "u", "公交线路调整", "", "希望增开一条到火车站的公交线路", "0", "0"])
    with open(directory / "messages_with_replies.csv", "w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["id", "user", "title", "time", "text", "reply", "reply_time"])
        writer.writerow(["7", "u", "孩子入学", "", "孩子今年上小学，学区是怎么划分的",
                         "网友您好，经调查核实，现将有关情况回复如下：学区按就近入学原则划分。县教育局 2019年5月6日", ""])


def test_hand_annotations_by_id_and_the_replying_unit(tmp_path, capsys):
    data = tmp_path / "gov-messages"
    _write_board(data)
    annotations = tmp_path / "annotations.jsonl"
    annotations.write_text("\n".join(json.dumps(row, ensure_ascii=False) for row in [
        {"id": "m1", "dispute_type": "环境污染", "gov_category": "环境保护"},
        {"id": "m2", "dispute_type": "其他", "gov_category": "城乡建设", "gov_category_ok": ["城乡建设", "交通运输"]},
        {"id": "m404", "dispute_type": "其他", "gov_category": "政法"},
    ]), encoding="utf-8")
    assert evaluate.main([str(evaluate.DEFAULT_FIXTURE), "--data", str(data),
                          "--annotations", str(annotations), "--weak"]) == 0
    out = capsys.readouterr().out
    summary = json.loads(out.strip().splitlines()[-1])
    figures = summary["annotations.jsonl"]
    assert figures["n"] == 2 and "1 annotated messages not found" in out
    assert figures["dispute_type_accuracy"] == 1.0
    assert figures["gov_category_accuracy"] == 0.5          # 交通运输 is only an accepted alternative
    assert figures["gov_category_lenient_accuracy"] == 1.0
    assert summary["weak_gov_category"] == {"n": 1, "gov_category_accuracy": 1.0,
                                            "gov_category_lenient_accuracy": 1.0, "gov_category_macro_accuracy": 1.0}


def test_evaluate_skips_the_real_data_when_it_is_absent(tmp_path, capsys):
    assert evaluate.find_data(tmp_path / "nowhere") is None
    path = tmp_path / "set.jsonl"
    path.write_text(json.dumps({"id": "m1", "dispute_type": "其他", "gov_category": "政法"}), encoding="utf-8")
    assert evaluate.main([str(evaluate.DEFAULT_FIXTURE), "--data", str(tmp_path / "nowhere"),
                          "--annotations", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 annotated messages not found" in out and "gov-messages not found" in out


@pytest.mark.parametrize("reply,category", [
    ("您好，您反映的问题已收悉，经核实回复如下……感谢您的监督。A7县教育局 2019年5月6日", "教育文体"),
    ("网友：您好！您反映的问题已收悉。经交警大队现场核查，该路段已增设禁停标志，并将加强巡查。", "政法"),
    ("您的留言已收悉，已转县人民政府办公室研究。", None),        # 人民政府 is not 民政
    ("收到", None),
])
def test_reply_unit_category(reply, category):
    assert evaluate.reply_unit_category(reply) == category
