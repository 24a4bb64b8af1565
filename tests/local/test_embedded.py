"""What the embedded default exports for a night before the flow runs."""

from __future__ import annotations

import fcntl
import io
import os
import pickle
import threading
import time
from dataclasses import replace
from datetime import date
from pathlib import Path

import pytest
from rich.console import Console

from flows.settings import Settings
from local.embedded import (
    LOCAL_GLUE_POLL_MAX_SECONDS,
    SAMPLE_DATA_LOCK,
    completed_nights,
    describe_nights,
    ensure_sample_data,
    point_clients_at,
    refuse_range_before_sample_data,
    sample_config,
    sample_size_not_used,
    say_which_nights_never_loaded,
)
from local.sample_data import GenerateConfig, generate, raw_partition, saved_days
from local.sample_data.generate import STATE_FILE


def test_a_local_night_polls_its_glue_runs_often_unless_the_user_chose(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(
        os, "environ", {k: v for k, v in os.environ.items() if "GLUE_POLL" not in k}
    )
    point_clients_at("http://127.0.0.1:9", tmp_path)
    assert os.environ["MYSTORE_GLUE_POLL_MAX_SECONDS"] == LOCAL_GLUE_POLL_MAX_SECONDS == "0.5"
    assert Settings().glue_poll_max_seconds == 0.5
    assert os.environ["AWS_ENDPOINT_URL_GLUE"] == "http://127.0.0.1:9"

    os.environ["MYSTORE_GLUE_POLL_MAX_SECONDS"] = "3"
    point_clients_at("http://127.0.0.1:9", tmp_path)
    assert Settings().glue_poll_max_seconds == 3.0


def test_each_night_generates_only_its_own_day_and_says_so(tmp_path: Path) -> None:
    """The embedded default goes on from the days earlier nights generated; the raw zone and
    truth end up as one run over all the days would write them."""
    config = GenerateConfig(customers=50, sales_per_day=40, seed=5, start_date=date(2026, 11, 1))
    console = Console(record=True, width=200)
    for night in (date(2026, 11, 1), date(2026, 11, 2), date(2026, 11, 3)):
        ensure_sample_data(tmp_path / "dir", night, config, console)
    said = console.export_text()
    assert "Generating sample raw data: 1 day(s) from 2026-11-01, 50 customers" in said
    assert "1 day(s) from 2026-11-03 (the 2 day(s) before kept)" in said
    ensure_sample_data(tmp_path / "dir", date(2026, 11, 2), config, console)  # there already
    assert console.export_text() == ""
    generate(GenerateConfig(**{**config.__dict__, "days": 3}), tmp_path / "once")
    for name in ("truth.json", "raw/store_sale/ingest_date=2026-11-03/part-00000.json"):
        assert (tmp_path / "dir" / name).read_bytes() == (tmp_path / "once" / name).read_bytes()
    assert raw_partition(tmp_path / "dir" / "raw", "store_customer", "2026-11-02").is_dir()


def test_a_sample_size_asked_of_a_data_dir_with_sample_data_is_said_to_be_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The data dir's size wins (its loaded nights must stay true): it used to win silently."""
    for key in [k for k in os.environ if k.startswith("MYSTORE_")]:
        monkeypatch.delenv(key)
    config = GenerateConfig(customers=50, sales_per_day=40, seed=5, start_date=date(2026, 11, 1))
    ensure_sample_data(tmp_path, date(2026, 11, 1), config, Console(file=io.StringIO()))
    unset = Settings(local_data_dir=tmp_path)
    assert sample_size_not_used(sample_config(tmp_path, unset), unset) == []  # nothing asked
    monkeypatch.setenv("MYSTORE_LOCAL_CUSTOMERS", "3000")
    monkeypatch.setenv("MYSTORE_LOCAL_SALES_PER_DAY", "40")  # the same as kept: nothing to say
    asked = Settings(local_data_dir=tmp_path)
    kept = sample_config(tmp_path, asked)
    assert (kept.customers, kept.sales_per_day) == (50, 40)
    assert sample_size_not_used(kept, asked) == [
        "MYSTORE_LOCAL_CUSTOMERS=3000 is not used: this data dir's sample data has 50 customers,"
        " kept so that the nights already loaded stay true; a new --data-dir starts with the new"
        " size"
    ]


def test_a_state_whose_header_fits_but_whose_body_does_not_load_is_said_to_start_over(
    tmp_path: Path,
) -> None:
    """The message counts the days generate really kept, not what the state's header says:
    a state cut after its header is generated again from the first day, and said so."""
    config = GenerateConfig(customers=30, sales_per_day=20, seed=5, start_date=date(2026, 11, 1))
    for night in (date(2026, 11, 1), date(2026, 11, 2)):
        ensure_sample_data(tmp_path, night, config, Console(record=True))
    state = tmp_path / STATE_FILE
    with state.open("rb") as fh:
        pickle.load(fh)  # the header, which still fits
        header_end = fh.tell()
    state.write_bytes(state.read_bytes()[: header_end + 40])
    assert saved_days(tmp_path, config) == 2  # the header alone says two days are kept
    console = Console(record=True, width=200)
    ensure_sample_data(tmp_path, date(2026, 11, 3), config, console)
    said = console.export_text()
    assert "Generating sample raw data: 3 day(s) from 2026-11-01, 30 customers" in said
    assert "kept" not in said
    assert saved_days(tmp_path, config) == 3


def test_a_night_whose_raw_day_was_left_incomplete_writes_it_again(tmp_path: Path) -> None:
    """A generator stopped midway (Ctrl-C, a full disk) leaves a partition without its
    manifest, which the clean job refuses: the next run writes the day again instead of
    keeping it, with the bytes one run writes."""
    config = GenerateConfig(customers=30, sales_per_day=20, seed=5, start_date=date(2026, 11, 1))
    ensure_sample_data(tmp_path / "dir", date(2026, 11, 2), config, Console(record=True))
    manifest = raw_partition(tmp_path / "dir" / "raw", "store_customer", "2026-11-02")
    manifest = manifest / "_MANIFEST.json"
    manifest.unlink()
    console = Console(record=True, width=200)
    ensure_sample_data(tmp_path / "dir", date(2026, 11, 2), config, console)
    assert "Generating sample raw data: 2 day(s) from 2026-11-01" in console.export_text()
    assert manifest.is_file()
    generate(GenerateConfig(**{**config.__dict__, "days": 2}), tmp_path / "once")
    assert (
        manifest.read_bytes()
        == (tmp_path / "once" / manifest.relative_to(tmp_path / "dir")).read_bytes()
    )


def test_runs_preparing_at_once_write_the_sample_data_once(tmp_path: Path) -> None:
    """Two runs attached to one stack may prepare the same night at once: the second waits
    on the data dir's lock, then finds the day complete and writes nothing."""
    config = GenerateConfig(customers=30, sales_per_day=20, seed=5, start_date=date(2026, 11, 1))
    console = Console(record=True, width=200)
    with (tmp_path / SAMPLE_DATA_LOCK).open("a") as held:  # the first run, writing
        fcntl.flock(held, fcntl.LOCK_EX)
        second = threading.Thread(
            target=ensure_sample_data, args=(tmp_path, date(2026, 11, 1), config, console)
        )
        second.start()
        deadline = time.monotonic() + 30
        while "Waiting for another run" not in console.export_text(clear=False):
            assert time.monotonic() < deadline, "the second run did not wait"
            time.sleep(0.02)
        assert not (tmp_path / "raw").exists()
        generate(replace(config, days=1), tmp_path, resume=True)
        fcntl.flock(held, fcntl.LOCK_UN)
    second.join(30)
    assert not second.is_alive()
    said = console.export_text()
    assert "Waiting for another run of this data dir to write its sample data" in said
    assert "Generating" not in said  # the day was complete when the lock came


def test_a_backfill_range_is_refused_only_when_it_ends_before_the_sample_data() -> None:
    config = GenerateConfig(start_date=date(2026, 11, 1))
    refuse_range_before_sample_data(date(2026, 10, 1), date(2026, 11, 1), config)  # overlaps
    refuse_range_before_sample_data(date(2026, 11, 5), date(2026, 11, 9), config)  # after
    with pytest.raises(ValueError) as refused:
        refuse_range_before_sample_data(date(2026, 10, 1), date(2026, 10, 31), config)
    assert str(refused.value) == (
        "--end-date 2026-10-31 is before the sample data's first day 2026-11-01: "
        "2026-10-01..2026-10-31 has no sales to load"
    )


def test_a_night_that_skips_ahead_names_the_nights_never_loaded(tmp_path: Path) -> None:
    """`--date` past unloaded nights runs, but says the warehouse misses them, on that
    night and on every later one until they load."""
    config = GenerateConfig(start_date=date(2026, 11, 1))
    (tmp_path / "nights.json").write_text('["2026-11-01", "2026-11-02", "2026-11-06"]')
    done = completed_nights(tmp_path)
    console = Console(record=True, width=300)
    skipped = say_which_nights_never_loaded(done, date(2026, 11, 9), config, console)
    assert [d.day for d in skipped] == [3, 4, 5, 7, 8]
    assert (
        "Nights not loaded: 2026-11-03 to 2026-11-05, 2026-11-07 to 2026-11-08 (5 in all)"
        in console.export_text()
    )
    quiet = Console(record=True)
    assert say_which_nights_never_loaded(done, date(2026, 11, 3), config, quiet) == []
    assert say_which_nights_never_loaded(done, date(2026, 11, 2), config, quiet) == []
    assert quiet.export_text() == ""  # the next night, and a night run again


def test_many_runs_of_nights_are_cut_short() -> None:
    nights = [date(2026, 11, day) for day in (1, 3, 5, 7, 8)]
    assert describe_nights(nights) == "2026-11-01, 2026-11-03, 2026-11-05, and 1 more"
