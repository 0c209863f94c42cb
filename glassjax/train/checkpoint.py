"""Training checkpoints: the whole run state, written atomically, resumable exactly.

A checkpoint folder holds ``step_<N>.msgpack`` files (flax msgpack of the state pytree:
parameters, optimizer state, step, RNG key, data-loader state) beside ``meta_<N>.json``
(config and provenance) and a ``latest`` file naming the newest step.  Each file is
written to a temporary name and renamed, so a run killed at any moment leaves the previous
checkpoint intact; at most one save interval of work is lost.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from flax import serialization

from glassjax.atomic_write import write_bytes_atomic, write_text_atomic
from glassjax.errors import GlassJaxError

_STEP_RE = re.compile(r"^step_(\d+)\.msgpack$")


class CheckpointManager:
    """Save and restore run states in ``directory``, keeping the ``keep`` newest."""

    def __init__(self, directory, keep: int = 3):
        self.directory = Path(directory)
        self.keep = int(keep)

    def steps(self):
        if not self.directory.is_dir():
            return []
        return sorted(int(m.group(1)) for p in self.directory.iterdir() if (m := _STEP_RE.match(p.name)))

    def latest_step(self) -> Optional[int]:
        marker = self.directory / "latest"
        if marker.is_file():
            try:
                step = int(marker.read_text().strip())
                if (self.directory / f"step_{step}.msgpack").is_file():
                    return step
            except ValueError:
                pass
        steps = self.steps()
        return steps[-1] if steps else None

    def save(self, step: int, state: Any, meta: Optional[Dict] = None) -> Path:
        """Write ``state`` (any pytree of arrays/scalars) for ``step``; prune old ones."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.directory / f"step_{int(step)}.msgpack"
        write_bytes_atomic(path, serialization.to_bytes(state))
        write_text_atomic(self.directory / f"meta_{int(step)}.json",
                          json.dumps({"step": int(step), **(meta or {})}, indent=1, default=str))
        write_text_atomic(self.directory / "latest", f"{int(step)}\n")
        for old in self.steps()[: -self.keep] if self.keep > 0 else []:
            for name in (f"step_{old}.msgpack", f"meta_{old}.json"):
                (self.directory / name).unlink(missing_ok=True)
        return path

    def restore(self, target: Any, step: Optional[int] = None) -> Tuple[Any, Dict]:
        """Restore into the structure of ``target`` (a state of the same shape)."""
        step = self.latest_step() if step is None else step
        if step is None:
            raise GlassJaxError(f"{self.directory}: no checkpoint to resume from")
        path = self.directory / f"step_{step}.msgpack"
        try:
            state = serialization.from_bytes(target, path.read_bytes())
        except Exception as exc:  # corrupted or from another model shape
            raise GlassJaxError(
                f"{path}: cannot restore this checkpoint ({exc}); it was written by a run with a "
                "different model or optimizer configuration") from None
        meta_path = self.directory / f"meta_{step}.json"
        meta = json.loads(meta_path.read_text()) if meta_path.is_file() else {"step": step}
        return state, meta
