"""并单: attach a new report to the open case of the same dispute, if there is one.

Signals: the same person (keyed hashes of phone, ID number, name), the same place
(township, village, grid, address, and the village or estate a text names) and alike
text, within a window (30 days) and among open cases only.
A person can have two disputes and a village has many, so neither person nor place
is enough on its own: they only lower how alike the texts must be (rules/merge.yaml).

How the service uses it, so the cost per submission stays flat however many cases
are stored (the check never scans cases):

1. `merge_keys(profile)` gives about twenty blocking keys per case: hashes of the
   people on it, MinHash-LSH bands of its text, its dispute words, site names and
   rarest words, scoped by township or village. Store them in an indexed table
       merge_keys(key text, case_no text, opened_at timestamptz), index (key, opened_at)
   and delete a case's rows when it leaves the open statuses.
2. For a new submission, look up the candidates that share a key, reading at most a few
   dozen index rows per key (the most recent in the window: an index range scan each), and
   rank them by the weight of the keys they share (the same person or a near-identical text
   weigh more than two common dispute words); services/intake/handlers.py:
       SELECT hit.case_no, sum(q.weight) FROM unnest(:keys, :weights) AS q(key, weight)
       CROSS JOIN LATERAL (SELECT case_no, opened_at FROM merge_keys
                           WHERE key = q.key AND opened_at >= :window_start
                           ORDER BY opened_at DESC LIMIT :per_key) AS hit
       GROUP BY hit.case_no ORDER BY 2 DESC LIMIT :limit
   and load their `MergeProfile`s (`MergeProfile.from_row`, with the text features stored
   beside them, so no stored text is cut into words again). Both limits bound the work per
   submission however many cases are open; ranked by shared keys, the true match is among
   the first.
3. `best_match(new, candidates, config)` scores each candidate and returns the best
   `Match` above the threshold, or None. Matches carry masked values and reasons for
   the case history.
"""
from __future__ import annotations

import hashlib
import logging
import re
import unicodedata
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from functools import cached_property, lru_cache
from itertools import combinations
from pathlib import Path

import jieba
import yaml
from datasketch import MinHash
from rapidfuzz import fuzz

from services.common import privacy

RULES_PATH = Path(__file__).with_name("rules") / "merge.yaml"
OPEN_STATUSES = frozenset(
    {"received", "routed", "assigned", "accepted", "in_mediation", "returned", "escalated", "referred", "reopened"}
)
_CJK = re.compile(r"[\u4e00-\u9fff]")
_MASKED_NAME = re.compile(r"[\u4e00-\u9fff]某某?")
_ADMIN_PLACE = re.compile(r"[\u4e00-\u9fff]{1,3}(?:村|社区|街道|镇|乡|县)")
_MENTION_STOP = frozenset("在到是的了其我他她们和与从于给对把被映称说这那该本全邻同每个村因为要让跟将由去来")
_NAME_PREFIXES = ("一家", "这家", "那家", "一个", "这个", "那个", "一座", "一所", "某")
_COUNTING = frozenset("一某该此")
_VILLAGE_SUFFIX = re.compile("社区|村")
_VILLAGE_WORD_STARTS = frozenset("民路里内委干集口头边庄支主级组道医小部镇子")
_ADMIN_WORDS = re.compile("街道|镇|乡|县|区")
_SITE_NAME_MAX = 5
_NAME_MIN_IDF = 6.0
_NOT_TEXT = re.compile(r"[\W_]+")
_SHINGLE = 3
_QUANTITY = re.compile(r"(\d+(?:\.\d+)?)\s*(?:个|位)?(万元|万|元|亩|公分|厘米|米|吨|户|人|名|工人|天)")
_UNITS = {"万": "万元", "名": "人", "工人": "人", "厘米": "公分"}
QUANTITY_WEIGHT = 6.0
# Surnames, for people named in a text (the commonest; 某 marks a masked name).
_SURNAMES = frozenset("王李张刘陈杨赵黄周吴徐孙胡朱高林何郭马罗梁宋郑谢韩唐冯于董萧程曹袁邓许傅沈曾彭吕苏卢蒋蔡"
                      "贾丁魏薛叶阎余潘杜戴夏钟汪田任姜范方石姚谭廖邹熊金陆郝孔白崔康毛邱秦江史顾侯邵孟龙万段"
                      "雷钱汤尹黎易常武乔贺赖龚文庞樊兰殷施陶洪翟安颜倪严牛温芦季俞章鲁葛伍韦申尤毕聂焦向柳邢骆岳齐")
