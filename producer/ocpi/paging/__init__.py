"""One window's pages: what to fetch next, and what a page holds.

Owns the page driver every reader of pages uses (pages), the pure walk that decides the next
request and when a chain is complete (pagination, walk), loop detection (loops), next-link repair
(repair) and the one page reader that turns a page's bytes into keyed records (reader).

May import: `producer.ocpi.protocol`, `producer.ocpi.http`, `producer.errors`; never `planning`
or `pull_client`.
"""
