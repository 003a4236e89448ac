"""What can go wrong while talking to SendGrid, as one small tree.

The sync job maps these at one place: `AuthRejected` fails the whole run, `SendGridForbidden`
marks one collection, everything else fails the collection it happened in. The names say
"SendGrid" where shared/errors.py has an error of our own API with the same status code
(`Forbidden`, `NotFound`): these are what SendGrid answered us, not what we answer.
"""

from __future__ import annotations

from urllib.parse import urlsplit

AUTH_REJECTED_MESSAGE = "SendGrid rejected the API key"

# SendGrid answers 403 "access forbidden" both when a key lacks a scope and when the account
# lacks the product, so the message names both (scopes from SendGrid's API key permissions).
_REQUIREMENTS: tuple[tuple[str, str], ...] = (
    ("/v3/marketing/", "the marketing.read scope (Marketing Campaigns)"),
    ("/v3/contactdb/", "the marketing_campaigns.read scope (Legacy Marketing Campaigns)"),
    ("/v3/campaigns", "the marketing_campaigns.read scope (Legacy Marketing Campaigns)"),
    # SendGrid documents no scope for Email Logs (more-apis.md §4.2), so none is named.
    ("/v3/logs", "access to the Email Logs API (SendGrid does not document its scope)"),
)


def describe_requirement(url: str) -> str:
    """Name the scope or product an endpoint needs, for a 403 on it."""
    path = urlsplit(url).path
    for prefix, requirement in _REQUIREMENTS:
        if path.startswith(prefix):
            return requirement
    return "a scope this API key does not have"


class SendGridError(Exception):
    """Any failure talking to SendGrid; the message is meant for the run ledger."""


class AuthRejected(SendGridError):
    """401: the key is wrong, revoked or expired. Nothing else will work either."""

    def __init__(self, detail: str = "") -> None:
        self.detail = detail
        super().__init__(AUTH_REJECTED_MESSAGE + (f" ({detail})" if detail else ""))


class SendGridForbidden(SendGridError):
    """403 on one endpoint: the key lacks a scope or the account lacks the product."""

    def __init__(self, url: str, detail: str = "") -> None:
        self.url = url
        self.requirement = describe_requirement(url)
        self.detail = detail
        path = urlsplit(url).path
        said = f" ({detail})" if detail else ""
        super().__init__(f"SendGrid refused {path}{said}: it needs {self.requirement}")


class SendGridNotFound(SendGridError):
    """404; legacy recipient paging uses it to say there are no more pages."""


class RequestRejected(SendGridError):
    """Any other 4xx: our request is wrong, so repeating it cannot help."""

    def __init__(self, status_code: int, url: str, detail: str = "") -> None:
        self.status_code = status_code
        said = f": {detail}" if detail else ""
        super().__init__(f"SendGrid answered {status_code} to {urlsplit(url).path}{said}")


class RateLimited(SendGridError):
    """429, still there after the bounded waits until the reset time."""

    def __init__(self, url: str, reset_at: float | None) -> None:
        self.reset_at = reset_at
        super().__init__(f"SendGrid kept rate-limiting {urlsplit(url).path} (429)")


class RetryableAPIError(SendGridError):
    """5xx, a dropped connection or a timeout, still failing after the bounded retries."""


class PaginationLoop(SendGridError):
    """SendGrid handed back a page token or page it had already given."""


class OffHostLink(SendGridError):
    """A `_metadata.next` link points away from the configured API host."""


class ExportFailed(SendGridError):
    """The contacts export job ended in `failure`, or never became ready in time."""


# What a person can do about a refused Email Logs read. SendGrid says every email customer has
# 30 days of Email Logs but documents neither a plan or add-on gate nor the API key permission
# it needs (more-apis.md §4.2, §7), so the message says what is known and what is not.
EMAIL_LOGS_FORBIDDEN_ADVICE = (
    "the SendGrid account must have the Email Logs API (SendGrid keeps 30 days of email events"
    " for every email customer; whether a plan or add-on gates the API is not documented), and"
    " the API key must be allowed to read it: SendGrid does not document the permission's name,"
    " so give the source a Full Access key, or one whose permissions include Email Logs"
    " (Email Activity) read access"
)
EMAIL_LOGS_UNAUTHORIZED_ADVICE = (
    "the API key is wrong, revoked or expired: give the source a valid key"
)


class EmailLogsRefused(SendGridError):
    """401 or 403 from the Email Logs API: reading events back cannot go on with this key.

    Raised from the `AuthRejected` or `SendGridForbidden` the client raised (its `__cause__`).
    """

    def __init__(self, status_code: int, path: str, detail: str = "") -> None:
        self.status_code = status_code
        self.path = path
        self.detail = detail
        advice = (
            EMAIL_LOGS_UNAUTHORIZED_ADVICE if status_code == 401 else EMAIL_LOGS_FORBIDDEN_ADVICE
        )
        said = f" ({detail})" if detail else ""
        super().__init__(
            f"SendGrid refused the Email Logs API with {status_code} on {path}{said}: {advice}"
        )
