"""`utc_iso`: the one way kubepipe writes a time (run records, schedules, listings, retrain triggers)."""

from __future__ import annotations

import datetime as dt

import pytest
from hypothesis import given
from hypothesis import strategies as st

from kubepipe.errors import UserError
from kubepipe.util import utc_iso

_UTC = dt.timezone.utc
_times = st.datetimes(min_value=dt.datetime(1970, 1, 2), max_value=dt.datetime(2200, 1, 1),
                      timezones=st.sampled_from([_UTC, dt.timezone(dt.timedelta(hours=5, minutes=30)),
                                                 dt.timezone(dt.timedelta(hours=-8))]))


@given(_times)
def test_every_form_of_a_time_gives_the_same_utc_text(t):
    # oracle: the standard library's own UTC rendering, truncated to seconds
    want = t.astimezone(_UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")
    assert utc_iso(t) == want
    assert utc_iso(t.isoformat()) == want  # an ISO string with its offset
    assert utc_iso(t.timestamp()) == want  # epoch seconds
    assert utc_iso(t.astimezone(_UTC).replace(tzinfo=None)) == want  # naive means UTC
    assert utc_iso(want) == want  # idempotent on its own output


@pytest.mark.parametrize("unset", [None, "", 0, 0.0, dt.datetime(1970, 1, 1, tzinfo=_UTC), "1970-01-01T00:00:00Z"])
def test_unset_times_are_none(unset):
    assert utc_iso(unset) is None


def test_a_bad_string_names_its_place_or_passes_through_from_a_service():
    with pytest.raises(UserError, match=r"schedules\.nightly\.start_time: 'soon' is not an ISO time"):
        utc_iso("soon", "schedules.nightly.start_time")
    assert utc_iso("soon") == "soon"  # a service's value is shown as it came
    with pytest.raises(TypeError):
        utc_iso(object())