_NOT_IN_NAMES = frozenset("的了在是和与把被对给说家从到去来就也都还又不没有要让将跟向往等")
# After these a surname character is a word (没钱修, 花钱), not a name.
_BEFORE_NO_NAME = frozenset(("没", "有", "给", "借", "欠", "赔", "要", "还", "交", "退", "花", "多", "少", "点", "挣", "不"))
_MASKED_PERSON = re.compile(f"([{''.join(sorted(_SURNAMES))}])某")
# Bumped when text_features changes, so features stored with an older version are recomputed.
FEATURES_VERSION = "3"

jieba.setLogLevel(logging.WARNING)


@dataclass(frozen=True)
class MergeConfig:
    window_days: int = 30
    threshold: float = 0.5
    open_statuses: frozenset[str] = OPEN_STATUSES
    lsh_bands: int = 8                 # MinHash bands; threshold ~ (1/bands)^(1/rows) Jaccard
    lsh_rows: int = 4
    village_keywords: int = 4          # salient words keyed per village
    pair_keywords: int = 4             # pairs of the top words keyed per township
    rare_keywords: int = 2             # rarest words keyed per township
    rules_path: Path = RULES_PATH


@dataclass(frozen=True)
class MergeProfile:
    """What merging needs to know about a case; no personal data in clear but the address.

    `text` and `title` have the people's names, phones and ID numbers removed already
    (make_profile does it). `masked` maps each hash to "kind:masked value"
    ("phone:138****1001"), so reasons can show what matched without revealing it.
    """

    case_no: str
    channel: str
    township: str | None
    village: str | None
    grid: str | None
    address: str | None
    phone_hash: str | None
    id_hash: str | None
    name_hash: str | None
    text: str
    title: str | None
    opened_at: datetime
    status: str = "received"
    village_name: str | None = None                   # as the source wrote it; `village` is the code
    party_hashes: frozenset[str] = frozenset()        # phone / ID hashes of the parties
    party_name_hashes: frozenset[str] = frozenset()
    masked: Mapping[str, str] = field(default_factory=dict)
    # The text's features as stored with the profile, so scoring a stored case needs no
    # word cutting (the service keeps them next to the merge keys); None: computed when needed.
    features: "TextFeatures | None" = field(default=None, compare=False, repr=False)

    @property
    def person_ids(self) -> frozenset[str]:
        return (self.party_hashes | {self.phone_hash, self.id_hash}) - {None}

    @property
    def person_names(self) -> frozenset[str]:
        return (self.party_name_hashes | {self.name_hash}) - {None}

    @property
    def comparable_text(self) -> str:
        if self.title and self.title.rstrip("…") not in self.text:
            return f"{self.title}。{self.text}"
        return self.text

    def to_row(self) -> dict:
        """JSON-ready, for the service's table of open cases' profiles."""
        row = {name: getattr(self, name) for name in self.__dataclass_fields__ if name != "features"}
        row["opened_at"] = self.opened_at.isoformat()
        row["party_hashes"] = sorted(self.party_hashes)
        row["party_name_hashes"] = sorted(self.party_name_hashes)
        row["masked"] = dict(self.masked)
        return row

    @classmethod
    def from_row(cls, row: Mapping) -> "MergeProfile":
        values = dict(row)
        if isinstance(values["opened_at"], str):
            values["opened_at"] = datetime.fromisoformat(values["opened_at"])
        values["party_hashes"] = frozenset(values.get("party_hashes") or ())
        values["party_name_hashes"] = frozenset(values.get("party_name_hashes") or ())
        values["masked"] = dict(values.get("masked") or {})
        values = {name: value for name, value in values.items() if name in cls.__dataclass_fields__}
        return cls(**values)


@dataclass(frozen=True)
class Match:
    """Why `case_no` is (or is not) the same dispute as the new report."""

    case_no: str
    score: float                       # 0..1; merge when >= MergeConfig.threshold
    similarity: float                  # weighted cosine of the texts
    required: float                    # the similarity this evidence called for
    matched: dict                      # field -> masked value, or the similarity
    reasons: list[str]


