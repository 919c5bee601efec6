"""Exceptions that the command line turns into a message and an exit status."""


class HyperlossError(Exception):
    """A failure that the user can act on. The message states what to do next."""

    exit_status = 1


class UsageError(HyperlossError):
    """Invalid input from the user: an option, a scene file or a look file."""

    exit_status = 2


class InputFileError(UsageError):
    """A scene or look file with one or more problems, all reported at once."""

    def __init__(self, path, problems):
        self.path = path
        self.problems = list(problems)
        lines = [f"{path}: {len(self.problems)} problem(s):"]
        lines += [f"  - {problem}" for problem in self.problems]
        super().__init__("\n".join(lines))
