"""What the runs become: trials, Tables 6.2/B.1/B.2, the reproduction tables, every figure, Appendix C and the
generalisation stage. Imports pblf.core, pblf.training and pblf.search.
"""
