"""Training and evaluation: evaluation protocols (LFW) and threshold calibration here;
datasets, P x K sampling, triplet mining, losses and the training loop follow (see issues)."""
