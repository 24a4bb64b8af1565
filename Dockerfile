# The image the ECS work pool runs (prefect.yaml, definitions.work_pools.ecs).
# Flow code only: on AWS the clean job runs in Glue and the load in Redshift, so there is
# no Java and no Spark runtime to ship. Dependencies come from uv.lock, exactly.
#
#   docker build -t <account>.dkr.ecr.<region>.amazonaws.com/mystore-elt:latest .
FROM python:3.11-slim

COPY --from=ghcr.io/astral-sh/uv:0.13.9 /uv /usr/local/bin/uv

ENV UV_COMPILE_BYTECODE=1 \
    UV_LINK_MODE=copy \
    UV_PROJECT_ENVIRONMENT=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    PYTHONUNBUFFERED=1

# Must equal the ECS pull step's set_working_directory (a test checks it).
WORKDIR /opt/prefect/mystore-elt

# Dependencies first, from the lock file only, so code edits reuse this layer.
COPY pyproject.toml uv.lock ./
RUN uv sync --locked --no-dev --no-install-project

# What deployed flows import: flows -> tasks, migrations; the Glue job contract; the SQL.
COPY flows ./flows
COPY tasks ./tasks
COPY migrations ./migrations
COPY glue ./glue
COPY sql ./sql
COPY prefect.yaml ./
# Bytecode now, not in every flow run: each ECS task is a fresh container, and a resumed
# run starts a new one, so code compiled at import would be compiled again every time
# (the dependencies are compiled by uv sync, UV_COMPILE_BYTECODE).
RUN python -m compileall -q flows tasks migrations glue

# The ECS worker starts each flow run with `prefect flow-run execute`; prefect is on PATH.
CMD ["prefect", "version"]
