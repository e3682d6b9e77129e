from primetrade.kit.errors import Conflict, NotFound, PreconditionFailed


class TaskNotFound(NotFound):
    code, title = "task_not_found", "Task not found"

    def __init__(self) -> None:
        super().__init__("No task with this id is visible to you.")


class VersionMismatch(PreconditionFailed):
    code, title = "version_mismatch", "The task has changed"


class TaskChanged(Conflict):
    code, title = "concurrent_update", "The task changed while saving"

    def __init__(self) -> None:
        super().__init__("Someone else changed this task at the same moment; reload and retry.")


class AlreadyArchived(Conflict):
    code, title = "task_already_archived", "The task is archived already"

    def __init__(self) -> None:
        super().__init__("This task is archived already; restore it instead.")


class NotArchived(Conflict):
    code, title = "task_not_archived", "The task is not archived"

    def __init__(self) -> None:
        super().__init__("Only an archived task can be restored.")
