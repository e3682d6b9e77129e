from primetrade.kit.errors import Conflict, NotFound


class ExportNotFound(NotFound):
    code, title = "export_not_found", "Export not found"

    def __init__(self) -> None:
        super().__init__("No export with this id is visible to you.")


class ExportNotReady(Conflict):
    code, title = "export_not_ready", "The export is not ready"

    def __init__(self, status: str) -> None:
        super().__init__(f"The export is {status}; download it once its status is ready.")


class ExportFailed(Conflict):
    code, title = "export_failed", "The export failed"

    def __init__(self) -> None:
        super().__init__("This export could not be built and never will be; export again.")


class ExportExpired(NotFound):
    code, title = "export_expired", "The export has expired"

    def __init__(self) -> None:
        super().__init__("This export's file was deleted after its lifetime; export again.")
