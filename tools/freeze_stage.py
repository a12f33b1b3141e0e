"""Keep a finished training stage in the repository, so a run too long for one session can go on in the next.

    python tools/freeze_stage.py data/run/vae-a --out runs/RUN/vae-a

A session's data and checkpoints do not outlive it, and a full checkpoint (optimizer moments, discriminators)
is several times the network. A finished stage needs neither: the later stages only read its network. This
writes the stage's latest checkpoint again with the network's weights alone (float32, as trained) and the same
JSON record, marked `frozen` (an unfinished stage is refused: copy its checkpoint whole to resume it). Copy
the folder back into the run folder (`cp -r runs/RUN/* data/run/`) and `tools/train_bundled.py` skips the
stage as finished, as does `restore train all --resume`; `restore train STAGE --resume` refuses to continue it.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from restore import checkpoint, stages
from restore.config import ModelConfig


def freeze(stage_dir: Path, out: Path) -> Path:
    """Write `stage_dir`'s latest checkpoint into `out` with its network's tensors only; returns the tensor file."""
    name, tensors, meta = checkpoint.read(stage_dir)
    if meta["step"] < meta["options"]["steps"]:
        raise checkpoint.CheckpointError(
            f"{stage_dir / name}: step {meta['step']} of {meta['options']['steps']}, not finished "
            "(copy an unfinished stage's checkpoint whole, so that it can resume)"
        )
    key, _ = stages.build_network(meta["stage"], ModelConfig.from_dict(meta["config"]))
    network = {k: v for k, v in tensors.items() if k.startswith(f"{key}.")}
    return checkpoint.save(out, meta["step"], network, {**meta, "frozen": name})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("stage_dir", type=Path, help="a stage folder of a run (RUN/vae-a, ...)")
    parser.add_argument("--out", type=Path, required=True, help="folder to write the frozen stage into")
    args = parser.parse_args()
    try:
        print(f"{freeze(args.stage_dir, args.out)}: frozen")
    except checkpoint.CheckpointError as exc:
        raise SystemExit(f"freeze_stage: {exc}") from None


if __name__ == "__main__":
    main()
