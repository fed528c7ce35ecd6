"""Errors raised for bad input data."""


class DataError(ValueError):
    """Bad input data: the message names the file or config id and says what to do."""
