"""Going on from a saved generator state: the same bytes and truth as one run over all days,
each call writing only its new days, and a state that does not fit is never used."""

from __future__ import annotations

import pickle
from dataclasses import replace
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from local.sample_data.feed import GenerateConfig
from local.sample_data.generate import STATE_FILE, generate, raw_partition, saved_days
from local.sample_data.partitions import SampleRangeError

CONFIG = GenerateConfig(
    days=4, customers=300, sales_per_day=400, seed=11, start_date=date(2026, 11, 1)
)


def files(root: Path) -> dict[str, bytes]:
    """Every file but the saved state (which only the resuming run writes)."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != STATE_FILE
    }


def nightly(out: Path, days: int) -> None:
    """What the embedded default does: one more day a night, going on from the state."""
    for day in range(1, days + 1):
        generate(replace(CONFIG, days=day), out, resume=True)


def partition_mtimes(out: Path) -> dict[str, int]:
    return {str(p): p.stat().st_mtime_ns for p in (out / "raw").rglob("_MANIFEST.json")}


def test_night_by_night_gives_the_bytes_and_truth_of_one_run(tmp_path: Path) -> None:
    generate(CONFIG, tmp_path / "once")
    nightly(tmp_path / "nightly", CONFIG.days)
    assert files(tmp_path / "nightly") == files(tmp_path / "once")
    assert saved_days(tmp_path / "nightly", CONFIG) == CONFIG.days
    assert saved_days(tmp_path / "once", CONFIG) == 0  # no state without resume


def test_a_resumed_call_writes_only_its_new_days(tmp_path: Path) -> None:
    nightly(tmp_path, 3)
    before = partition_mtimes(tmp_path)
    told: list[int] = []  # the progress the embedded default shows: only the day written
    generate(CONFIG, tmp_path, resume=True, on_day=told.append)
    assert told == [3]
    after = partition_mtimes(tmp_path)
    new_day = raw_partition(tmp_path / "raw", "store_sale", CONFIG.start_date + timedelta(days=3))
    assert {p for p in after if p not in before} == {
        str(raw_partition(tmp_path / "raw", t, new_day.name.split("=")[1]) / "_MANIFEST.json")
        for t in ("store_sale", "store_customer", "store_customer_address")
    }
    assert all(after[p] == before[p] for p in before), "an earlier day was rewritten"


@pytest.mark.parametrize(
    "spoil",
    [
        pytest.param(lambda out: (out / STATE_FILE).write_bytes(b"not a pickle"), id="corrupt"),
        pytest.param(lambda out: (out / STATE_FILE).write_bytes(b""), id="empty"),
        pytest.param(
            lambda out: (out / STATE_FILE).write_bytes(
                pickle.dumps({"tag": "x", "days": 2}) + pickle.dumps("state")
            ),
            id="another-code-or-config",
        ),
        pytest.param(
            lambda out: (
                [
                    p.unlink()
                    for p in raw_partition(out / "raw", "store_customer", "2026-11-02").iterdir()
                ]
                and raw_partition(out / "raw", "store_customer", "2026-11-02").rmdir()
            ),
            id="an-earlier-partition-deleted",
        ),
        pytest.param(
            lambda out: (
                raw_partition(out / "raw", "store_sale", "2026-11-01") / "_MANIFEST.json"
            ).unlink(),
            id="an-earlier-partition-left-incomplete",
        ),
    ],
)
def test_a_state_that_does_not_fit_is_not_used(tmp_path: Path, spoil: object) -> None:
    """Everything is generated again instead, with the same bytes as one run."""
    nightly(tmp_path / "nightly", 2)
    spoil(tmp_path / "nightly")  # type: ignore[operator]
    assert saved_days(tmp_path / "nightly", CONFIG) == 0
    generate(CONFIG, tmp_path / "nightly", resume=True)
    generate(CONFIG, tmp_path / "once")
    assert files(tmp_path / "nightly") == files(tmp_path / "once")
    assert saved_days(tmp_path / "nightly", CONFIG) == CONFIG.days


def test_another_configuration_starts_over(tmp_path: Path) -> None:
    nightly(tmp_path, 2)
    other = replace(CONFIG, seed=12)
    assert saved_days(tmp_path, other) == 0
    generate(other, tmp_path / "x", resume=True)
    generate(other, tmp_path, resume=True)
    assert files(tmp_path / "x") == {
        k: v for k, v in files(tmp_path).items() if not k.startswith("x/")
    }


def test_the_day_cap_counts_new_days_when_going_on(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cap keeps a mistyped date from filling the disk: it bounds one call's new days,
    so a data dir can go past it night by night, and a leap past it is refused unwritten."""
    monkeypatch.setenv("MYSTORE_LOCAL_MAX_SAMPLE_DAYS", "2")
    generate(replace(CONFIG, days=2), tmp_path, resume=True)
    generate(replace(CONFIG, days=3), tmp_path, resume=True)
    assert saved_days(tmp_path, CONFIG) == 3
    state = (tmp_path / STATE_FILE).read_bytes()
    with pytest.raises(
        SampleRangeError, match="refusing to generate 3 days of sample data from 2026-11-04"
    ):
        generate(replace(CONFIG, days=6), tmp_path, resume=True)
    assert (tmp_path / STATE_FILE).read_bytes() == state
    assert not raw_partition(tmp_path / "raw", "store_sale", "2026-11-04").exists()
    with pytest.raises(SampleRangeError, match="refusing to generate 6 days"):
        generate(replace(CONFIG, days=6), tmp_path / "fresh", resume=True)


def test_a_save_stopped_halfway_leaves_the_previous_state(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A writer stopped while saving (a full disk, a kill) leaves the previous state; the
    next call goes on from it and rewrites the day in between with the same bytes."""
    nightly(tmp_path / "nightly", 2)
    state = (tmp_path / "nightly" / STATE_FILE).read_bytes()
    real_dump = pickle.dump

    def dump_header_then_fail(obj: object, *args: object, **kwargs: object) -> None:
        if not isinstance(obj, dict):
            raise OSError(28, "No space left on device")
        real_dump(obj, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pickle, "dump", dump_header_then_fail)
    with pytest.raises(OSError, match="No space left"):
        generate(replace(CONFIG, days=3), tmp_path / "nightly", resume=True)
    monkeypatch.setattr(pickle, "dump", real_dump)
    assert (tmp_path / "nightly" / STATE_FILE).read_bytes() == state
    assert saved_days(tmp_path / "nightly", CONFIG) == 2
    generate(CONFIG, tmp_path / "nightly", resume=True)
    generate(CONFIG, tmp_path / "once")
    assert files(tmp_path / "nightly") == files(tmp_path / "once")


def test_a_state_save_that_fails_keeps_the_previous_state_and_no_half_copy(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A full disk while the state (hundreds of MB at the largest sizes) is written: the
    previous state stays whole and usable, and its half-written copy is removed."""
    nightly(tmp_path, 2)
    before = (tmp_path / STATE_FILE).read_bytes()
    real_dump = pickle.dump

    def full_disk(obj: object, fh: Any, protocol: int | None = None) -> None:
        if not isinstance(obj, dict):  # the header goes in, the state does not
            raise OSError(28, "No space left on device")
        real_dump(obj, fh, protocol=protocol)

    monkeypatch.setattr(pickle, "dump", full_disk)
    with pytest.raises(OSError, match="No space left on device"):
        generate(replace(CONFIG, days=3), tmp_path, resume=True)
    monkeypatch.undo()
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".")) == []
    assert (tmp_path / STATE_FILE).read_bytes() == before
    assert saved_days(tmp_path, CONFIG) == 2
