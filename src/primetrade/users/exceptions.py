from primetrade.kit.errors import AppError, Conflict, InvalidInput, NotFound


class UserNotFound(NotFound):
    code, title = "user_not_found", "User not found"


class EmailTaken(Conflict):
    code, title = "email_taken", "Email already registered"


class LastAdmin(Conflict):
    code, title = "last_admin", "The last admin must stay an active admin"


class WrongPassword(InvalidInput):
    code = "wrong_password"


class WeakPassword(InvalidInput):
    code = "weak_password"


__all__ = ["AppError", "EmailTaken", "LastAdmin", "UserNotFound", "WeakPassword", "WrongPassword"]
