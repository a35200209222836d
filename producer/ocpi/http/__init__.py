"""Talking to the partner: one request, done well.

Owns the session and its headers (client, transport), retries and `Retry-After` (retry), the rate
gate and the partner's advertised limits (ratelimit, ratehints), the concurrency controller and
its limiter (concurrency, limiter), redirects (redirects), the partner's clock (clock) and
versions discovery's two requests (discovery).

May import: `producer.ocpi.protocol`, `producer.errors`, `producer.retry`, `producer.observe`;
never `paging`, `planning` or `pull_client`.
"""
