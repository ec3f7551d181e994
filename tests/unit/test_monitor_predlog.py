"""The prediction log's writer and reader: partitions, atomic parts, the bounded queue, sampling."""

from __future__ import annotations

import calendar
import time

import pytest

pq = pytest.importorskip("pyarrow.parquet")

from kubepipe.components.errors import DataError  # noqa: E402
from kubepipe.components.monitoring.predlog import PredictionLog, Record, part_dir  # noqa: E402
from kubepipe.components.monitoring.predlog_read import read_predictions  # noqa: E402

T0 = calendar.timegm((2026, 3, 16, 9, 59, 58))  # 2026-03-16T09:59:58Z


def _rec(rid: str, ts: float, texts, labels=None):
    labels = labels or ["fuel"] * len(texts)
    return Record(rid, ts, "v1", 1.5, list(texts), labels, [0.9] * len(texts))


def _log(sink, **kw):
    drops: list = []
    written: list = []
    plog = PredictionLog(str(sink), model="merchant", version="3", input_columns=("description",),
                         on_drop=lambda reason, n: drops.append((reason, n)), on_write=written.append, **kw)
    return plog, drops, written


def test_records_land_in_hour_partitions_one_row_per_instance(tmp_path):
    plog, drops, written = _log(tmp_path / "log", flush_s=60)
    plog.start()
    assert plog.offer(_rec("r1", T0, ["SHELL OIL 57442", "NETFLIX.COM"], ["fuel", "digital"]))
    assert plog.offer(_rec("r2", T0 + 4, ["UBER TRIP"]))  # 10:00:02: the next hour
    plog.close()
    assert drops == [] and sorted(written) == [1, 2]
    folders = sorted(p.parent.relative_to(tmp_path / "log").as_posix() for p in (tmp_path / "log").rglob("*.parquet"))
    assert folders == ["model=merchant/date=2026-03-16/hour=09", "model=merchant/date=2026-03-16/hour=10"]
    t = pq.read_table(next((tmp_path / "log").rglob("hour=09/part-*.parquet"))).to_pylist()
    assert [(r["request_id"], r["instance"], r["description"], r["prediction"]) for r in t] == [
        ("r1", 0, "SHELL OIL 57442", "fuel"), ("r1", 1, "NETFLIX.COM", "digital")]
    assert t[0]["model_name"] == "merchant" and t[0]["model_version"] == "3" and t[0]["latency_ms"] == 1.5
    assert t[0]["timestamp"].timestamp() == T0

    df = read_predictions("predictions:merchant", str(tmp_path / "log"))
    assert df["request_id"].tolist() == ["r1", "r1", "r2"]


def test_flushes_on_time_without_close(tmp_path):
    plog, _, written = _log(tmp_path / "log", flush_s=0.2)
    plog.start()
    plog.offer(_rec("r1", time.time(), ["A B"]))
    deadline = time.monotonic() + 10
    while not written and time.monotonic() < deadline:
        time.sleep(0.05)
    assert written == [1]
    plog.close()


def test_flushes_on_size(tmp_path):
    plog, _, written = _log(tmp_path / "log", flush_s=3600, flush_rows=3)
    plog.start()
    for i in range(3):
        plog.offer(_rec(f"r{i}", time.time(), ["A B"]))
    deadline = time.monotonic() + 10
    while not written and time.monotonic() < deadline:
        time.sleep(0.05)
    assert written == [3]
    plog.close()


def test_a_full_queue_drops_and_counts_without_blocking(tmp_path):
    plog, drops, _ = _log(tmp_path / "log", max_queue=1)  # not started: nothing drains the queue
    assert plog.offer(_rec("r1", T0, ["A"]))
    t = time.perf_counter()
    assert plog.offer(_rec("r2", T0, ["A", "B"])) is False
    assert time.perf_counter() - t < 0.05
    assert drops == [("queue_full", 2)]


