"""ServingError: a TF-style status code and message, mapped to HTTP the way TF Serving maps them."""

# TF Serving's ToHTTPStatusCode (model_servers/http_server.cc).
HTTP_STATUS_BY_CODE = {
    "OK": 200,
    "CANCELLED": 499,
    "UNKNOWN": 500,
    "INVALID_ARGUMENT": 400,
    "DEADLINE_EXCEEDED": 504,
    "NOT_FOUND": 404,
    "ALREADY_EXISTS": 409,
    "PERMISSION_DENIED": 403,
    "RESOURCE_EXHAUSTED": 429,
    "FAILED_PRECONDITION": 400,
    "ABORTED": 409,
    "OUT_OF_RANGE": 400,
    "UNIMPLEMENTED": 501,
    "INTERNAL": 500,
    "UNAVAILABLE": 503,
    "DATA_LOSS": 500,
    "UNAUTHENTICATED": 401,
}


class ServingError(Exception):
    """An error answered to the client as `{ "error": message }` with the mapped HTTP status."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        if code not in HTTP_STATUS_BY_CODE:
            raise ValueError(f"unknown status code {code!r}")
        self.code = code
        self.message = message

    @property
    def http_status(self) -> int:
        return HTTP_STATUS_BY_CODE[self.code]

    @classmethod
    def invalid_argument(cls, message: str) -> "ServingError":
        return cls("INVALID_ARGUMENT", message)

    @classmethod
    def not_found(cls, message: str) -> "ServingError":
        return cls("NOT_FOUND", message)

    @classmethod
    def failed_precondition(cls, message: str) -> "ServingError":
        return cls("FAILED_PRECONDITION", message)

    @classmethod
    def unimplemented(cls, message: str) -> "ServingError":
        return cls("UNIMPLEMENTED", message)


def cut(message: str, limit: int) -> str:
    """`message` up to `limit` characters, then "...TRUNCATED", as TF Serving's ToGRPCStatus cuts."""
    return message if len(message) <= limit else message[:limit] + "...TRUNCATED"
