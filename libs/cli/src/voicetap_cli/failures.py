"""The expected failures of a command, which ``main`` turns into one line and an exit status."""


class CommandFailed(Exception):
    """Its message is the one line the user sees, after ``voicetap COMMAND:``; no traceback."""

    def __init__(self, message: str, status: int = 1) -> None:
        super().__init__(message)
        self.status = status
