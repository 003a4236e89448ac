"""One fake SendGrid, answering as SendGrid's OpenAPI files say, for the tests and the
benchmark alike:

- payloads.py: every answer's shape (lists, segments, single sends, the export job, error
  bodies, rate-limit headers, token pages);
- suppressions.py, templates.py, senders.py, marketing_stats.py, stats.py, webhooks.py: one
  part of the API each, its shapes and its routes; params.py: query parameters refused with
  SendGrid's 400;
- state.py: `FakeAccountState`, one account: explicit objects a test sets, or
  `generated_account(...)` of any size; the faults it is switched to and what it was asked;
- contacts.py: explicit `Contact`s or `GeneratedContacts`, and the export files made of them;
- app.py: `create_fake_sendgrid(state)`, the one set of request handlers (FastAPI);
- respx_route.py: `FakeAccount`, a state whose app answers a respx router's SendGrid routes
  (the tests mock SendGrid's HTTP API, nothing else), through httpx.ASGITransport;
- server.py: the app as a process (`python -m tests.fake_sendgrid.server`), for
  `scripts/bench` and the fault tests.

It lives under tests/ because it is a test double, checked against the spec like the rest of
the tests (tests/fake_sendgrid_contract validates its answers against SendGrid's OpenAPI
files); the benchmark imports it as it imports the product, and the product never does
(pyproject's package list ships shared, ingest_service, sync_service and sendgrid_source).
"""
