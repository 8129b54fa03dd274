"""Deadlines in Chinese working days: holidays, make-up workdays, the 2027 fallback, calendar days."""
from __future__ import annotations

import logging
from datetime import date, datetime, timedelta, timezone

import chinese_calendar
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.mediation import deadlines
from services.mediation.deadlines import SHANGHAI, LimitTable, Period, WorkingCalendar

RULES = deadlines.RULES_DIR


def local(y, m, d, hh=10, mm=0):
    return datetime(y, m, d, hh, mm, tzinfo=SHANGHAI)


def close_local(y, m, d):
    """17:30 Shanghai as the aware UTC instant a deadline is returned as."""
    return datetime(y, m, d, 17, 30, tzinfo=SHANGHAI).astimezone(timezone.utc)


@pytest.fixture
def calendar():
    # A fresh calendar per test, so the once-per-year warning is observable.
    return WorkingCalendar.from_files(RULES / "holidays.yaml", RULES / "limits.yaml")


def test_official_calendar_facts_the_tests_rely_on():
    workday = chinese_calendar.is_workday
    assert all(not workday(date(2026, 2, d)) for d in range(15, 24))           # Spring Festival 2026
    assert workday(date(2026, 2, 14)) and workday(date(2026, 2, 28))           # make-up Saturdays
    assert all(not workday(date(2025, 10, d)) for d in range(1, 9))            # National Day 2025
    assert workday(date(2025, 9, 28)) and workday(date(2025, 10, 11))          # make-up Sunday, Saturday
    assert all(not workday(date(2026, 10, d)) for d in range(1, 8))            # National Day 2026
    assert workday(date(2026, 9, 20)) and workday(date(2026, 10, 10))
    assert all(not workday(date(2026, 9, d)) for d in (25, 26, 27))            # Mid-Autumn 2026
    with pytest.raises(NotImplementedError):
        workday(date(2027, 1, 4))                                              # why the fallback exists


@pytest.mark.parametrize("n, expected", [
    (1, (2026, 2, 13)),   # Friday
    (2, (2026, 2, 14)),   # make-up Saturday counts
    (3, (2026, 2, 24)),   # Feb 15-23 are skipped
    (7, (2026, 2, 28)),   # make-up Saturday again
    (8, (2026, 3, 2)),
])
def test_working_days_across_spring_festival_2026(calendar, n, expected):
    assert calendar.add_working_days(local(2026, 2, 12), n) == close_local(*expected)


def test_start_inside_the_holiday_counts_from_the_first_day_back(calendar):
    assert calendar.add_working_days(local(2026, 2, 16), 1) == close_local(2026, 2, 24)
    assert calendar.add_working_days(local(2026, 2, 16), 0) == close_local(2026, 2, 24)


def test_same_working_day_means_today_until_closing_time(calendar):
    assert calendar.add_working_days(local(2026, 2, 12, 10), 0) == close_local(2026, 2, 12)
    assert calendar.add_working_days(local(2026, 2, 12, 18), 0) == close_local(2026, 2, 13)
    assert calendar.add_working_days(local(2026, 2, 13, 23), 0) == close_local(2026, 2, 14)


@pytest.mark.parametrize("n, expected", [
    (1, (2025, 9, 28)), (2, (2025, 9, 29)), (3, (2025, 9, 30)),
    (4, (2025, 10, 9)),    # Oct 1-8 off (National Day with Mid-Autumn)
    (5, (2025, 10, 10)),
    (6, (2025, 10, 11)),   # make-up Saturday
    (7, (2025, 10, 13)),
])
def test_working_days_across_national_day_2025(calendar, n, expected):
    assert calendar.add_working_days(local(2025, 9, 26), n) == close_local(*expected)


@pytest.mark.parametrize("n, expected", [
    (1, (2026, 9, 20)),    # make-up Sunday
    (5, (2026, 9, 24)),
    (6, (2026, 9, 28)),    # Mid-Autumn Sep 25-27 off
    (8, (2026, 9, 30)),
    (9, (2026, 10, 8)),    # National Day Oct 1-7 off
    (11, (2026, 10, 10)),  # make-up Saturday
    (12, (2026, 10, 12)),
])
def test_working_days_across_national_day_2026(calendar, n, expected):
    assert calendar.add_working_days(local(2026, 9, 18), n) == close_local(*expected)


def test_deadlines_are_utc_at_the_local_close_of_business(calendar):
    due = calendar.add_working_days(local(2026, 3, 2), 1)
    assert due.tzinfo == timezone.utc
    assert (due.hour, due.minute) == (9, 30)
    assert due.astimezone(SHANGHAI).strftime("%Y-%m-%d %H:%M") == "2026-03-03 17:30"


