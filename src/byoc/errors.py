"""Errors byoc reports to users, each with the exit code the CLI documents.

Exit codes (also in `byoc --help` and the README):
  0  success (updated, unchanged, PASS)
  1  the deployment failed and the endpoint is back on its previous image (or verify FAILed)
  2  bad input or a pre-flight check failed: nothing was changed
  3  timed out while SageMaker goes on
  4  credentials or permission problem
  5  unexpected internal error
  6  declined: the answer at the confirmation prompt was no; nothing was changed
  130 interrupted (Ctrl-C, SIGINT): SageMaker goes on with what was started; the summary says what
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
EXIT_BAD_INPUT = 2
EXIT_TIMEOUT = 3
EXIT_AUTH = 4
EXIT_INTERNAL = 5
EXIT_DECLINED = 6  # the answer at the confirmation prompt was no: nothing was changed
EXIT_INTERRUPTED = 130  # Ctrl-C, as shells report SIGINT
# SageMaker reports a missing endpoint, config or model as a ValidationException "Could not find ..."
# (API_DescribeEndpoint, API_DescribeModel); CloudWatch Logs and others use these codes.
NOT_FOUND_CODES = ("ResourceNotFoundException", "ResourceNotFound")


class ByocError(Exception):
    """An error with a one-line message, an optional fix, and an exit code."""

    exit_code = EXIT_BAD_INPUT

    def __init__(self, message: str, fix: str = "") -> None:
        super().__init__(message)
        self.message = message
        self.fix = fix

    def __str__(self) -> str:
        return f"{self.message} {self.fix}".strip() if self.fix else self.message


class BadInput(ByocError):
    """The user asked for something malformed; nothing was changed."""


class PreflightFailed(ByocError):
    """A pre-flight check refused the change; nothing was changed."""


class AuthError(ByocError):
    """Missing or expired credentials, no region, or a denied action."""

    exit_code = EXIT_AUTH

    def __init__(self, message: str, fix: str = "", action: str = "", resource: str = "") -> None:
        super().__init__(message, fix)
        self.action = action
        self.resource = resource


class AwsError(ByocError):
    """An AWS error that byoc does not translate further (carries the AWS code)."""

    def __init__(self, code: str, message: str, operation: str = "") -> None:
        super().__init__(f"{operation}: {code}: {message}" if operation else f"{code}: {message}")
        self.code = code
        self.aws_message = message
        self.operation = operation

    @property
    def not_found(self) -> bool:
        """AWS says the resource does not exist (the one place that reads AWS's wording for it)."""
        return self.code in NOT_FOUND_CODES or (self.code == "ValidationException"
                                                and "Could not find" in self.aws_message)
