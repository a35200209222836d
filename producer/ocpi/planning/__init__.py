"""Which windows to pull, and whether each came out complete.

Owns the pure window arithmetic (windows), the planner's count probes and narrowing (planning),
listing a whole module for `verify` and tombstones (listing) and the window verdict (verdict).

May import: `producer.ocpi.protocol`, `producer.ocpi.http`, `producer.ocpi.paging`,
`producer.errors`; never `pull_client`.
"""