def make_profile(
    case_no: str,
    channel: str,
    text: str,
    opened_at: datetime,
    *,
    title: str | None = None,
    township: str | None = None,
    village: str | None = None,
    village_name: str | None = None,
    grid: str | None = None,
    address: str | None = None,
    phone: str | None = None,
    id_number: str | None = None,
    name: str | None = None,
    parties: Iterable[Mapping] = (),
    status: str = "received",
) -> MergeProfile:
    """A profile from clear personal data, which it hashes, masks and scrubs from the text."""
    parties = list(parties)
    masked: dict[str, str] = {}

    def hashed(value, kind, mask):
        digest = privacy.keyed_hash(value, kind)
        if digest:
            masked[digest] = f"{kind}:{mask(value)}"
        return digest

    party_ids = {hashed(p.get("phone"), "phone", privacy.mask_phone) for p in parties}
    party_ids |= {hashed(p.get("id_number"), "id_number", privacy.mask_id_number) for p in parties}
    names = [name, *(p.get("name") for p in parties)]
    return MergeProfile(
        case_no=case_no,
        channel=channel,
        township=township,
        village=village,
        village_name=village_name,
        grid=grid,
        address=address,
        phone_hash=hashed(phone, "phone", privacy.mask_phone),
        id_hash=hashed(id_number, "id_number", privacy.mask_id_number),
        name_hash=hashed(name, "name", privacy.mask_name),
        text=scrub(text, names),
        title=scrub(title, names) if title else None,
        opened_at=opened_at,
        status=status,
        party_hashes=frozenset(party_ids - {None}),
        party_name_hashes=frozenset({hashed(p.get("name"), "name", privacy.mask_name) for p in parties} - {None}),
        masked=masked,
    )


def profile_from_case(case_no: str, case: Mapping, *, status: str = "received", opened_at: datetime | None = None):
    """A profile from a canonical case (canonical.to_canonical)."""
    complainant = case.get("complainant") or {}
    return make_profile(
        case_no,
        case["channel"],
        case["content"],
        opened_at or case["received_at"],
        title=case.get("title"),
        township=case.get("township"),
        village=case.get("village"),
        village_name=case.get("village_name"),
        grid=case.get("grid_code"),
        address=case.get("address"),
        phone=complainant.get("phone"),
        id_number=complainant.get("id_number"),
        name=complainant.get("name"),
        parties=case.get("parties") or (),
        status=status,
    )


def scrub(text: str, names: Iterable[str | None] = ()) -> str:
    """Remove phones, ID numbers and the given names: they are compared as hashes."""
    text = privacy.ID_NUMBER.sub(" ", text)
    text = privacy.PHONE.sub(" ", text)
    text = privacy.LANDLINE.sub(" ", text)
    for name in sorted({n.strip() for n in names if n and n.strip()}, key=len, reverse=True):
        text = text.replace(name, " ")
    return text


# --- text -------------------------------------------------------------------------


class Vocabulary:
    """rules/merge.yaml, compiled."""

    def __init__(self, path: Path):
        raw = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        self.rules = raw
        self.boilerplate = _alternation(raw["boilerplate"])
        self.stopwords = frozenset(raw["stopwords"])
        self.variants: dict[str, list[str]] = {}
        for canonical, variants in raw["terms"].items():
            for variant in variants:
                self.variants.setdefault(variant, []).append(canonical)
        self.term_pattern = _alternation(self.variants)
        self.canonical_terms = frozenset(raw["terms"])
        self.weak_terms = frozenset(raw["weak_terms"])
        self.private_terms = frozenset(raw["private_terms"])
        self.exclusive = [frozenset(group) for group in raw["exclusive"]]
        self.site_pattern = _alternation(raw["site_suffixes"])
        self.organisation_pattern = _alternation(raw.get("organisation_suffixes", ()))
        import jieba.analyse  # jieba's IDF table, loaded once

        tfidf = jieba.analyse.default_tfidf
        self.idf = tfidf.idf_freq
        self.median_idf = tfidf.median_idf
        self.min_weight, self.max_weight = raw["min_weight"], raw["max_weight"]
        self.term_weight = raw["term_weight"]
        self.rare_idf = raw["rare_idf"]

    def weight(self, word: str) -> float:
        if word in self.canonical_terms:
            return self.min_weight if word in self.weak_terms else self.term_weight
        return min(self.max_weight, max(self.min_weight, self.idf.get(word, self.median_idf)))

    def exclusive_conflicts(self, a: frozenset[str], b: frozenset[str]) -> list[str]:
        """Words of one `exclusive` group on both sides that do not overlap (猪场 vs 鸡场)."""
        conflicts = []
        for group in self.exclusive:
            mine, theirs = a & group, b & group
            if mine and theirs and not mine & theirs:
                conflicts.append(f"{'/'.join(sorted(mine))} vs {'/'.join(sorted(theirs))}")
        return conflicts


