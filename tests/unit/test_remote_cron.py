"""Cron translation per backend: KFP 6 fields seconds-first (UTC), Vertex `TZ=` prefix; validated with croniter."""

from __future__ import annotations

import datetime as dt
from zoneinfo import ZoneInfo

import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from kubepipe.spec.cron import CronError, kfp_cron, normalize_cron, split_tz, vertex_cron
from kubepipe.spec.fire_times import next_fire_times, prev_fire_time


def test_daily_at_two_becomes_kfp_seconds_first():
    assert kfp_cron("0 2 * * *") == "0 0 2 * * *"


def test_the_naive_five_field_form_would_run_hourly_on_kfp():
    # What KFP does with an untranslated `0 2 * * *`: second=0 minute=2 of EVERY hour.
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    naive = croniter("0 2 * * * *", start, second_at_beginning=True)
    fixed = croniter(kfp_cron("0 2 * * *"), start, second_at_beginning=True)
    assert [naive.get_next(dt.datetime).hour for _ in range(3)] == [0, 1, 2]
    assert [fixed.get_next(dt.datetime).strftime("%d %H:%M:%S") for _ in range(2)] == ["01 02:00:00", "02 02:00:00"]


@pytest.mark.parametrize("five, six", [
    ("*/15 * * * *", "0 */15 * * * *"),
    ("0 3 * * 1", "0 0 3 * * 1"),
    ("0 3 * * 7", "0 0 3 * * 0"),  # Vixie Sunday=7 -> robfig 0
    ("0 3 * * 5-7", "0 0 3 * * 0,5,6"),
    ("0 3 * * MON-FRI", "0 0 3 * * 1-5"),
    ("@daily", "0 0 0 * * *"),
    ("@weekly", "0 0 0 * * 0"),
])
def test_kfp_translation_keeps_the_same_fire_times(five, six):
    assert kfp_cron(five) == six
    start = dt.datetime(2026, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
    a = croniter(normalize_cron(five), start)
    b = croniter(six, start, second_at_beginning=True)
    assert [a.get_next(dt.datetime) for _ in range(5)] == [b.get_next(dt.datetime) for _ in range(5)]


def test_vertex_gets_a_tz_prefix():
    assert vertex_cron("0 3 * * 1", "Europe/Stockholm") == "TZ=Europe/Stockholm 0 3 * * 1"
    assert vertex_cron("0 3 * * 1", None) == "TZ=UTC 0 3 * * 1"
    assert split_tz("TZ=Europe/Stockholm 0 3 * * 1") == ("0 3 * * 1", "Europe/Stockholm")


def test_kfp_converts_fixed_offset_zones_and_refuses_daylight_saving_zones():
    assert kfp_cron("30 1 * * 1", "Asia/Kolkata") == "0 0 20 * * 0"  # 01:30 IST Monday = 20:00 UTC Sunday
    assert kfp_cron("0 12 * * *", "Asia/Tokyo") == "0 0 3 * * *"
    with pytest.raises(CronError, match="daylight saving.*write the schedule in UTC"):
        kfp_cron("0 3 * * 1", "Europe/Stockholm")
    with pytest.raises(CronError, match="cannot be shifted"):
        kfp_cron("0 3 1 * *", "Asia/Tokyo")  # day-of-month would move to the previous day
    assert kfp_cron("0 3 2 * *", "Asia/Tokyo") == "0 0 18 1 * *"  # ... unless it stays inside the month


def test_steps_in_a_half_hour_zone_are_refused_not_collapsed():
    # 02:05, 02:20, 02:35, 02:50 IST straddle a UTC hour: 20:35, 20:50, 21:05, 21:20 is no minute x hour.
    with pytest.raises(CronError, match="cannot be shifted") as exc:
        kfp_cron("5/15 2 * * *", "Asia/Kolkata")
    assert exc.value.field == "cron"
    assert kfp_cron("5/15 2 * * *", "UTC") == "0 5-50/15 2 * * *"
    assert kfp_cron("0 2,3 * * *", "Asia/Kolkata") == "0 30 20,21 * * *"


@pytest.mark.parametrize("bad, message", [
    ("0 2 * * * *", "expected 5 fields, got 6.*kubepipe adds KFP's seconds field"),
    ("0 25 * * *", "not a valid cron"),
    ("0 0 30 2 *", "never fires"),
    ("0 0 1 * 1#2", "not portable"),
    ("0 2 L * *", "not portable"),
    ("@reboot", "not supported"),
])
def test_bad_cron_is_named(bad, message):
    with pytest.raises(CronError, match=message):
        kfp_cron(bad)


@pytest.mark.parametrize("bad, message", [  # it said only "... is not a valid cron expression"
    ("61 * * * *", "schedule.cron: '61 * * * *' is not a valid cron expression: the minute field '61' is not valid; "
                   "minute takes 0-59, `*`, ranges `a-b`, steps `/n` and lists"),
    ("0 0 * 13 *", "schedule.cron: '0 0 * 13 *' is not a valid cron expression: the month field '13' is not valid; "
                   "month takes 1-12 or JAN-DEC, `*`, ranges `a-b`, steps `/n` and lists"),
    ("*/0 * * * *", "schedule.cron: '*/0 * * * *' is not a valid cron expression: the minute field '*/0' is not "
                    "valid; minute takes 0-59, `*`, ranges `a-b`, steps `/n` and lists"),
    # a mistyped name is not "syntax not portable to KFP/Vertex (L, W, #, ?, H)"
    ("0 3 * * MOM", "schedule.cron: field 'MOM' in '0 3 * * MOM': unknown name 'MOM'; did you mean `MON`?"),
    # croniter took a reversed range's end unchecked: `1-0` was every day, `12-0` December alone
    ("0 0 1-0 * *", "schedule.cron: '0 0 1-0 * *' is not a valid cron expression: the day-of-month field '1-0' is "
                    "not valid; day-of-month takes 1-31, `*`, ranges `a-b`, steps `/n` and lists"),
    ("0 0 * 12-0 *", "schedule.cron: '0 0 * 12-0 *' is not a valid cron expression: the month field '12-0' is not "
                     "valid; month takes 1-12 or JAN-DEC, `*`, ranges `a-b`, steps `/n` and lists"),
    # `*/90` (every 90 minutes, which no cron is) ran hourly at :00
    ("*/90 * * * *", "schedule.cron: '*/90 * * * *': the minute step /90 is longer than the field's whole cycle "
                     "(60), so it fires at the range's first value alone, once per cycle; cron steps within one field "
                     "(0-59) and cannot count 90 across it (every 90 minutes is no single cron); use a step of at most "
                     "60, or list the values"),
])
def test_a_bad_cron_names_the_field_at_fault(bad, message):
    with pytest.raises(CronError) as exc:
        kfp_cron(bad)
    assert str(exc.value) == message


@pytest.mark.parametrize("cron", ["0 0 * * 7-1", "50-10 * * * *", "*/60 * * * *", "0 */24 * * *", "0 0 * * 0-7",
                                  "0 0 */31 * *", "0-30/45 * * * *"])
def test_wrapping_ranges_and_steps_of_a_whole_cycle_still_fire_as_croniter_says(cron):
    start = dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc)
    it = croniter(cron, start)
    assert next_fire_times(cron, "UTC", start, 20) == [it.get_next(dt.datetime) for _ in range(20)]


