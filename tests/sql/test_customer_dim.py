"""sp_load_customer_dim: SCD type 1 for customer attributes, type 2 for the address."""

from __future__ import annotations

import itertools
import random
from datetime import date, datetime, timedelta

from tests.sql.staging import START, Warehouse

LOAD = "call stg_mystore.sp_load_customer_dim()"
END_OF_TIME = datetime(2999, 12, 31)


def test_new_customer_gets_one_current_decoded_row(wh: Warehouse) -> None:
    wh.addresses({"address_id": "A1"})
    wh.customers({"customer_id": "C1", "gender": "F", "marital_status": "M"})
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert row["scd_current_flag"] == "Y"
    assert row["scd_start_date"] == START
    assert row["scd_end_date"] == END_OF_TIME
    assert (row["gender"], row["marital_status"]) == ("Female", "Married")
    assert (row["address_id"], row["city"], row["zip"]) == ("A1", "Springfield", "12345")
    assert row["start_date"] == START.date()
    assert row["customer_key"] > 0


def test_nulls_become_unknown_minus_one_and_year_1000(wh: Warehouse) -> None:
    wh.customers(
        {
            "customer_id": "C1",
            "gender": None,
            "marital_status": None,
            "first_name": None,
            "birth_date": None,
            "vehicle_count": None,
            "lower_bound": None,
            "address_id": "A-missing",
        }
    )
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert (row["gender"], row["marital_status"], row["first_name"]) == ("Unknown",) * 3
    assert row["birth_date"] == date(1000, 1, 1)
    assert (row["vehicle_count"], row["income_band_lower_bound"]) == (-1, -1)
    # The address record has not arrived: its attributes are unknown, not NULL; a missing
    # state is '#' and a missing gmt_offset -999 (-1 is a real UTC offset), as originally.
    assert (row["street"], row["city"], row["state"]) == ("Unknown", "Unknown", "#")
    assert row["gmt_offset"] == -999


def test_type1_change_updates_in_place_without_a_new_version(wh: Warehouse) -> None:
    wh.addresses({"address_id": "A1"})
    wh.customers({"customer_id": "C1", "email_address": "old@example.com"})
    wh.call(LOAD)
    [before] = wh.dim("C1")

    later = START + timedelta(hours=5)
    wh.customers({"customer_id": "C1", "at": later, "email_address": "new@example.com"})
    wh.call(LOAD)

    [after] = wh.dim("C1")
    assert after["customer_key"] == before["customer_key"]
    assert after["email_address"] == "new@example.com"
    assert after["scd_start_date"] == before["scd_start_date"]
    assert after["scd_current_flag"] == "Y"
    assert after["dw_update_date"] >= before["dw_update_date"]


def test_move_closes_the_old_version_at_the_change_time_and_opens_a_new_one(
    wh: Warehouse,
) -> None:
    wh.addresses({"address_id": "A1"}, {"address_id": "A2", "city": "Shelbyville"})
    wh.customers({"customer_id": "C1", "address_id": "A1"})
    wh.call(LOAD)

    moved = START + timedelta(days=3, hours=2)
    wh.customers({"customer_id": "C1", "at": moved, "address_id": "A2"})
    wh.call(LOAD)

    old, new = wh.dim("C1")
    assert (old["address_id"], old["scd_current_flag"], old["scd_end_date"]) == ("A1", "N", moved)
    assert (new["address_id"], new["city"], new["scd_current_flag"]) == ("A2", "Shelbyville", "Y")
    assert (new["scd_start_date"], new["scd_end_date"]) == (moved, END_OF_TIME)
    assert new["customer_key"] != old["customer_key"]
    assert new["start_date"] == old["start_date"] == START.date()


def test_changed_address_record_opens_a_version_at_the_address_change_time(
    wh: Warehouse,
) -> None:
    wh.addresses({"address_id": "A1"})
    wh.customers({"customer_id": "C1"})
    wh.call(LOAD)

    changed = START + timedelta(days=1)
    wh.addresses({"address_id": "A1", "at": changed, "zip": "99999"})
    wh.call(LOAD)

    old, new = wh.dim("C1")
    assert (old["zip"], old["scd_end_date"], old["scd_current_flag"]) == ("12345", changed, "N")
    assert (new["zip"], new["scd_start_date"], new["scd_current_flag"]) == ("99999", changed, "Y")


def test_type1_change_reaches_closed_versions_too(wh: Warehouse) -> None:
    wh.addresses({"address_id": "A1"}, {"address_id": "A2"})
    wh.customers({"customer_id": "C1"})
    wh.call(LOAD)
    wh.customers({"customer_id": "C1", "at": START + timedelta(days=1), "address_id": "A2"})
    wh.call(LOAD)
    wh.customers(
        {
            "customer_id": "C1",
            "at": START + timedelta(days=2),
            "address_id": "A2",
            "last_name": "King",
        }
    )
    wh.call(LOAD)

    versions = wh.dim("C1")
    assert len(versions) == 2
    assert {v["last_name"] for v in versions} == {"King"}


