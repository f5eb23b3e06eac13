"""What every stage shares: the vocabulary, errors, file I/O, the config, the results layout, provenance
records, seeds and candidates. Imports nothing else of pblf.
"""
