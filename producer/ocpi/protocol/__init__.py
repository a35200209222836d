"""What OCPI says, and nothing that talks: the partner side's vocabulary, all pure.

Owns the response envelope and status codes (envelope, responses), the paging and request headers
(headers), `Link` header parsing (links), list query parameters (query), the module and version
names (modules), and the decisions of versions discovery (versions).

May import: the standard library, value libraries (yarl, orjson, msgspec), `schemas` and
`producer.errors`; never another room of `producer.ocpi`, never I/O.
"""
