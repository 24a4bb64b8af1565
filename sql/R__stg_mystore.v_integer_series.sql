-- The integers 0 to 99,999, for the date and time dimension loaders: Redshift runs
-- generate_series only on the leader node, so it cannot feed an INSERT into a table.
create or replace view stg_mystore.v_integer_series as
with digits as (
    select 0 as digit
    union all
    select 1
    union all
    select 2
    union all
    select 3
    union all
    select 4
    union all
    select 5
    union all
    select 6
    union all
    select 7
    union all
    select 8
    union all
    select 9
)

select
    d1.digit
    + 10 * d2.digit
    + 100 * d3.digit
    + 1000 * d4.digit
    + 10000 * d5.digit as n
from digits as d1
cross join digits as d2
cross join digits as d3
cross join digits as d4
cross join digits as d5;