def _alternation(words: Iterable[str]) -> re.Pattern:
    return re.compile("|".join(re.escape(w) for w in sorted(words, key=len, reverse=True)) or r"(?!)")


@lru_cache(maxsize=4)
def vocabulary(path: Path = RULES_PATH) -> Vocabulary:
    return Vocabulary(path)


@dataclass(frozen=True)
class TextFeatures:
    weights: dict[str, float]          # word -> weight
    topics: frozenset[str]             # the dispute words (rules/merge.yaml `terms`) found
    strong_topics: frozenset[str]      # those that are not `weak_terms`
    norm: float
    villages: frozenset[str]           # village names it mentions, in every plausible reading
    sites: tuple[str, ...]             # names of estates, sites, works, schools (阳光花园, 宏达石材)
    rare: tuple[str, ...]              # its rarest ordinary words, rarest first
    people: tuple[str, ...] = ()       # people it names: 姜宝刚, or 戴某 (a surname and 某)
    quantities: tuple[str, ...] = ()   # amounts with their unit: 42人, 32公分, 3.5万元

    @cached_property
    def salient(self) -> tuple[str, ...]:
        """Dispute words first (stable across paraphrases), then other words by weight."""
        return tuple(sorted(self.weights, key=lambda w: (w not in self.strong_topics, -self.weights[w], w)))


def _normalised(text: str, vocab: Vocabulary) -> str:
    """NFKC, lower case, without masked names (王某某) and channel boilerplate."""
    return vocab.boilerplate.sub(" ", _MASKED_NAME.sub(" ", unicodedata.normalize("NFKC", text).lower()))


# Cached because the same open cases are candidates for many submissions; an entry
# is a few kilobytes.
@lru_cache(maxsize=8192)
def text_features(text: str, rules_path: Path = RULES_PATH) -> TextFeatures:
    vocab = vocabulary(rules_path)
    masked_people = [m.group(1) + "某" for m in _MASKED_PERSON.finditer(unicodedata.normalize("NFKC", text))]
    normal = _normalised(text, vocab)
    weights: dict[str, float] = {}
    for match in vocab.term_pattern.finditer(normal):
        for canonical in vocab.variants[match.group()]:
            weights[canonical] = vocab.weight(canonical)
    topics = frozenset(weights)
    # Villages are compared as places, not as words: their names leave the text.
    villages, normal = _village_mentions(normal)
    sites = _site_mentions(normal, vocab)
    normal = _ADMIN_PLACE.sub(" ", normal)
    normal = vocab.term_pattern.sub(" ", normal)
    words = jieba.lcut(normal, HMM=False)
    for word in words:
        if len(word) >= 2 and _CJK.search(word) and word not in vocab.stopwords and word not in weights \
                and not any(word in site for site in sites):  # a shared site counts as a place, once
            weights[word] = vocab.weight(word)
    quantities = tuple(dict.fromkeys(f"{float(number):g}{_UNITS.get(unit, unit)}"
                                     for number, unit in _QUANTITY.findall(normal)))
    for quantity in quantities:
        weights[f"#{quantity}"] = QUANTITY_WEIGHT
    people = tuple(dict.fromkeys([*masked_people, *_people_named(words)]))
    rare = tuple(sorted((w for w in weights if w not in topics and vocab.idf.get(w, 0) >= vocab.rare_idf),
                        key=lambda w: (-vocab.idf[w], w)))
    norm = sum(w * w for w in weights.values()) ** 0.5
    return TextFeatures(weights, topics, topics - vocab.weak_terms, norm, villages, sites, rare, people, quantities)


def profile_features(profile: MergeProfile, config: "MergeConfig | None" = None) -> TextFeatures:
    """The profile's stored features, or its text's (cached)."""
    if profile.features is not None:
        return profile.features
    return text_features(profile.comparable_text, (config or MergeConfig()).rules_path)


def features_to_json(features: TextFeatures) -> dict:
    return {
        "weights": features.weights, "topics": sorted(features.topics),
        "strong_topics": sorted(features.strong_topics), "norm": features.norm,
        "villages": sorted(features.villages), "sites": list(features.sites), "rare": list(features.rare),
        "people": list(features.people), "quantities": list(features.quantities),
    }


def features_from_json(data: Mapping) -> TextFeatures:
    return TextFeatures(
        dict(data["weights"]), frozenset(data["topics"]), frozenset(data["strong_topics"]), float(data["norm"]),
        frozenset(data["villages"]), tuple(data["sites"]), tuple(data["rare"]),
        tuple(data.get("people", ())), tuple(data.get("quantities", ())),
    )


