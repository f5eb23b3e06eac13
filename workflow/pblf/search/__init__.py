"""Choosing candidates: the proposers of the search methods, low-fidelity search, a search's evaluations and its
choice. Imports pblf.core and pblf.training.
"""
