"""Patina's restoration model (Wan et al., CVPR 2020). Arrives in a later release; depends on torch and `degrade`."""