@lru_cache(maxsize=4)
def rules_digest(rules_path: Path = RULES_PATH) -> str:
    """Identifies the rules (and jieba's dictionary) stored features were computed with."""
    digest = hashlib.sha256(Path(rules_path).read_bytes())
    digest.update(f"{jieba.__version__}/{FEATURES_VERSION}".encode())
    return digest.hexdigest()[:16]


def _village_mentions(text: str) -> tuple[frozenset[str], str]:
    """Village names (…村, …社区), and the text without them.

    Without the directory we cannot tell exactly where a name starts (在后楼村, 是后楼村),
    so the name and its two- and three-character tails are kept: two texts naming one
    village share one of them.
    """
    found: set[str] = set()
    blank = [False] * len(text)
    for match in _VILLAGE_SUFFIX.finditer(text):
        if match.group() == "村" and text[match.end():match.end() + 1] in _VILLAGE_WORD_STARTS:
            continue  # 村民, 村路, 村里: the word 村; 大仲村镇: a township
        name, name_start = _name_before(text, match.start(), 4)
        if name:
            found.update(name[-n:] + match.group() for n in {len(name), 2, 3} if n <= len(name))
            blank[name_start:match.end()] = [True] * (match.end() - name_start)
    return frozenset(found), _blanked(text, blank)


def _site_mentions(text: str, vocab: Vocabulary) -> tuple[str, ...]:
    """Names of estates, sites, works and schools (锦绣华庭小区 -> 锦绣华庭, 阳光花园小区 ->
    阳光 and 阳光花园). They stay in the text: where a name starts is a guess, and a
    wrong guess must not swallow what the dispute is about (鱼塘因上游纸厂)."""
    names = (_name_before(text, match.start(), _SITE_NAME_MAX)[0] for match in vocab.site_pattern.finditer(text))
    # A common word is no name (并且小区, 目前小区): proper names are rarer words, or unknown.
    found = [n for n in names if len(n) >= 2 and vocab.idf.get(n, 99) >= _NAME_MIN_IDF]
    # Companies and the like (盛远物流公司 -> 盛远物流): only a name jieba does not know is
    # taken, since 物业公司 or 建筑公司 name a kind, not a firm.
    for match in vocab.organisation_pattern.finditer(text):
        name = _name_before(text, match.start(), _SITE_NAME_MAX)[0]
        if len(name) >= 2 and name not in vocab.idf and vocab.idf.get(name[:2], 99) >= vocab.rare_idf:
            found.append(name)
    return tuple(dict.fromkeys(found))


def _name_before(text: str, end: int, longest: int) -> tuple[str, int]:
    """The proper name that ends at `end`, and where it starts.

    Reads back over Chinese characters, stopping at function words (在, 的, 反映 …);
    keeps what follows the last administrative word (卞庄街道金色家园 -> 金色家园), or
    the township itself when nothing follows (长城镇中学 -> 长城), and drops a counting
    prefix (上游一家化工厂 -> 化工).
    """
    start = end
    while start > max(0, end - longest) and _CJK.match(text[start - 1]) and text[start - 1] not in _MENTION_STOP:
        start -= 1
    if start < end and text[end - 1] in _COUNTING:
        return "", end  # 一小区, 该工地: "a"/"that" estate, not a name
    parts = _ADMIN_WORDS.split(text[start:end])
    name = parts[-1] or (parts[-2] if len(parts) > 1 else "")
    for prefix in _NAME_PREFIXES:
        name = name.rpartition(prefix)[2]
    return name, (text.rfind(name, start, end) if name else end)


def _blanked(text: str, blank: list[bool]) -> str:
    return "".join(" " if hidden else char for char, hidden in zip(text, blank))


def _people_named(words: Sequence[str]) -> tuple[str, ...]:
    """People a text names, read off jieba's cut: a common surname that stands alone (jieba
    knows no word it starts) followed by one or two single characters (姜/宝/刚 -> 姜宝刚),
    or by 某 (李某, 李某某 -> 李某). Complainants' names were scrubbed before; what is left
    is mostly the other side."""
    people = []
    for i, word in enumerate(words):
        if word not in _SURNAMES or (i and words[i - 1] in _BEFORE_NO_NAME):
            continue
        given = ""
        for nxt in words[i + 1:i + 3]:
            if len(nxt) == 1 and _CJK.match(nxt) and nxt not in _NOT_IN_NAMES:
                given += nxt
                if nxt == "某":
                    break
                continue
            if len(nxt) == 2 and nxt[1] in _NOT_IN_NAMES and nxt[0] not in _NOT_IN_NAMES and _CJK.match(nxt[0]):
                given += nxt[0]  # 段/金家 -> 段金, 彭/建/国家 -> 彭建国
            break
        if given.startswith("某"):
            people.append(word + "某")
        elif given and "某" not in given:
            people.append(word + given[:2])
    return tuple(dict.fromkeys(people))


