"""The simulator's error answer: status, error_code and message, sent as the Jobs API's JSON error body."""

from __future__ import annotations


class ApiError(Exception):
    """An error answer of the Jobs API."""

    def __init__(self, status: int, error_code: str, message: str) -> None:
        super().__init__(message)
        self.status, self.error_code, self.message = status, error_code, message


def invalid(message: str) -> ApiError:
    return ApiError(400, "INVALID_PARAMETER_VALUE", message)
