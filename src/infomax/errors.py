"""The one exception type the command line turns into a clear message instead of a traceback."""


class InfomaxError(Exception):
    """Bad input or state: the message names the problem and how to fix it."""


class TrainingDiverged(InfomaxError):
    """The loss became NaN or infinite: training stopped, the last good checkpoint kept."""
