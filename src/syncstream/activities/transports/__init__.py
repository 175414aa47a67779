"""Doorbells: how server processes tell each other that the activity log grew.

Pick one with `doorbell_from_url`; see `base` for the contract every transport keeps.
"""

from .base import Doorbell, RingHandler, channel_for_database, doorbell_from_url

__all__ = ["Doorbell", "RingHandler", "channel_for_database", "doorbell_from_url"]