def _people_agree(a: Sequence[str], b: Sequence[str]) -> str | None:
    """A person both texts name, or None: full names must be equal; a masked name (李某)
    agrees with any name of its surname."""
    for x in a:
        for y in b:
            if x == y or (x[0] == y[0] and ("某" in x or "某" in y)):
                return x if "某" not in x else y
    return None


def _named_is_party(people: Sequence[str], other: MergeProfile) -> str | None:
    """A person one text names in full who is a party or complainant of the other report."""
    for name in people:
        if "某" not in name and privacy.keyed_hash(name, "name") in other.person_names:
            return name
    return None


def _quantities_differ(a: Sequence[str], b: Sequence[str]) -> list[str]:
    """Amounts of one unit that both texts state and none of which agree (42人 vs 17人)."""
    def by_unit(values):
        out: dict[str, set[float]] = {}
        for value in values:
            number, unit = _NUMBER_UNIT.match(value).groups()
            out.setdefault(unit, set()).add(float(number))
        return out

    mine, theirs = by_unit(a), by_unit(b)
    differ = []
    for unit in mine.keys() & theirs.keys():
        close = any(abs(x - y) <= 0.1 * max(x, y) for x in mine[unit] for y in theirs[unit])
        if not close:
            differ.append(f"{'/'.join(f'{x:g}' for x in sorted(mine[unit]))} vs "
                          f"{'/'.join(f'{y:g}' for y in sorted(theirs[unit]))} {unit}")
    return differ


_NUMBER_UNIT = re.compile(r"([\d.]+)(.+)")


def _same_site(a: Sequence[str], b: Sequence[str]) -> str | None:
    """A site both texts name: at least half the shorter name's character pairs agree."""
    for x in a:
        for y in b:
            pairs_x, pairs_y = _bigrams(x), _bigrams(y)
            if len(pairs_x & pairs_y) * 2 >= min(len(pairs_x), len(pairs_y)):
                return x if len(x) <= len(y) else y
    return None


def _bigrams(name: str) -> set[str]:
    return {name[i:i + 2] for i in range(len(name) - 1)}


def text_similarity(a: TextFeatures, b: TextFeatures, topic_factor: float) -> tuple[float, list[str]]:
    """How alike two texts are (0..1), and the words they share, heaviest first.

    The larger of the weighted cosine of all their words and `topic_factor` times the
    weighted Jaccard of their dispute words: paraphrases share few ordinary words but
    name the same dispute (停水 / 吃水困难 / 供水管道坏了 are all 自来水).
    """
    if not a.norm or not b.norm:
        return 0.0, []
    shared = sorted(a.weights.keys() & b.weights.keys(), key=lambda w: (-a.weights[w], w))
    cosine = sum(a.weights[w] ** 2 for w in shared) / (a.norm * b.norm)
    if not (topic_factor and a.strong_topics and b.strong_topics):
        return cosine, shared
    weight = {**b.weights, **a.weights}
    jaccard = sum(weight[w] for w in a.topics & b.topics) / sum(weight[w] for w in a.topics | b.topics)
    return max(cosine, topic_factor * jaccard), shared


# --- blocking keys ---------------------------------------------------------------


