-- Member search (issue 9, item 3): the trigram indexes of `users` without GIN's pending list.
--
-- With `fastupdate` on (the default) new entries wait in an unsorted pending list until a
-- VACUUM, an autoanalyze or 4 MB of them; every search scans that list whole, and the planner,
-- costing it, read all of `users` sequentially instead (measured on 10,000 members just
-- projected: 13-14 ms per statement instead of 0.5 ms). Off, each sign-up writes its trigrams
-- into the index at once (a few more page writes per new user), and searches stay by index.
-- The rebuild copies index definitions with `pg_get_indexdef`, storage parameters included.
ALTER INDEX users_email_trgm SET (fastupdate = off);
ALTER INDEX users_display_name_trgm SET (fastupdate = off);
-- What is pending already goes into the index now (setting the parameter does not move it).
SELECT gin_clean_pending_list('users_email_trgm'::regclass), gin_clean_pending_list('users_display_name_trgm'::regclass);