def test_late_older_customer_record_never_overwrites_a_newer_one(wh: Warehouse) -> None:
    wh.addresses({"address_id": "A1"}, {"address_id": "A2"})
    newer = START + timedelta(days=2)
    wh.customers({"customer_id": "C1", "at": newer, "email_address": "newest@example.com"})
    wh.call(LOAD)
    before = wh.snapshot()

    # An older version (moved, other email) arrives late, processed after the newer one.
    wh.customers(
        {"customer_id": "C1", "at": START, "address_id": "A2", "email_address": "old@example.com"}
    )
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert (row["email_address"], row["address_id"]) == ("newest@example.com", "A1")
    assert wh.snapshot()[0] == before[0]


def test_late_older_address_record_never_overwrites_a_newer_one(wh: Warehouse) -> None:
    wh.addresses({"address_id": "A1", "at": START + timedelta(days=1), "zip": "22222"})
    wh.customers({"customer_id": "C1"})
    wh.call(LOAD)

    wh.addresses({"address_id": "A1", "at": START, "zip": "11111"})
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert row["zip"] == "22222"


def test_address_arriving_after_the_customer_fills_the_version_in_place(wh: Warehouse) -> None:
    wh.customers({"customer_id": "C1", "at": START + timedelta(hours=1)})
    wh.call(LOAD)
    wh.addresses({"address_id": "A1", "at": START})  # dated before the version started
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert (row["city"], row["scd_current_flag"]) == ("Springfield", "Y")


def test_a_load_with_no_new_data_changes_nothing(wh: Warehouse) -> None:
    wh.addresses({"address_id": "A1"})
    wh.customers({"customer_id": "C1"}, {"customer_id": "C2"})
    wh.call(LOAD)
    before = wh.snapshot()

    wh.call(LOAD)
    wh.call(LOAD)

    assert wh.snapshot() == before


def test_exactly_one_current_row_per_customer_after_any_sequence_of_loads(
    wh: Warehouse,
) -> None:
    rng = random.Random(4)
    customers = [f"C{i}" for i in range(12)]
    address_ids = [f"A{i}" for i in range(6)]
    wh.addresses(*({"address_id": a} for a in address_ids))
    now = START
    for night in range(8):
        for _ in range(rng.randint(1, 10)):
            now += timedelta(minutes=rng.randint(1, 600))
            kind = rng.choice(["customer", "address", "late"])
            if kind == "address":
                wh.addresses(
                    {
                        "address_id": rng.choice(address_ids),
                        "at": now,
                        "zip": str(rng.randint(1, 9)),
                    }
                )
            else:
                at = now - timedelta(days=3) if kind == "late" else now
                wh.customers(
                    {
                        "customer_id": rng.choice(customers),
                        "at": at,
                        "address_id": rng.choice(address_ids),
                        "credit_rating": rng.choice(["Good", "High Risk"]),
                    }
                )
        wh.call(LOAD)

        rows = wh.rows(
            "select customer_id, scd_start_date, scd_end_date, scd_current_flag"
            " from dw_mystore.customer_dim where customer_key <> -1"
            " order by customer_id, scd_start_date"
        )
        by_customer: dict[str, list[tuple[datetime, datetime, str]]] = {}
        for customer_id, start, end, flag in rows:
            by_customer.setdefault(customer_id, []).append((start, end, flag))
        for customer_id, versions in by_customer.items():
            flags = [flag for _, _, flag in versions]
            assert flags.count("Y") == 1 and flags[-1] == "Y", (night, customer_id, versions)
            assert versions[-1][1] == END_OF_TIME
            for (_, end, _), (start, _, _) in itertools.pairwise(versions):
                assert end == start, f"versions of {customer_id} must be contiguous: {versions}"
            assert all(start < end for start, end, _ in versions)


def test_the_original_decoding_is_kept(wh: Warehouse) -> None:
    """Unrecognised codes pass through, birth_country is INITCAP'ed, a missing state is '#'."""
    wh.addresses({"address_id": "A1", "state": None})
    wh.customers(
        {
            "customer_id": "C1",
            "gender": "X",
            "marital_status": "U",
            "birth_country": "united STATES",
        }
    )
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert (row["gender"], row["marital_status"]) == ("X", "U")
    assert row["birth_country"] == "United States"
    assert row["state"] == "#"


def test_a_customer_without_customer_datetime_is_kept_and_a_dated_record_supersedes_it(
    wh: Warehouse,
) -> None:
    wh.addresses({"address_id": "A1"})
    wh.customers({"customer_id": "C1", "customer_datetime": None, "customer_date": START.date()})
    wh.call(LOAD)

    [row] = wh.dim("C1")
    assert row["customer_datetime"] == datetime(1000, 1, 1)
    assert row["scd_current_flag"] == "Y"

    wh.customers({"customer_id": "C1", "email_address": "dated@example.com"})
    wh.call(LOAD)
    [row] = wh.dim("C1")
    assert (row["email_address"], row["customer_datetime"]) == ("dated@example.com", START)