def test_a_utc_instant_late_in_the_evening_is_already_the_next_local_day(calendar):
    # 2026-02-12 17:00 UTC is Feb 13 01:00 in Lanling: one working day later is the make-up Saturday.
    start = datetime(2026, 2, 12, 17, 0, tzinfo=timezone.utc)
    assert calendar.add_working_days(start, 1) == close_local(2026, 2, 14)


def test_naive_datetimes_are_refused(calendar):
    with pytest.raises(ValueError, match="naive"):
        calendar.add_working_days(datetime(2026, 3, 2, 10), 1)


def test_working_days_between_counts_days_after_the_start(calendar):
    assert calendar.working_days_between(local(2026, 2, 12), local(2026, 2, 28)) == 7
    assert calendar.working_days_between(local(2026, 2, 28), local(2026, 2, 12)) == -7
    assert calendar.working_days_between(local(2026, 2, 15), local(2026, 2, 23)) == 0


@settings(max_examples=60, deadline=None)
@given(start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2026, 10, 1),
                          timezones=st.just(timezone.utc)),
       n=st.integers(min_value=1, max_value=40))
def test_working_days_between_inverts_add_working_days(start, n):
    calendar = deadlines.default_calendar()
    due = calendar.add_working_days(start, n)
    assert calendar.working_days_between(start, due) == n
    assert calendar.is_working_day(due.astimezone(SHANGHAI).date())


def test_working_time_counts_office_hours_on_working_days_only(calendar):
    # Thu 10:00 -> Tue after Spring Festival 10:00: 7.5 h + Fri 9 h + make-up Sat 9 h + 1.5 h.
    assert calendar.working_time_between(local(2026, 2, 12), local(2026, 2, 24)) == timedelta(hours=27)
    assert calendar.add_working_time(local(2026, 2, 12), timedelta(hours=27)) == local(2026, 2, 24)
    assert calendar.add_working_time(local(2026, 2, 12, 20), timedelta(hours=1)) == local(2026, 2, 13, 9, 30)


# --- calendar days (信访) -----------------------------------------------------------------

def test_calendar_days_count_holidays(calendar):
    # 15 calendar days from Feb 10 2026 run straight through Spring Festival.
    assert calendar.add_calendar_days(local(2026, 2, 10), 15) == close_local(2026, 2, 25)
    # 15 working days: Feb 11-14 (4, with the make-up Saturday), Feb 24-28 (5), Mar 2-6 (5), Mar 9.
    assert calendar.add_working_days(local(2026, 2, 10), 15) == close_local(2026, 3, 9)


def test_petition_limit_ending_on_a_holiday_rolls_to_the_next_working_day(calendar):
    # Aug 2 + 60 days = Oct 1 2026 (National Day): 民法典 第二百零三条 moves it to Oct 8.
    assert calendar.add_calendar_days(local(2026, 8, 2), 60) == close_local(2026, 10, 8)
    strict = WorkingCalendar(roll_forward=False)
    assert strict.add_calendar_days(local(2026, 8, 2), 60) == close_local(2026, 10, 1)


def test_petition_limits_use_calendar_days():
    limits = deadlines.limits_for("township", "chain", "petition")
    assert limits.handling == Period(60, "calendar")
    assert limits.extension == Period(30, "calendar")
    assert limits.sign_off == Period(1, "working")
    assert limits.handling.after(local(2026, 2, 12), deadlines.default_calendar()) == close_local(2026, 4, 13)


# --- years the library does not know ------------------------------------------------------

def test_2027_uses_the_county_file_and_warns_once(calendar, caplog):
    caplog.set_level(logging.WARNING, logger="services.mediation.deadlines")
    # Dec 31 2026 (library) -> Jan 1-3 2027 off (county file) -> Jan 4, Jan 5.
    assert calendar.add_working_days(local(2026, 12, 30), 3) == close_local(2027, 1, 5)
    # Provisional Spring Festival 2027: Feb 5-13 off, Sunday Feb 14 a make-up workday.
    assert calendar.add_working_days(local(2027, 2, 4), 1) == close_local(2027, 2, 14)
    assert calendar.add_working_days(local(2027, 10, 8), 1) == close_local(2027, 10, 9)
    warnings = [r for r in caplog.records if "2027" in r.getMessage()]
    assert len(warnings) == 1
    assert "PROVISIONAL" in warnings[0].getMessage()


