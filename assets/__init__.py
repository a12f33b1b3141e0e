"""Data files the engine reads at run time (installed as `degrade.assets`); see scratch_textures/README.md."""
