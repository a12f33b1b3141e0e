"""The networks of the restoration model: shared blocks, the VAE, the latent mapping with its partial
nonlocal block, the scratch detector and the discriminators. Shapes come from `restore.config`."""
