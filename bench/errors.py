"""The one exception type that means "the user gave bad input" (exit code 2)."""


class BenchError(Exception):
    """Invalid input: a broken suite, a missing data set, an unknown name.

    The message is one paragraph that says what is wrong and what to do. The CLI prints it
    without a traceback and exits with code 2; nothing is run and nothing is written.
    """


class DataError(BenchError):
    """A data set is missing, corrupt or inconsistent with its manifest."""
