"""The fake SendGrid (app.py) with a generated account, as its own process: what
`scripts/bench` and the fault tests sync against over real HTTP.

    python -m tests.fake_sendgrid.server --contacts 1000000 --port 4010
    SENDGRID_API_URL=http://127.0.0.1:4010 sendgrid-source sync-now SOURCE
"""

from __future__ import annotations

import argparse
from datetime import UTC, datetime, timedelta

from tests.fake_sendgrid.app import create_fake_sendgrid
from tests.fake_sendgrid.logs_query import STATUSES
from tests.fake_sendgrid.state import generated_account


def main() -> None:
    import uvicorn

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--contacts", type=int, default=100_000)
    parser.add_argument("--lists", type=int, default=2500)
    parser.add_argument("--single-sends", type=int, default=10)
    parser.add_argument("--export-files", type=int, default=2)
    parser.add_argument("--rate-limit-every", type=int, default=0)
    parser.add_argument(
        "--export-seconds", type=float, default=0.0, help="keep each export pending this long"
    )
    parser.add_argument("--suppressions", type=int, default=2500)
    parser.add_argument("--templates", type=int, default=30)
    parser.add_argument(
        "--email-logs",
        type=int,
        default=0,
        help="messages in Email Logs, created evenly over the 30 days up to now",
    )
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4010)
    args = parser.parse_args()
    state = generated_account(
        contacts=args.contacts,
        lists=args.lists,
        single_sends=args.single_sends,
        export_files=args.export_files,
        rate_limit_every=args.rate_limit_every,
        suppressions=args.suppressions,
        templates=args.templates,
    )
    state.export_seconds = args.export_seconds
    if args.email_logs:
        days = 30
        start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=days)
        state.email_logs.generate(
            args.email_logs, start=start, seconds=days * 86_400, statuses=STATUSES
        )
    uvicorn.run(create_fake_sendgrid(state), host=args.host, port=args.port, log_level="warning")


if __name__ == "__main__":
    main()