def test_a_failing_sink_drops_and_counts_but_never_raises(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    plog, drops, written = _log(blocker / "log")  # its parent is a file: every write fails
    plog.start()
    plog.offer(_rec("r1", T0, ["A", "B"]))
    plog.close()
    assert drops == [("write_error", 2)] and written == []


def test_reader_ignores_temp_and_foreign_files_and_skips_unreadable_parts(tmp_path):
    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    plog.offer(_rec("r1", T0, ["A"]))
    plog.close()
    folder = tmp_path / "log" / part_dir("", "merchant", T0).lstrip("/")
    (folder / ".part-abc.parquet.999-x.tmp").write_bytes(b"PAR1 half written")  # a killed writer's temp
    (folder / "notes.txt").write_text("x")
    (folder / "part-deadbeef.parquet").write_bytes(b"garbage")  # damaged at rest
    df = read_predictions("predictions:merchant", str(tmp_path / "log"))
    assert df["request_id"].tolist() == ["r1"] and df.attrs["skipped_parts"] == 1


def test_a_partition_that_is_no_hour_is_skipped_with_a_warning(tmp_path, caplog):
    """A part under date=2026-02-30/hour=25 (a folder made by hand) failed load-data with fromisoformat's ValueError."""
    import shutil

    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    plog.offer(_rec("r1", T0, ["A"]))
    plog.close()
    folder = tmp_path / "log" / part_dir("", "merchant", T0).lstrip("/")
    odd = tmp_path / "log" / "model=merchant" / "date=2026-02-30" / "hour=25"
    odd.mkdir(parents=True)
    shutil.copy(next(folder.glob("part-*.parquet")), odd / "part-0123abcd.parquet")
    df = read_predictions("predictions:merchant", str(tmp_path / "log"), window="24h")
    assert df["request_id"].tolist() == ["r1"]
    assert "its partition is no hour (2026-02-30, hour 25)" in caplog.text


def test_window_keeps_only_the_hours_it_covers(tmp_path):
    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    for h in range(5):
        plog.offer(_rec(f"h{h}", T0 + 2 + h * 3600, ["A"]))  # 10:00, 11:00, ... 14:00
    plog.close()
    df = read_predictions("predictions:merchant", str(tmp_path / "log"), window="2h")
    assert set(df["request_id"]) <= {"h2", "h3", "h4"} and "h4" in set(df["request_id"])
    df = read_predictions("predictions:merchant", str(tmp_path / "log"), window="1h", as_of="2026-03-16T11:30:00Z")
    assert set(df["request_id"]) <= {"h0", "h1"} and "h1" in set(df["request_id"])


def test_object_store_sink_is_written_in_one_put(tmp_path):
    import fsspec

    plog, drops, written = _log("memory://predlog-test/log")
    plog.start()
    plog.offer(_rec("r1", T0, ["A", "B"]))
    plog.close()
    fs = fsspec.filesystem("memory")
    parts = fs.glob("/predlog-test/log/model=merchant/*/*/part-*.parquet")
    assert len(parts) == 1 and not fs.glob("/predlog-test/log/**/.*")
    assert read_predictions("predictions:merchant", "memory://predlog-test/log")["instance"].tolist() == [0, 1]


def test_missing_log_is_a_clear_error(tmp_path):
    with pytest.raises(DataError, match="no prediction log of model `merchant`.*serving"):
        read_predictions("predictions:merchant", str(tmp_path))
    with pytest.raises(DataError, match="predictions:<model name>"):
        read_predictions("predictions:", str(tmp_path))


@pytest.mark.parametrize("rate", [0.0, 0.1, 1.0])
def test_sampling_rate(tmp_path, rate):
    plog, _, _ = _log(tmp_path, sample=rate)
    share = sum(plog.sampled() for _ in range(20000)) / 20000
    assert abs(share - rate) < 0.02


def test_numpy_answers_and_feature_rows_become_the_same_rows_as_lists(tmp_path):
    """The server queues its numpy label/probability arrays as they are; the writer builds the columns."""
    np = pytest.importorskip("numpy")
    plog, drops, written = _log(tmp_path / "log")
    plog.start()
    labels = np.array(["fuel", "digital", "fuel"], dtype=object)
    probs = np.array([0.5, 0.25, 0.125], dtype=np.float32)  # exact in float32
    assert plog.offer(Record("a", T0, "v2", 2.5, ["X", "Y", "Z"], labels, probs))
    assert plog.offer(Record("b", T0 + 0.5, "v1", 1.0, [], np.array([], dtype=object), np.array([], np.float32)))
    assert plog.offer(Record("c", T0 + 1, "v1", 3.0, ["W"], ["dining"], [0.75]))
    plog.close()
    assert drops == [] and sum(written) == 4
    rows = read_predictions("predictions:merchant", str(tmp_path / "log")).sort_values(["request_id", "instance"])
    assert list(zip(rows["request_id"], rows["instance"], rows["description"], rows["prediction"],
                    rows["probability"], rows["protocol"], rows["latency_ms"])) == [
        ("a", 0, "X", "fuel", 0.5, "v2", 2.5), ("a", 1, "Y", "digital", 0.25, "v2", 2.5),
        ("a", 2, "Z", "fuel", 0.125, "v2", 2.5), ("c", 0, "W", "dining", 0.75, "v1", 3.0)]
    assert [t.timestamp() for t in rows["timestamp"]] == [T0] * 3 + [T0 + 1]

    tab = PredictionLog(str(tmp_path / "tab"), model="fraud", input_columns=("amount", "hour"), tabular=True)
    table = tab.table([Record("t", T0, "v1", 1.0, [[10.5, 3.0], np.array([7.0, 23.0])], ["ok", "fraud"], [0.9, 0.6])])
    assert table.select(["amount", "hour", "instance"]).to_pylist() == [
        {"amount": 10.5, "hour": 3.0, "instance": 0}, {"amount": 7.0, "hour": 23.0, "instance": 1}]


def test_one_row_requests_wake_the_writer_before_the_queue_fills(tmp_path):
    """flush_rows counts rows; a queue of one-row requests is flushed at half its records, not dropped."""
    plog, drops, written = _log(tmp_path / "log", flush_s=3600, flush_rows=10_000, max_queue=40)
    plog.start()
    for i in range(400):  # ten times the queue, far below flush_rows
        plog.offer(_rec(f"r{i}", T0, ["A"]))
        if i % 20 == 19:
            deadline = time.monotonic() + 10
            while len(plog._queue) >= 20 and time.monotonic() < deadline:  # the writer takes what is queued
                time.sleep(0.005)
    plog.close()
    assert drops == [] and sum(written) == 400 and len(written) >= 10


def test_a_window_outside_the_log_says_where_the_log_is(tmp_path):
    """A scheduled_time a week off said 'no readable prediction log parts in the window', as if parts were damaged."""
    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    plog.offer(_rec("r1", T0 + 2, ["A"]))  # 10:00:00
    plog.close()
    with pytest.raises(DataError) as exc:
        read_predictions("predictions:merchant", str(tmp_path / "log"), window="1h", as_of="2026-03-09T10:00:00Z")
    assert str(exc.value) == (f"predictions:merchant: no requests logged in the window (2026-03-09 09:00:00+00:00 .. "
                              f"2026-03-09 10:00:00+00:00] under {tmp_path / 'log'}; the log spans 2026-03-16 10:00 "
                              "UTC .. 2026-03-16 11:00 UTC; check `as_of` / `window`")


def test_parts_of_other_writers_merge_or_name_the_part_and_column(tmp_path):
    import pyarrow as pa

    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    plog.offer(_rec("r1", T0, ["A"]))
    plog.close()
    folder = tmp_path / "log" / part_dir("", "merchant", T0).lstrip("/")
    mine = pq.read_table(next(folder.glob("part-*.parquet")))
    ns = mine.set_column(mine.schema.get_field_index("timestamp"), "timestamp",
                         mine["timestamp"].cast(pa.timestamp("ns", tz="UTC")))
    pq.write_table(ns.set_column(0, "request_id", pa.array(["r2"])), folder / "part-0000000a.parquet")
    df = read_predictions("predictions:merchant", str(tmp_path / "log"))  # pandas' ns timestamps join ours
    assert df["request_id"].tolist() == ["r1", "r2"]

    bad = mine.set_column(mine.schema.get_field_index("model_version"), "model_version", pa.array([3], pa.int64()))
    pq.write_table(bad, folder / "part-ffffffff.parquet")
    with pytest.raises(DataError, match=r"part-ffffffff\.parquet: column `model_version` is int64, where .*part-.* "
                                        r"has string; .*move that part out of"):
        read_predictions("predictions:merchant", str(tmp_path / "log"))


# What a payments company's users type into a free-text field, and what the log must hold instead (PCI DSS: no PAN
# stored in clear). A card number's or IBAN's mask replaces characters one for one (its text keeps its length and
# separators); an e-mail address keeps its first letter and domain.
PII_TEXTS = [
    ("REFUND 4111 1111 1111 1111 THX", "REFUND **** **** **** 1111 THX"),  # Visa, grouped by spaces
    ("card 5555555555554444", "card ************4444"),  # Mastercard, contiguous
    ("amex 3782-822463-10005 ok", "amex ****-******-*0005 ok"),  # Amex 4-6-5, dashes
    ("４１１１‑１１１１‑１１１１‑１１１１", "****‑****‑****‑１１１１"),  # full-width digits, non-breaking hyphens
    ("6011.1111.1111.1117", "****.****.****.1117"),  # Discover, dots
    ("IBAN DE89 3704 0044 0532 0130 00 rent", "IBAN DE** **** **** **** **30 00 rent"),
    ("to gb29nwbk60161331926819", "to gb" + "*" * 16 + "6819"),  # lower case, contiguous
    ("receipt to jane.doe@example.com pls", "receipt to j***@example.com pls"),
]
CLEAN_TEXTS = ["SHELL OIL 57442", "NETFLIX.COM 866-579-7172 CA", "Café ☕ Zürich — 12,50 €", "", "  ",
               "ORDER 2026120112345678", "UBER *TRIP 4111"]


def _rows(sink):
    return [r for p in sorted(sink.rglob("part-*.parquet")) for r in pq.read_table(p).to_pylist()]


def test_logged_texts_have_card_numbers_ibans_and_emails_masked_in_their_shape(tmp_path):
    plog, drops, _ = _log(tmp_path / "log")
    plog.start()
    texts = [t for t, _ in PII_TEXTS] + CLEAN_TEXTS
    assert plog.offer(_rec("r1", T0, texts))
    plog.close()
    rows = _rows(tmp_path / "log")
    assert drops == [] and [r["description"] for r in rows] == [m for _, m in PII_TEXTS] + CLEAN_TEXTS
    for (text, _), row in zip(PII_TEXTS, rows):
        assert len(row["description"]) == len(text) or "@" in text
    part = next((tmp_path / "log").rglob("part-*.parquet")).read_bytes()  # the footer's column statistics too
    for clear in ("4111 1111 1111 1111", "5555555555554444", "3782-822463", "DE89 3704", "jane.doe"):
        assert clear.encode() not in part
    assert [r["prediction"] for r in rows] == ["fuel"] * len(texts)  # labels and ids are not touched


def test_a_long_flush_masks_every_chunk_and_leaves_clean_texts_as_they_are(tmp_path):
    """A flush over 4,096 rows builds the text column in chunks: the masking covers each of them."""
    plog, _, _ = _log(tmp_path / "log")
    texts = (CLEAN_TEXTS * 1300)[:9000]
    texts[5000] = "pay 4111111111111111"
    table = plog.table([_rec("r1", T0, texts)])
    column = table.column("description").to_pylist()
    assert column[5000] == "pay ************1111" and column[:5000] == texts[:5000] and column[5001:] == texts[5001:]


def test_raw_inputs_are_logged_only_when_asked_and_feature_rows_never_change(tmp_path):
    plog, _, _ = _log(tmp_path / "log", redact=False)  # `kubepipe serve --log-raw-inputs`
    assert plog.table([_rec("r1", T0, ["REFUND 4111 1111 1111 1111"])]).column("description").to_pylist() == [
        "REFUND 4111 1111 1111 1111"]
    tab = PredictionLog(str(tmp_path / "tab"), model="fraud", input_columns=("card", "amount"), tabular=True)
    rows = tab.table([Record("t", T0, "v1", 1.0, [[4111111111111111.0, 12.5]], ["ok"], [0.9])]).to_pylist()
    assert (rows[0]["card"], rows[0]["amount"]) == (4111111111111111.0, 12.5)


def test_drift_and_live_quality_read_the_masked_log(tmp_path):
    pd = pytest.importorskip("pandas")
    from kubepipe.components.data.drift import detect_drift
    from kubepipe.components.monitoring.live import join_labels

    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    served = ["SHELL OIL card 4111 1111 1111 1111", "UBER TRIP to jane@example.com", "NETFLIX.COM monthly"] * 20
    for i, text in enumerate(served):
        plog.offer(_rec(f"r{i}", T0, [text], ["fuel" if "SHELL" in text else "digital"]))
    plog.close()
    log_df = read_predictions("predictions:merchant", str(tmp_path / "log"))
    assert "4111 1111" not in " ".join(log_df["description"]) and len(log_df) == 60
    # training data that holds card numbers holds them masked (PCI DSS), as the log does: same tokens, no drift
    from kubepipe.components.pii import redact

    trained = pd.DataFrame({"description": [redact(t) for t in served],
                            "category": ["fuel" if "SHELL" in t else "digital" for t in served]})
    report = detect_drift(log_df, trained, columns=["description"], column_map={"prediction": "category"},
                          max_categories=2)
    assert report["columns"]["description"]["kind"] == "text" and report["drift_detected"] is False
    labels = pd.DataFrame({"request_id": [f"r{i}" for i in range(60)], "label": ["fuel"] * 60})
    assert len(join_labels(log_df, labels)) == 60  # request ids are logged as sent: delayed labels still join


def test_a_window_to_the_newest_request_leaves_out_requests_stamped_in_the_future(tmp_path, caplog):
    """One pod whose clock ran 3 days ahead logged a request in an hour not yet come; `as_of` empty (the window ends
    at the newest request) made the window that request alone, and the day's traffic was never looked at."""
    from kubepipe.components.data.load import load

    now = time.time()
    plog, drops, written = _log(tmp_path / "log", flush_s=60)
    plog.start()
    for i in range(40):
        plog.offer(_rec(f"r{i}", now - 3 * 3600 + i * 60, ["SHELL OIL 57442"]))
    plog.offer(_rec("skewed", now + 3 * 86400, ["UBER TRIP"]))
    plog.offer(_rec("ahead", now + 120, ["UBER TRIP"]))  # in this hour's part, or the next one's
    plog.close()
    df = load("predictions:merchant", predictions_uri=str(tmp_path / "log"), window="24h")
    assert sorted(df["request_id"]) == sorted(f"r{i}" for i in range(40))
    assert df.attrs["future_rows"] == 2
    assert "2 logged row(s) are stamped after now" in caplog.text and "(a server's clock ahead?)" in caplog.text
    # the scheduled window ends where it is told: nothing changes there
    end = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now + 3 * 86400 + 60))
    ahead = load("predictions:merchant", predictions_uri=str(tmp_path / "log"), window="24h", as_of=end)
    assert ahead["request_id"].tolist() == ["skewed"] and "future_rows" not in ahead.attrs


