"""One exception type for user mistakes, so the CLI can turn them into a one-line error."""


class InputError(ValueError):
    """Bad arguments or bad input data. The message names the file or value and what is allowed.

    The CLI prints it on one line and exits with status 2; library callers can catch ValueError.
    """
