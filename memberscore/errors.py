"""Domain errors: mapped to exit codes only in the CLI and to HTTP codes only in `serving`."""


class MemberscoreError(Exception):
    """Base of every error this project raises on purpose; the message says what to do next."""


class ContractError(MemberscoreError):
    """A whole input does not fit the data contract (missing or unknown columns, wrong file)."""


class DataNotFound(MemberscoreError):
    """An expected table, file or snapshot is absent (for example: the lake is still empty)."""


class MemberNotFound(MemberscoreError):
    """The member id is not known to the feature store."""


class ModelNotReady(MemberscoreError):
    """No model is registered under the requested name and alias."""


class StoreUnavailable(MemberscoreError):
    """The online store or another backing service cannot be reached."""
