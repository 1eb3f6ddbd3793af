"""One exception type for bad user input, so CLIs can print one clear line instead of a trace."""


class SplatentError(RuntimeError):
    """Bad input (scene folder, weights, checkpoint, option). The message names the file and the fix."""
