"""Patina's degradation engine: procedural old-photo damage with exact masks and replayable records.

Never imports torch. Entry points: `Degrader` (preset -> plan -> rendered sample),
`replay` (re-render a sample from its manifest line), and the `degrade-gen` command.
"""

from degrade.pipeline import Degrader, Plan, Rendered, replay

__version__ = "0.1.0"
__all__ = ["Degrader", "Plan", "Rendered", "replay", "__version__"]
