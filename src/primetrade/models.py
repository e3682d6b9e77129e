"""Imports every model so the metadata is complete (for migrations and tests)."""


def load_all() -> None:
    from primetrade.accounts import models as account_models  # noqa: F401
    from primetrade.auth import models as auth_models  # noqa: F401
    from primetrade.exports import models as export_models  # noqa: F401
    from primetrade.jobs import models as job_models  # noqa: F401
    from primetrade.kit import idempotency  # noqa: F401
    from primetrade.mail import models as mail_models  # noqa: F401
    from primetrade.notifications import models as notification_models  # noqa: F401
    from primetrade.tasks import models as task_models  # noqa: F401
    from primetrade.users import models as user_models  # noqa: F401
