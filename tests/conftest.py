"""Shared fixtures. The tiny-lab model is built once per machine (cached under $AEPO_CACHE)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

os.environ.setdefault("WANDB_MODE", "disabled")
SHARED_DATA = Path(os.environ.get("AEPO_SHARED_DATA", Path(__file__).resolve().parents[2] / "shared" / "data"))


@pytest.fixture(scope="session")
def tiny_model_dir() -> Path:
    from aepo.tasks.tinylab import tiny_model_path

    return tiny_model_path("tiny", log=lambda *_: None)


# ---- bad input through the real CLI (tests/test_bad_input_*.py) -----------------------------------
def snapshot(root: Path) -> dict[Path, bytes]:
    """The bytes of every file under root."""
    return {p: p.read_bytes() for p in Path(root).rglob("*") if p.is_file()}


def one_line_error(res, before: dict[Path, bytes], match: str, code: int = 2) -> None:
    """A CLI result is exactly one line on stderr (`error: ...` holding `match`), exit `code`, no
    traceback, and every file that existed before holds the same bytes."""
    lines = res.stderr.splitlines()
    assert res.exit_code == code, f"exit {res.exit_code}: {res.output[-1500:]}"
    assert len(lines) == 1 and lines[0].startswith("error: "), res.stderr[-1500:]
    assert match in lines[0], lines[0]
    assert "Traceback" not in res.output
    assert res.exception is None or isinstance(res.exception, SystemExit), repr(res.exception)
    for path, data in before.items():
        assert path.is_file() and path.read_bytes() == data, f"{path} changed"
