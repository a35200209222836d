"""The partner side: everything that talks OCPI to a partner, and nothing that knows Kafka.

Four rooms, each importing only the ones above it in this list: `protocol` (what OCPI says),
`http` (talking to the partner), `paging` (one window's pages), `planning` (which windows, and
whether each is complete). `pull_client` (the public `PullClient`) stands above them all.
"""
