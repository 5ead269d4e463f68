"""What DescribeInstanceAttribute's ``VpcAuthMode`` means, and the one warning about it.

``Open``: clients in the VPC must authenticate with a password (the default).
``Close``: password authentication is off, password-free access from the VPC is on; any
client there acts as the default read/write account, so a new account isolates nothing.
Source: the ModifyInstanceVpcAuthMode page (docs/alibaba-api.md, "VpcAuthMode").

The warning is worded here only, for the pre-flight checks, the pages and the mails.
"""

from __future__ import annotations

from django.utils.translation import gettext_lazy as _

# VpcAuthMode values, not passwords.
PASSWORD_REQUIRED = "Open"  # noqa: S105
PASSWORD_FREE = "Close"  # noqa: S105

PASSWORD_FREE_WARNING = _(
    "Password-free access from the VPC is on for this instance (VpcAuthMode Close): any "
    "client in the VPC acts as the default read/write account without a password, so a "
    "new account isolates nothing."
)
PASSWORD_REQUIRED_NOTE = _(
    "Password-free access from the VPC is off (VpcAuthMode Open): clients must sign in "
    "with an account and its password."
)
UNKNOWN_NOTE = _(
    "Whether password-free access from the VPC is on is not known yet: it will be after "
    "the next sync."
)


def is_password_free(vpc_auth_mode: str) -> bool:
    return vpc_auth_mode == PASSWORD_FREE


def is_known(vpc_auth_mode: str) -> bool:
    return vpc_auth_mode in (PASSWORD_REQUIRED, PASSWORD_FREE)
