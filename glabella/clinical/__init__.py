"""The clinical core: pure Python, no Django, every figure sourced.

Public face (see DESIGN.md)::

    from glabella.clinical import catalogue, protocols, reconstitution, safety, schedule, scales
"""