def test_a_part_deleted_by_retention_while_the_window_is_read_is_said_in_the_dataset_s_metadata(tmp_path, monkeypatch,
                                                                                               caplog):
    """Retention removed a part between the listing and its read: the window was read without it and only the step's
    log said 'unreadable part'; the Dataset (what monitor-report and a person read) looked whole."""
    from fsspec.implementations.local import LocalFileSystem
    from kfp.dsl import Dataset

    from kubepipe.components.data.load import load_to_artifact

    plog, _, _ = _log(tmp_path / "log")
    plog.start()
    plog.offer(_rec("r1", T0, ["A"]))
    plog.offer(_rec("r2", T0 + 4, ["B"]))  # the next hour: a part of its own
    plog.close()
    listed = LocalFileSystem.glob

    def retention_meanwhile(self, path, *a, **kw):  # the real listing, then the oldest part goes
        found = listed(self, path, *a, **kw)
        if "part-" in str(path) and found:
            (tmp_path / str(sorted(found)[0]).split(str(tmp_path), 1)[1].lstrip("/")).unlink()
        return found

    monkeypatch.setattr(LocalFileSystem, "glob", retention_meanwhile)
    art = Dataset(name="recent", uri=str(tmp_path / "recent"))
    meta = load_to_artifact(art, "predictions:merchant", predictions_uri=str(tmp_path / "log"), window="24h",
                            as_of="2026-03-16T12:00:00Z")
    assert meta["rows"] == 1 and meta["skipped_parts"] == 1 and art.metadata["skipped_parts"] == 1
    assert "was removed after it was listed (retention?)" in caplog.text