def test_unknown_zone_is_named():
    with pytest.raises(CronError, match="unknown time zone 'Mars/Base'"):
        vertex_cron("0 3 * * *", "Mars/Base")


@pytest.mark.parametrize(("zone", "hint"), [
    ("europe/stockholm", "did you mean `Europe/Stockholm`?"),
    ("Europe/Stockholm ", "did you mean `Europe/Stockholm`?"),
    ("Europe/Stokholm", "did you mean `Europe/Stockholm`?"),
    ("UTC+2", "a fixed offset of +2 h is `Etc/GMT-2` (its sign is reversed"),  # was: did you mean `UTC`?
    ("GMT-05:00", "a fixed offset of -5 h is `Etc/GMT+5`"),
    ("UTC+15", "no zone is +15 h from UTC"),
    ("Mars/Base", "use an IANA name such as `UTC` or `Europe/Stockholm`"),
    ("Z", "`Z` (ISO 8601) is UTC: write `UTC`"),  # was: did you mean `NZ`? (New Zealand)
    ("+02:00", "a fixed offset of +2 h is `Etc/GMT-2`"),  # an ISO offset: was 'use an IANA name'
    ("local", "`local` is this machine's zone"),  # was: did you mean `localtime`? (this machine's zone file)
    # ZoneInfo loads these files, so they were taken: `TZ=localtime` went to Vertex (the submitting machine's zone,
    # which no service knows), `right/` zones count leap seconds (fires 27 s off), `Factory` is no zone at all
    ("localtime", "`localtime` is this machine's zone"),
    ("Local", "`Local` is this machine's zone"),
    ("posix/Europe/Berlin", "write `Europe/Berlin`"),
    ("right/Europe/Berlin", "write `Europe/Berlin`"),
    ("Factory", "use an IANA name"),
    ("posixrules", "use an IANA name"),
    ("UTC+5:30", "no `Etc/GMT` zone has a +5:30 h offset"),
])
def test_a_misspelt_zone_gets_the_name_meant(zone, hint):
    """`europe/stockholm` or `UTC+2` was told only 'use an IANA name such as UTC or Europe/Stockholm'."""
    with pytest.raises(CronError) as err:
        vertex_cron("0 3 * * *", zone)
    assert err.value.hint.startswith(hint)
    assert ZoneInfo("Etc/GMT-2").utcoffset(dt.datetime(2026, 1, 1)) == dt.timedelta(hours=2)  # the sign, checked


