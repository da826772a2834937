"""Accounts by job: who signs in (Authentication), who manages users (UserAdmin), the audit log.

`types` holds the values they share; callers import from here.
"""

from backend.auth.api_keys import ApiKeyInfo, ApiKeyRefused, ApiKeys, NewApiKey
from backend.auth.audit import AUDIT_PAGE_SIZE, AuditFilter, AuditLog, AuditPage
from backend.auth.authentication import Authentication
from backend.auth.login_throttle import (
    LOCKOUT_AFTER_FAILURES,
    LOCKOUT_S,
    LOGIN_DELAY_BASE_S,
    LOGIN_DELAY_MAX_S,
    login_delay_s,
)
from backend.auth.passwords import hash_password, verify_password
from backend.auth.types import (
    CLI,
    ROLES,
    SYSTEM,
    AccountError,
    PermissionDenied,
    Role,
    User,
    require_admin,
)
from backend.auth.users import MIN_PASSWORD_LENGTH, UserAdmin
from backend.store.accounts import AUDIT_OUTCOMES  # the one vocabulary, shown by the Admin tab

__all__ = [
    "AUDIT_OUTCOMES",
    "AUDIT_PAGE_SIZE",
    "CLI",
    "LOCKOUT_AFTER_FAILURES",
    "LOCKOUT_S",
    "LOGIN_DELAY_BASE_S",
    "LOGIN_DELAY_MAX_S",
    "MIN_PASSWORD_LENGTH",
    "ROLES",
    "SYSTEM",
    "AccountError",
    "ApiKeyInfo",
    "ApiKeyRefused",
    "ApiKeys",
    "AuditFilter",
    "AuditLog",
    "AuditPage",
    "Authentication",
    "NewApiKey",
    "PermissionDenied",
    "Role",
    "User",
    "UserAdmin",
    "hash_password",
    "login_delay_s",
    "require_admin",
    "verify_password",
]
