"""Authentication: passwords, API tokens, browser sessions, sign-in throttling.

The domain functions live in :mod:`assay.auth.service`; the hashing in
:mod:`assay.auth.secrets`; the tables in :mod:`assay.auth.tables`.
"""

from assay.auth.errors import AuthenticationError, TooManyAttempts

__all__ = ["AuthenticationError", "TooManyAttempts"]