def test_a_year_nobody_knows_is_monday_to_friday_and_never_raises(calendar, caplog):
    caplog.set_level(logging.WARNING, logger="services.mediation.deadlines")
    # Fri Jan 5 2035 + 1 working day = Mon Jan 8 (New Year is unknown, so not off).
    assert calendar.add_working_days(local(2035, 1, 5), 1) == close_local(2035, 1, 8)
    assert calendar.is_working_day(date(2035, 1, 1))
    calendar.add_working_days(local(2035, 3, 1), 10)
    assert [r.getMessage() for r in caplog.records if "2035" in r.getMessage()] == [
        "chinese-calendar has no data for 2035 and rules/holidays.yaml has no entry: "
        "counting Monday-Friday only; add the year to holidays.yaml"]


def test_holiday_file_ranges_and_single_dates(tmp_path):
    holidays = tmp_path / "holidays.yaml"
    holidays.write_text("2030:\n  provisional: false\n  source: test\n"
                        "  days_off: [2030-01-01..2030-01-03, 2030-02-04]\n"
                        "  makeup_workdays: [2030-01-05]\n", encoding="utf-8")
    calendar = WorkingCalendar.from_files(holidays)
    assert [calendar.is_working_day(date(2030, 1, d)) for d in range(1, 7)] == [
        False, False, False, True, True, False]  # Tue-Thu off, Fri on, Sat made up, Sun off
    assert not calendar.is_working_day(date(2030, 2, 4))


# --- the limits table -------------------------------------------------------------------------

@pytest.mark.parametrize("level, mechanism, channel, dispute_type, sign_off, handling, extension, basis", [
    ("grid", "supermarket", "grid", None, "0 working days", "0 working days", None, ("base", "grid")),
    ("village", "chain", "app", None, "1 working days", "2 working days", "2 working days", ("base", "village")),
    ("township", "chain", "walkin", None, "1 working days", "7 working days", "7 working days", ("base", "township")),
    ("county", "supermarket", "app", None, "1 working days", "15 working days", "15 working days", ("base", "county")),
    ("county", "specialised", "app", "劳动争议", "1 working days", "15 calendar days", "15 calendar days",
     ("base", "county", "specialised", "labour_dispute")),
    ("county", "specialised", "app", "医疗纠纷", "1 working days", "30 working days", "30 working days",
     ("base", "county", "specialised", "medical_dispute")),
    ("township", "joint", "app", None, "1 working days", "30 working days", "15 working days",
     ("base", "township", "joint")),
    ("township", "chain", "hotline", None, "1 working days", "5 working days", "10 working days",
     ("base", "township", "hotline_channel")),
    ("county", "joint", "petition", None, "1 working days", "60 calendar days", "30 calendar days",
     ("base", "county", "joint", "petition_channel")),
    ("township", "chain", "opinion", None, "0 working days", "7 working days", "7 working days",
     ("base", "township", "opinion_channel")),
])
def test_limits_table(level, mechanism, channel, dispute_type, sign_off, handling, extension, basis):
    limits = deadlines.limits_for(level, mechanism, channel, dispute_type)
    assert (str(limits.sign_off), str(limits.handling)) == (sign_off, handling)
    assert (str(limits.extension) if limits.extension else None) == extension
    assert limits.basis == basis


def test_statutory_channels_do_not_restart_the_clock_on_reassignment():
    assert not deadlines.limits_for("township", "chain", "petition").restart_on_reassignment
    assert not deadlines.limits_for("township", "chain", "hotline").restart_on_reassignment
    assert deadlines.limits_for("township", "chain", "app").restart_on_reassignment


def test_every_rule_explains_itself():
    table = deadlines.default_limits()
    assert all(rule.why for rule in table.rules)
    reasons = dict(table.reasons(deadlines.limits_for("county", "chain", "petition")))
    assert "信访工作条例" in reasons["petition_channel"]


def test_a_rule_on_an_unknown_key_is_refused(tmp_path):
    limits = tmp_path / "limits.yaml"
    limits.write_text("base: {sign_off: 1 working days, handling: 7 working days, extension: null,"
                      " max_extensions: 0, restart_on_reassignment: true}\n"
                      "rules:\n  - {name: x, when: {levle: grid}, set: {handling: 1 working days}}\n",
                      encoding="utf-8")
    with pytest.raises(ValueError, match="levle"):
        LimitTable.from_file(limits)


def test_periods_must_say_their_unit():
    assert Period.parse("3 working days") == Period(3, "working")
    assert Period.parse("1 calendar day") == Period(1, "calendar")
    with pytest.raises(ValueError):
        Period.parse("3 days")
