"""One fake SendGrid, answering as SendGrid's OpenAPI files say (payloads.py), for the tests
and the benchmark alike:

- payloads.py: every answer's shape (lists, segments, single sends, the export job, error
  bodies, rate-limit headers, page tokens), the one definition both fakes below answer with;
- account.py: `FakeAccount`, an account a test fills and changes between syncs, behind
  respx routes (the tests mock SendGrid's HTTP API, nothing else);
- server.py: a generated account of any size served over real HTTP (FastAPI), with an export
  job made while pending and injected 429s: what `scripts/bench` and the fault tests sync
  against, as a process (`python -m tests.fake_sendgrid.server`) or through ASGI.

It lives under tests/ because it is a test double, checked against the spec like the rest of
the tests; the benchmark imports it as it imports the product, and the product never does
(pyproject's package list ships shared, ingest_service, sync_service and sendgrid_source).
"""
