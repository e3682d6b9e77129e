from typing import Any

from primetrade.kit.errors import AppError


class ImportTooLarge(AppError):
    status, code, title = 413, "import_too_large", "The import is too large"


class UnsupportedImport(AppError):
    status, code, title = 415, "unsupported_import_type", "Unsupported import type"

    def __init__(self) -> None:
        super().__init__(
            "Send CSV (text/csv) or JSON (application/json), as the body or as the `file` "
            "field of a multipart/form-data upload."
        )


class UnreadableImport(AppError):
    status, code, title = 422, "import_unreadable", "The import cannot be read"


class ImportRejected(AppError):
    """all_or_nothing and at least one row was invalid: nothing was created."""

    status, code, title = 422, "import_rejected", "Rows were rejected; nothing was imported"

    def __init__(self, report: dict[str, Any]) -> None:
        super().__init__(f"{len(report['rejected'])} row(s) were rejected.")
        self.report = report

    def extra(self) -> dict[str, Any]:
        return {"report": self.report}
