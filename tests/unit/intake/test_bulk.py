"""The benchmark's stored cases (services/intake/bulk.py) are what the service would store:
a year of dates, about a tenth open inside the merge window and indexed, repeats findable."""
from __future__ import annotations

from datetime import timedelta

from sqlalchemy import func, select

from services.intake import bulk, canonical, handlers
from services.intake.merge import profile_from_case
from services.intake.models import Case, CaseSequence, MergeKey, MergeProfileRow, Source
from services.intake.synthetic import Generator
from tests.unit.intake.conftest import NOW, PLACES


def test_a_small_load_looks_like_a_county_s_year_and_its_open_cases_are_indexed(intake):
    loader = bulk.BulkLoader(intake.db, PLACES, now=NOW, seed=5, processes=1)
    assert loader.load(400) == 400
    with intake.db.reading() as session:
        dates = session.execute(select(func.min(Case.accepted_at), func.max(Case.accepted_at))).one()
        open_cases = session.scalar(select(func.count()).select_from(Case).where(Case.status == "open"))
        indexed = session.scalar(select(func.count(func.distinct(MergeKey.case_no))))
        profiles = session.scalar(select(func.count()).select_from(MergeProfileRow))
        open_sources = session.scalar(select(func.count()).select_from(Source).join(Case).where(Case.status == "open"))
        last_numbers = dict(session.execute(select(CaseSequence.day, CaseSequence.last)).all())
    assert NOW - dates[0] > timedelta(days=300) and dates[1] <= NOW
    assert 20 <= open_cases <= 80 and indexed == open_cases and profiles == open_sources
    assert sum(last_numbers.values()) == 400  # live case numbers continue after the loaded ones
    # a repeat of a loaded open dispute, written anew, finds its case through the index
    places = canonical.StaticPlaces(PLACES["townships"], PLACES["villages"], PLACES["grids"])
    found = 0
    recent = [d for d in loader.open_disputes if d.received_at > NOW - timedelta(days=25)][:10]
    for known in recent:
        channel = loader.generator.channel_for(known.dispute, exclude=("grid", "opinion"))
        payload = loader.generator.submission(known.dispute, channel, NOW - timedelta(minutes=5), first=True)
        from services.contracts.channels import load_submission

        case = canonical.to_canonical(channel, load_submission(channel, payload, NOW), places, NOW)
        with intake.db.reading() as session:
            match = handlers.find_merge_match(session, profile_from_case("", case))
        found += match is not None and match.case_no == known.case_no
    assert found >= len(recent) * 0.6


def test_generated_reports_are_valid_for_their_channel_and_word_a_dispute_differently():
    from services.contracts.channels import load_submission

    generator = Generator(PLACES, seed=1)
    places = canonical.StaticPlaces(PLACES["townships"], PLACES["villages"], PLACES["grids"])
    texts = set()
    for _ in range(30):
        dispute = generator.dispute()
        for channel in ("hotline", "petition", "opinion", "app", "walkin") + (("grid",) if dispute.grid else ()):
            payload = generator.submission(dispute, channel, NOW - timedelta(hours=1))
            case = canonical.to_canonical(channel, load_submission(channel, payload, NOW), places, NOW)
            assert case["township"] == dispute.township["code"]
            texts.add(case["content"])
    assert len(texts) > 150
