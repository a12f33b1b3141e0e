"""Patina's restoration model (Wan et al., CVPR 2020): two VAEs, a latent mapping with a partial nonlocal
block, and a scratch detector; trained with `restore train`, exported with `restore export`. Depends on
torch and on `degrade` (never the other way round)."""
