"""Trained weights shipped with Patina (`patina-small.safetensors`), loaded by name with
`restore.pipeline.Restorer.load("patina-small")`. Made by `python tools/train_bundled.py`; what they were
trained on and how well they do is in docs/model-card.md."""
