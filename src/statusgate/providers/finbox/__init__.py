"""FinBox BankConnect: the session flow and the legacy entity flow in one adapter."""

from statusgate.providers.finbox.adapter import FinboxAdapter

__all__ = ["FinboxAdapter"]