def merge_keys(profile: MergeProfile, config: MergeConfig = MergeConfig()) -> set[str]:
    """The blocking keys to store for this case and to look candidates up with.

    p: a person (phone / ID hash)       n: a name within a township
    m: a MinHash band of the text       t: two of its dispute words, within a township
    v: a dispute word within a village  s: a site name's character pair, within a township
    w: one of its rarest words, within a township
    """
    scope = profile.township or "-"
    features = profile_features(profile, config)
    top = features.salient
    keys = {f"p:{digest[:24]}" for digest in profile.person_ids}
    keys |= {f"n:{scope}:{digest[:24]}" for digest in profile.person_names}
    compact = _NOT_TEXT.sub("", _normalised(profile.comparable_text, vocabulary(config.rules_path)))
    shingles = {compact[i:i + _SHINGLE] for i in range(len(compact) - _SHINGLE + 1)}
    keys |= {f"m:{scope}:{band}" for band in _lsh_bands(shingles, config.lsh_bands, config.lsh_rows)}
    keys |= {f"t:{scope}:{a}+{b}" for a, b in combinations(sorted(top[: config.pair_keywords]), 2)}
    villages = {profile.village, profile.village_name} - {None}
    villages |= set(sorted(features.villages, key=lambda v: (-len(v), v))[:3])
    keys |= {f"v:{village}:{word}" for village in villages for word in top[: config.village_keywords]}
    keys |= {f"s:{scope}:{pair}" for site in features.sites[:2] for pair in sorted(_bigrams(site))[:4]}
    keys |= {f"w:{scope}:{word}" for word in features.rare[: config.rare_keywords]}
    return keys


@lru_cache(maxsize=4)
def _empty_minhash(num_perm: int) -> MinHash:
    """Generating the permutations costs more than hashing a text: do it once, then copy."""
    return MinHash(num_perm=num_perm, seed=1)


def _lsh_bands(shingles: set[str], bands: int, rows: int) -> list[str]:
    """MinHash of the character 3-grams, cut into bands: near-identical texts share a band."""
    if not shingles:
        return []
    minhash = _empty_minhash(bands * rows).copy()
    minhash.update_batch([s.encode("utf-8") for s in sorted(shingles)])
    values = minhash.hashvalues.astype("<u8")
    return [
        f"{band}:{hashlib.blake2b(values[band * rows:(band + 1) * rows].tobytes(), digest_size=8).hexdigest()}"
        for band in range(bands)
    ]


# --- scoring ---------------------------------------------------------------------


def score(new: MergeProfile, existing: MergeProfile, config: MergeConfig = MergeConfig()) -> Match:
    """How sure we are that `new` reports the dispute of `existing`, and why."""
    vocab = vocabulary(config.rules_path)
    rules, weights = vocab.rules, vocab.rules["evidence"]
    new_text = profile_features(new, config)
    old_text = profile_features(existing, config)
    matched: dict = {}
    reasons: list[str] = []
    adjustment = 0.0

    same_ids = new.person_ids & existing.person_ids
    same_names = new.person_names & existing.person_names
    townships_differ = bool(new.township and existing.township and new.township != existing.township)
    if same_ids:
        adjustment += weights["same_person"]
        for digest in sorted(same_ids):
            kind, shown = _shown(digest, new, existing, "id")
            matched[kind] = shown
            reasons.append(f"same {kind.replace('_', ' ')} {shown}")
    elif same_names and not townships_differ:
        adjustment += weights["same_name"]
        _, shown = _shown(min(same_names), new, existing, "name")
        matched["name"] = shown
        reasons.append(f"same name {shown}")
    elif len(new.person_names) >= 2 and len(existing.person_names) >= 2:
        adjustment += weights["party_conflict"]
        reasons.append("different parties")
    person_evidence = bool(same_ids or same_names)
    # A private dispute (family, neighbours, a debt) reported by other identified people is
    # almost always another dispute of the same kind: villages have many at once.
    if not person_evidence and new.person_ids and existing.person_ids and weights.get("private_other_people"):
        strong = (new_text.strong_topics | old_text.strong_topics)
        if strong and strong <= vocab.private_terms:
            adjustment += weights["private_other_people"]
            reasons.append("other people, private dispute")

    place = 0.0
    if new.grid and new.grid == existing.grid:
        place += weights["same_grid"]
        matched["grid"] = new.grid
        reasons.append(f"same grid {new.grid}")
    same_village = _same_village(new, new_text, existing, old_text)
    if same_village:
        place += weights["same_village"]
        matched["village"] = same_village
        reasons.append(f"same village {same_village}")
    elif same_village is not None:
        adjustment += weights["village_conflict"]
        reasons.append("different villages")
    if new_text.sites and old_text.sites:
        site = _same_site(new_text.sites, old_text.sites)
        if site:
            place += weights["same_site"]
            matched["site"] = site
            reasons.append(f"same site {site}")
        else:
            adjustment += weights["site_conflict"]
            reasons.append("different sites")
    if _same_address(new.address, existing.address):
        place += weights["same_address"]
        matched["address"] = "similar"
        reasons.append("similar address")
    adjustment += max(place, rules["place_credit_cap"])
    if townships_differ:
        adjustment += weights["township_conflict"]
        reasons.append("different townships")
    elif new.township and new.township == existing.township:
        adjustment += weights["same_township"]
        matched["township"] = new.township

    if new_text.people and old_text.people:
        person = _people_agree(new_text.people, old_text.people) or _named_is_party(new_text.people, existing) \
            or _named_is_party(old_text.people, new)
        if person:
            adjustment += weights.get("same_person_named", 0.0)
            matched["person_named"] = person[0] + "某"
            reasons.append(f"both name {person[0]}某")
        elif not same_ids:
            adjustment += weights.get("people_named_conflict", 0.0)
            reasons.append("they name different people")
    amounts = _quantities_differ(new_text.quantities, old_text.quantities)
    if amounts and not same_ids:
        adjustment += weights.get("quantity_conflict", 0.0)
        reasons.append(f"different amounts: {'; '.join(amounts)}")

    if new_text.strong_topics and old_text.strong_topics and not new_text.strong_topics & old_text.strong_topics:
        adjustment += weights.get("topic_mismatch", 0.0)
        reasons.append("no dispute word in common")

    conflicts = vocab.exclusive_conflicts(new_text.topics, old_text.topics)
    if conflicts:
        adjustment += weights["topic_conflict"]
        reasons.append(f"different {', '.join(conflicts)}")

    # Naming the same kind of dispute means little across a township (it has many noise
    # complaints at once): it counts only with the same people or the same small place,
    # and for a private dispute (family, neighbours) only with the same people.
    shared_topics = new_text.topics & old_text.topics - vocab.weak_terms
    if person_evidence:
        factor = rules["topic_factor"]
    elif place < 0 and shared_topics - vocab.private_terms:
        factor = rules["topic_factor"]
    elif place < 0:
        factor = rules["private_topic_factor"]
    else:
        factor = 0.0
    similarity, shared = text_similarity(new_text, old_text, factor)
    required = max(rules["floor"], rules["required_similarity"] + adjustment)
    value = min(1.0, max(0.0, 0.5 + similarity - required))
    matched["text_similarity"] = round(similarity, 3)
    words = [w for w in shared if w in vocab.canonical_terms or w in vocab.idf][:6]
    reasons.append(
        f"text similarity {similarity:.2f} (needed {required:.2f})" + (f": {', '.join(words)}" if words else "")
    )
    return Match(existing.case_no, round(value, 4), round(similarity, 4), round(required, 4), matched, reasons)


