from primetrade.kit.errors import AppError, Forbidden


class InvalidAccountToken(AppError):
    status, code, title = 400, "invalid_token", "The link is invalid, expired or already used"


class EmailNotVerified(Forbidden):
    code, title = "email_not_verified", "Email address not verified"


__all__ = ["EmailNotVerified", "InvalidAccountToken"]
