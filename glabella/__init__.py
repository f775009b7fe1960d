"""Glabella: open-source clinic software for botulinum toxin treatments."""

__version__ = "0.1.0"
