"""What a nightly MyStore feed contains: the rows of each day, with a real feed's flaws.

Split from generate.py (which writes those rows as partitions, computes the truth about
them and is the CLI) so that the part that decides *what* the rows are -- which customers
change or move, which sales arrive late or twice, which rows are broken -- reads on its own.
Everything here is pure and deterministic for a seed: nothing is written.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from flows.sample_size import MAX_SAMPLE_ROWS, SAMPLE_SIZE_LIMIT
from glue.contract import CLEAN_TABLES, STORE_CUSTOMER, STORE_CUSTOMER_ADDRESS, STORE_SALE

__all__ = ["FeedGenerator", "GenerateConfig", "Row", "format_timestamp", "parse_timestamp"]

Row = dict[str, str | None]

_FIRST = ["James", "Mary", "John", "Patricia", "Robert", "Jennifer", "Michael", "Linda", "Ana"]
_LAST = ["Smith", "Johnson", "Williams", "Brown", "Jones", "Garcia", "Miller", "Davis", "Silva"]
_SALUTATION = ["Mr.", "Mrs.", "Ms.", "Dr.", "Sir", "Miss"]
_COUNTRIES = ["UNITED STATES", "CANADA", "MEXICO", "BRAZIL", "GERMANY", "JAPAN"]
_MARITAL = ["S", "M", "D", "W", "U"]
_EDUCATION = ["Primary", "Secondary", "College", "2 yr Degree", "4 yr Degree", "Advanced Degree"]
_BUY_POTENTIAL = ["0-500", "501-1000", "1001-5000", "5001-10000", ">10000", "Unknown"]
_CREDIT = ["Good", "High Risk", "Low Risk", "Unknown"]
_CITIES = [
    ("Midway", "Williamson County", "TN", "-6.00"),
    ("Fairview", "Walker County", "GA", "-5.00"),
    ("Oak Grove", "Ziebach County", "SD", "-7.00"),
    ("Greenwood", "Franklin Parish", "LA", "-6.00"),
    ("Springfield", "Hampden County", "MA", "-5.00"),
    ("Riverside", "Pacific County", "WA", "-8.00"),
]
_STREETS = ["Main", "Oak", "Park", "Elm", "Lake", "Hill", "Cedar", "Maple"]
_STREET_TYPES = ["St", "Ave", "Blvd", "Ln", "Dr", "Way"]
_LOCATION_TYPES = ["apartment", "condo", "single family"]
_BAD_TIMESTAMPS = ["not a timestamp", "2026-02-30 10:00:00", "31/12/2026 25:61", "yesterday"]


@dataclass(frozen=True)
class GenerateConfig:
    """What to generate; shares are per day and per table, of the day's good rows."""

    days: int = 3
    customers: int = 1000
    sales_per_day: int = 2000
    seed: int = 42
    start_date: date = date(2026, 11, 1)
    change_share: float = 0.03
    move_share: float = 0.01
    new_customer_share: float = 0.005
    duplicate_share: float = 0.01
    late_share: float = 0.02
    bad_share: float = 0.01

    def __post_init__(self) -> None:
        for name in ("days", "customers"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.sales_per_day < 0:
            raise ValueError(f"sales_per_day must be 0 or more, got {self.sales_per_day}")
        for name in ("customers", "sales_per_day"):
            if getattr(self, name) > MAX_SAMPLE_ROWS:
                raise ValueError(f"{name} {getattr(self, name):,} is too many; {SAMPLE_SIZE_LIMIT}")
        for name in _SHARES:
            value = getattr(self, name)
            if not 0.0 <= value <= 0.5:
                raise ValueError(f"{name} must be between 0 and 0.5, got {value}")


_SHARES: tuple[str, ...] = ("change_share", "move_share", "new_customer_share")
_SHARES += ("duplicate_share", "late_share", "bad_share")


def format_timestamp(value: datetime) -> str:
    """A timestamp the way most upstream systems send it (``YYYY-MM-DD HH:MM:SS``)."""
    return value.strftime("%Y-%m-%d %H:%M:%S")


def _iso_ts(value: datetime) -> str:
    """Some upstream systems send ISO-8601 with a zone designator; the job must accept both."""
    return value.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_timestamp(value: str | None) -> datetime:
    """Either form a row's timestamp is written in, back to a datetime."""
    assert value is not None
    return datetime.strptime(value.replace("T", " ").rstrip("Z"), "%Y-%m-%d %H:%M:%S")


class FeedGenerator:
    """Makes each day's raw rows, one seeded random stream for all of them (same seed, same
    rows): day 1 a full load, then new, changed and moved customers, late and re-sent rows."""

    def __init__(self, config: GenerateConfig) -> None:
        self.config = config
        self.rng = random.Random(config.seed)
        self.customers: dict[str, Row] = {}
        self.history: dict[str, list[Row]] = {}
        self.addresses: dict[str, Row] = {}
        self.next_customer = 1
        self.next_address = 1
        self.next_ticket = 1_000_000
        self.last_sales: list[str] = []  # yesterday's sales, as JSON

    # -- entities -------------------------------------------------------------------------

    def _at(self, day: date, earliest: int = 0) -> datetime:
        return datetime.combine(day, datetime.min.time()) + timedelta(
            seconds=self.rng.randrange(earliest, 86_400)
        )

    def _stamp(self, row: Row, field: str, when: datetime) -> None:
        row[field] = _iso_ts(when) if self.rng.random() < 0.1 else format_timestamp(when)
        processed = when + timedelta(seconds=self.rng.randrange(1, 900))
        row["processing_datetime"] = format_timestamp(processed)

    def _new_address(self, when: datetime) -> Row:
        rng = self.rng
        address_id = f"AAAA{self.next_address:08d}"
        self.next_address += 1
        city, county, state, gmt = rng.choice(_CITIES)
        zip_code = f"{rng.randrange(0, 100_000):05d}"
        row: Row = {
            "address_id": address_id,
            "street": f"{rng.randrange(1, 999)} {rng.choice(_STREETS)} {rng.choice(_STREET_TYPES)}",
            "city": city,
            "zip": zip_code,
            "county": county,
            "state": state,
            "country": "United States",
            "gmt_offset": gmt,
            "location_type": rng.choice(_LOCATION_TYPES) if rng.random() > 0.05 else None,
        }
        self._stamp(row, "address_datetime", when)
        self.addresses[address_id] = row
        return row

    def _new_customer(self, when: datetime, address_id: str) -> Row:
        rng = self.rng
        customer_id = f"CCCC{self.next_customer:08d}"
        self.next_customer += 1
        first, last = rng.choice(_FIRST), rng.choice(_LAST)
        band = rng.randrange(0, 20)
        birth = date(1940, 1, 1) + timedelta(days=rng.randrange(0, 365 * 60))
        row: Row = {
            "customer_id": customer_id,
            "first_name": first,
            "last_name": last,
            "salutation": rng.choice(_SALUTATION) if rng.random() > 0.1 else None,
            "gender": rng.choice(["M", "F"]) if rng.random() > 0.1 else None,
            "birth_date": birth.isoformat() if rng.random() > 0.05 else None,
            "birth_country": rng.choice(_COUNTRIES),
            "email_address": f"{first}.{last}.{customer_id[-5:]}@example.com"
            if rng.random() > 0.08
            else None,
            "marital_status": rng.choice(_MARITAL),
            "education_status": rng.choice(_EDUCATION),
            "lower_bound": str(band * 10_000 + 1 if band else 0),
            "upper_bound": str((band + 1) * 10_000),
            "purchase_estimate": str(rng.randrange(1, 20) * 500),
            "buy_potential": rng.choice(_BUY_POTENTIAL),
            "credit_rating": rng.choice(_CREDIT),
            "vehicle_count": str(rng.randrange(0, 5)) if rng.random() > 0.05 else None,
            "address_id": address_id,
        }
        self._stamp(row, "customer_datetime", when)
        self._remember(row)
        return row

    def _remember(self, row: Row) -> None:
        customer_id = str(row["customer_id"])
        self.customers[customer_id] = row
        self.history.setdefault(customer_id, []).append(row)

    def _changed(self, customer_id: str, when: datetime, **changes: str | None) -> Row:
        row = dict(self.customers[customer_id]) | changes
        # One customer's changes are emitted in event-time order, as a source system would.
        last = parse_timestamp(self.customers[customer_id]["customer_datetime"])
        self._stamp(row, "customer_datetime", max(when, last + timedelta(seconds=1)))
        self._remember(row)
        return row

    def _type1_change(self, customer_id: str, when: datetime) -> Row:
        rng = self.rng
        field = rng.choice(["email_address", "marital_status", "credit_rating", "vehicle_count"])
        current = self.customers[customer_id]
        value: str | None
        if field == "email_address":
            value = f"{current['first_name']}.{rng.randrange(10**6)}@example.org"
        elif field == "marital_status":
            value = rng.choice(_MARITAL)
        elif field == "credit_rating":
            value = rng.choice(_CREDIT)
        else:
            value = str(rng.randrange(0, 5))
        return self._changed(customer_id, when, **{field: value})

    # -- one day --------------------------------------------------------------------------

    def day(self, day_index: int) -> dict[str, list[Row]]:
        cfg, rng = self.config, self.rng
        today = cfg.start_date + timedelta(days=day_index)
        customers: list[Row] = []
        addresses: list[Row] = []
        if day_index == 0:
            for _ in range(cfg.customers):
                when = self._at(today)
                address = self._new_address(when)
                addresses.append(address)
                customers.append(self._new_customer(when, str(address["address_id"])))
        else:
            existing = sorted(self.customers)
            resend = [c for c in existing if len(self.history[c]) > 1]
            share = cfg.new_customer_share
            for _ in range(max(1, round(cfg.customers * share)) if share else 0):
                when = self._at(today)
                address = self._new_address(when)
                addresses.append(address)
                customers.append(self._new_customer(when, str(address["address_id"])))
            changed = rng.sample(
                existing, min(len(existing), round(len(existing) * cfg.change_share))
            )
            for customer_id in changed:
                # Some changes happened yesterday evening and arrive only today (late, newest).
                late = rng.random() < cfg.late_share * 5
                when = self._at(today - timedelta(days=1), 72_000) if late else self._at(today)
                customers.append(self._type1_change(customer_id, when))
                if rng.random() < 0.2:  # a second change the same day: keep the later one
                    customers.append(self._type1_change(customer_id, self._at(today, 80_000)))
            movers = rng.sample(existing, min(len(existing), round(len(existing) * cfg.move_share)))
            for customer_id in movers:
                when = self._at(today, 0)
                address = self._new_address(when)
                addresses.append(address)
                customers.append(
                    self._changed(customer_id, when, address_id=str(address["address_id"]))
                )
            for address_id in rng.sample(
                sorted(self.addresses), max(1, len(self.addresses) // 500)
            ):
                fixed = dict(self.addresses[address_id])
                fixed["zip"] = f"{rng.randrange(0, 100_000):05d}"
                self._stamp(fixed, "address_datetime", self._at(today))
                self.addresses[address_id] = fixed
                addresses.append(fixed)
            # Late and stale: a previous version re-sent today must not win over the stored one.
            for customer_id in rng.sample(resend, round(len(resend) * cfg.late_share * 10)):
                customers.append(dict(self.history[customer_id][-2]))
        sales = self._sales(today, day_index)
        # Yesterday's sales re-sent unchanged: the upsert must keep one row per key.
        resent = self.rng.sample(self.last_sales, round(len(self.last_sales) * cfg.duplicate_share))
        # Kept as JSON until re-sent: about a quarter of a row dict's memory, and the state
        # saved between nights pickles one string a sale (up to a million a night).
        self.last_sales = [json.dumps(r) for r in sales]
        sales.extend(json.loads(r) for r in resent)
        return {
            STORE_CUSTOMER.name: customers,
            STORE_CUSTOMER_ADDRESS.name: addresses,
            STORE_SALE.name: sales,
        }

    def _sales(self, today: date, day_index: int) -> list[Row]:
        cfg, rng = self.config, self.rng
        customer_ids = sorted(self.customers)
        rows: list[Row] = []
        while len(rows) < cfg.sales_per_day:
            late = day_index > 0 and rng.random() < cfg.late_share
            sale_day = today - timedelta(days=rng.randint(1, min(3, day_index))) if late else today
            when = self._at(sale_day)
            customer_id = rng.choice(customer_ids) if rng.random() > 0.03 else None
            store_id = f"S{rng.randrange(1, 13):03d}"
            promo_id = f"P{rng.randrange(1, 300):04d}" if rng.random() < 0.3 else None
            self.next_ticket += 1
            for item in range(min(rng.randint(1, 5), cfg.sales_per_day - len(rows))):
                quantity = rng.randint(1, 10)
                wholesale = rng.randrange(100, 10_000)  # cents
                list_price = wholesale * rng.randint(110, 200) // 100
                sales_price = list_price * rng.randint(50, 100) // 100
                discount = (list_price - sales_price) * quantity
                ext_sales = sales_price * quantity
                coupon = ext_sales // 10 if promo_id and rng.random() < 0.5 else 0
                net_paid = ext_sales - coupon
                tax = net_paid * 8 // 100
                row: Row = {
                    "ticket_id": str(self.next_ticket),
                    "item_id": str(rng.randrange(1, 18_000) * 10 + item),
                    "quantity": str(quantity),
                    "wholesale_cost": _money(wholesale),
                    "list_price": _money(list_price),
                    "sales_price": _money(sales_price),
                    "ext_discount_amt": _money(discount),
                    "ext_sales_price": _money(ext_sales),
                    "ext_wholesale_cost": _money(wholesale * quantity),
                    "ext_list_price": _money(list_price * quantity),
                    "ext_tax": _money(tax),
                    "coupon_amt": _money(coupon),
                    "net_paid": _money(net_paid),
                    "net_paid_inc_tax": _money(net_paid + tax),
                    "net_profit": _money(net_paid - wholesale * quantity),
                    "customer_id": customer_id,
                    "store_id": store_id,
                    "promo_id": promo_id,
                }
                self._stamp(row, "sale_datetime", when)
                rows.append(row)
        return rows

    # -- imperfections common to all tables -----------------------------------------------

    def imperfect(self, table: str, rows: list[Row]) -> tuple[list[Row], list[Row]]:
        """Add in-batch duplicates and bad rows; return (good rows, bad rows), shuffled."""
        cfg, rng = self.config, self.rng
        contract = CLEAN_TABLES[table]
        good = list(rows)
        for row in rng.sample(rows, round(len(rows) * cfg.duplicate_share)):
            good.append(dict(row))
        bad: list[Row] = []
        for i in range(int(len(rows) * cfg.bad_share)):
            broken = dict(rng.choice(rows))
            if i % 2 == 0:
                broken[contract.key[0]] = None if i % 4 == 0 else "  "
            else:
                broken[contract.ordering] = rng.choice(_BAD_TIMESTAMPS)
            bad.append(broken)
        return good, bad


def _money(cents: int) -> str:
    return f"{cents // 100}.{cents % 100:02d}" if cents >= 0 else f"-{_money(-cents)}"
