"""Schemathesis checks for the GraphQL run of tests/api/conformance.rs (loaded through
SCHEMATHESIS_HOOKS): no answer is a 5xx, and none carries the `INTERNAL` error code.

Schemathesis's own `not_a_server_error` counts every GraphQL error raised during execution as a
server fault, so our typed refusals (`VALIDATION`, `NOT_FOUND`, ...) would fail it; these two
checks say what a fault is here. `INTERNAL` is the server's "anything else" (README, error
codes): every input a client can send must get a typed refusal instead, even in a 200 answer.
"""

import json

import schemathesis


@schemathesis.check
def no_server_error_status(ctx, response, case):
    """Fails on a 5xx answer."""
    if response.status_code >= 500:
        raise AssertionError(f"HTTP {response.status_code}")
    return None


@schemathesis.check
def no_internal_error(ctx, response, case):
    """Fails when the answer's `errors[].extensions.code` holds `INTERNAL`."""
    try:
        body = json.loads(response.text)
    except ValueError:
        return None
    errors = body.get("errors") if isinstance(body, dict) else None
    for error in errors or []:
        code = ((error or {}).get("extensions") or {}).get("code")
        if code == "INTERNAL":
            raise AssertionError(f"INTERNAL error: {error.get('message')}")
    return None
