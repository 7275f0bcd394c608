-- Member search (issue 9, item 3): plans that do not flip with the sampled statistics.
--
-- For `email ILIKE '%…%'` PostgreSQL's estimate is the share of the column's histogram (100
-- sampled whole values) the pattern matches, and never under 1 in 10,000. One sampled value
-- containing the pattern made it expect 1 % of all users, and it then read every user and every
-- member of the account instead of the trigram indexes (measured at 10,000 members: 25-30 ms
-- for some name prefixes, 0.5 ms for the others). Without a histogram it estimates a pattern
-- by its length: from three characters on the trigram indexes answer, shorter patterns (which
-- trigrams cannot narrow) scan. So these two columns collect no statistics: SET STATISTICS 0
-- stops new ones, and re-declaring the type (the same type: no rewrite, no index rebuild)
-- drops those gathered already. The rebuild gives its new tables the same targets.
ALTER TABLE users
    ALTER COLUMN email TYPE text,
    ALTER COLUMN display_name TYPE text,
    ALTER COLUMN email SET STATISTICS 0,
    ALTER COLUMN display_name SET STATISTICS 0;