def test_next_fire_times_honour_the_zone_across_dst():
    # 03:00 Stockholm is 02:00 UTC in winter and 01:00 UTC in summer.
    winter = next_fire_times("0 3 * * *", "Europe/Stockholm", dt.datetime(2026, 1, 10, tzinfo=dt.timezone.utc))[0]
    summer = next_fire_times("0 3 * * *", "Europe/Stockholm", dt.datetime(2026, 7, 10, tzinfo=dt.timezone.utc))[0]
    assert (winter.hour, summer.hour) == (2, 1)


DST_ZONES = ["Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "America/St_Johns"]


def _dst_change_days(zone_name: str, year: int = 2026) -> list[dt.date]:
    """Local dates on which the zone's UTC offset changes (found by walking the year hour by hour)."""
    zone, t, days = ZoneInfo(zone_name), dt.datetime(year, 1, 1, tzinfo=dt.timezone.utc), []
    while t.year == year:
        if t.astimezone(zone).utcoffset() != (t + dt.timedelta(hours=1)).astimezone(zone).utcoffset():
            days.append((t + dt.timedelta(hours=1)).astimezone(zone).date())
        t += dt.timedelta(hours=1)
    return days


@settings(max_examples=40, deadline=None)
@given(st.integers(0, 59), st.integers(0, 23), st.sampled_from(DST_ZONES))
def test_a_job_at_fixed_hours_fires_once_a_day_across_daylight_saving_changes(minute, hour, zone_name):
    # croniter fired `30 2 * * *` twice on the autumn change (02:30 summer time, then 02:30 winter time)
    zone = ZoneInfo(zone_name)
    for day in _dst_change_days(zone_name):
        start = dt.datetime.combine(day - dt.timedelta(days=1), dt.time(0), zone) - dt.timedelta(seconds=1)
        fires = next_fire_times(f"{minute} {hour} * * *", zone_name, start, count=3)
        assert [t.astimezone(zone).date() for t in fires] == [day + dt.timedelta(days=i) for i in (-1, 0, 1)]
        assert fires[0] == prev_fire_time(f"{minute} {hour} * * *", zone_name, fires[1] - dt.timedelta(seconds=1))


def test_jobs_on_every_hour_keep_running_on_elapsed_time_through_the_repeated_hour():
    # the autumn day in Berlin has 25 hours: an hourly job runs 25 times, every 60 minutes
    start = dt.datetime(2026, 10, 24, 22, 0, tzinfo=dt.timezone.utc)  # 00:00 CEST on 25 October
    fires = next_fire_times("0 * * * *", "Europe/Berlin", start - dt.timedelta(seconds=1), count=26)
    assert all(b - a == dt.timedelta(hours=1) for a, b in zip(fires, fires[1:]))
    assert fires[25].astimezone(ZoneInfo("Europe/Berlin")).date() == dt.date(2026, 10, 26)


@pytest.mark.parametrize("target, sets", [("local", None), ("vertex", {"project": "p", "region": "europe-west4",
                                                                      "pipeline_root": "gs://b/r"})])
def test_an_unknown_zone_does_not_hide_a_bad_cron(tmp_path, target, sets):
    """validate said only 'unknown time zone' for `{cron: "61 * * * *", timezone: Europe/Stockhlm}`; fixing the zone
    showed the cron's error next: every problem at once."""
    import kubepipe
    from kubepipe.errors import ValidationError

    (tmp_path / "p.yaml").write_text(
        "apiVersion: kubepipe/v1\nkind: Pipeline\nmetadata: {name: x}\n"
        "schedule: {cron: \"61 * * * *\", timezone: Europe/Stockhlm}\n"
        "steps: {a: {component: load-data, with: {source: gs://b/d.csv}}}\n")
    with pytest.raises(ValidationError) as exc:
        kubepipe.validate(tmp_path / "p.yaml", target, sets=sets)
    assert [(i.path, i.message.split(";")[0]) for i in exc.value.issues] == [
        ("schedule.cron", "'61 * * * *' is not a valid cron expression: the minute field '61' is not valid"),
        ("schedule.timezone", "unknown time zone 'Europe/Stockhlm'")]
