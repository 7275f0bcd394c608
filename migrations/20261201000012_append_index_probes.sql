-- roster_append plans its statements once per connection (generic plans, see
-- 20261201000005_append_batch.sql). A generic plan made while `credentials` is small keeps a
-- sequential scan for `email = ANY(c_email)` until the table is analysed again: measured 0.13 ms
-- per append at 1,000 users (growing with the table) against 0.01 ms by the unique index. Every
-- read in the function is a probe by a unique key, so it never wants a sequential scan.
ALTER FUNCTION roster_append(int[], text[], text[], bigint[], bigint[], int[], uuid[], text[], text[],
                             int[], text[], text[], bigint[], text[], text[], jsonb[], jsonb[])
    SET enable_seqscan = off;
