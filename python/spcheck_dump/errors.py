"""The one exception type of spcheck_dump."""


class DumpError(ValueError):
    """A tensor or an annotation that cannot be written as an spcheck trace: unsupported dtype,
    non-contiguous memory, a bad placement, a duplicate key. The message names the tensor."""
