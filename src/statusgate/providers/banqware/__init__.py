"""banqware PSD2 API Hub: session, first-transactions-page and PIS payment callbacks."""

from statusgate.providers.banqware.adapter import BanqwareAdapter

__all__ = ["BanqwareAdapter"]