def _same_village(new: MergeProfile, new_text: TextFeatures, old: MergeProfile, old_text: TextFeatures):
    """The village both are in; "" if they name different villages; None if unknown.

    Directory codes decide when both have one; else the names: as written by the
    source, or as the texts mention them.
    """
    if new.village and old.village:
        return new.village if new.village == old.village else ""
    new_names = new_text.villages | ({new.village_name} if new.village_name else set())
    old_names = old_text.villages | ({old.village_name} if old.village_name else set())
    if new_names & old_names:
        return new.village_name if new.village_name in old_names else max(new_names & old_names, key=len)
    return "" if new_names and old_names else None


def _shown(digest: str, new: MergeProfile, existing: MergeProfile, default_kind: str) -> tuple[str, str]:
    kind, _, shown = (new.masked.get(digest) or existing.masked.get(digest) or f"{default_kind}:(hash)").partition(":")
    return kind, shown


def _same_address(a: str | None, b: str | None) -> bool:
    if not a or not b:
        return False
    a, b = (_NOT_TEXT.sub("", unicodedata.normalize("NFKC", x)) for x in (a, b))
    return min(len(a), len(b)) >= 6 and fuzz.partial_ratio(a, b) >= 90


def best_match(
    new: MergeProfile, candidates: Sequence[MergeProfile], config: MergeConfig = MergeConfig()
) -> Match | None:
    """The open case within the window that this report repeats, or None."""
    window_start = new.opened_at - timedelta(days=config.window_days)
    best: tuple[float, float, Match] | None = None
    for candidate in candidates:
        if (
            candidate.case_no == new.case_no
            or candidate.status not in config.open_statuses
            or candidate.opened_at < window_start
        ):
            continue
        match = score(new, candidate, config)
        if match.score < config.threshold:
            continue
        rank = (match.score, -candidate.opened_at.timestamp())
        if best is None or rank > best[:2]:
            best = (*rank, match)
    return best[2] if best else None


def warm_up(config: MergeConfig = MergeConfig()) -> None:
    """Load jieba's dictionary and the rules now (about a second), not on the first case."""
    jieba.initialize()
    vocabulary(config.rules_path)
