class EmbeddedError(RuntimeError):
    """An embedded service could not start; the message says why and what to do."""
