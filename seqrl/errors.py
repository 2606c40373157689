"""The one exception type that the command-line tools report without a traceback."""


class SeqRLError(Exception):
    """A problem with the user's input (a path, a name, a shape, a config key).

    The message says what is wrong and what to do about it; the command-line
    tools print it as one paragraph and exit with status 2.
    """
