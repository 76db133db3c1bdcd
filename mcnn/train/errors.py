"""The error a user can fix by changing the run's config or flags."""

from __future__ import annotations


class TrainingError(ValueError):
    """Training cannot go on for a reason the user can fix; the message says which."""
