"""Training the target network: the meta-network op, the Wide ResNet, learning-rate schedules, the data on the
device, packs of runs (exact and fused), PBLF-HG's hypergradient updater, and the training job. Imports
pblf.core only.
"""
