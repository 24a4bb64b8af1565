"""How large the embedded default's sample data may be, shared by the settings that choose
it (``MYSTORE_LOCAL_CUSTOMERS``, ``MYSTORE_LOCAL_SALES_PER_DAY``) and the generator that
writes it (``python -m local.sample_data``); a module of its own so the generator does not
import the settings' dependencies (pydantic, Prefect) to read two numbers.

The generator builds each night's rows in memory: about 3.5 GB a million rows a day of
either table (``bench/bench_sample_data.py``), so the cap keeps both at their largest
within a laptop's memory.
"""

MAX_SAMPLE_ROWS = 1_000_000
SAMPLE_SIZE_LIMIT = (
    f"at most {MAX_SAMPLE_ROWS:,}: the embedded default builds each night's sample data in "
    "memory, about 3.5 GB a million rows"
)
