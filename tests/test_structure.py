"""The package's shape (issue 14): layers without cycles, and light paths that stay light."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def test_the_layer_contract_in_pyproject_holds():
    out = subprocess.run(["lint-imports"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]
    assert "1 kept, 0 broken" in out.stdout


def test_config_validation_imports_no_torch():
    code = "import aepo.config as c; c.RunConfig().validate(); import sys; assert 'torch' not in sys.modules"
    subprocess.run([sys.executable, "-c", code], cwd=REPO, check=True, timeout=120)


def test_help_and_a_sweep_dry_run_import_no_torch(tmp_path):
    code = ("import sys\n"
            "from typer.testing import CliRunner\n"
            "from aepo.cli import app\n"
            "r = CliRunner()\n"
            "assert r.invoke(app, ['--help']).exit_code == 0\n"
            f"res = r.invoke(app, ['sweep', 'entropy-targets', '--config', 'sweeps/smoke.yaml', '--out', {str(tmp_path)!r}, '--dry-run'])\n"
            "assert res.exit_code == 0, res.output\n"
            "assert 'torch' not in sys.modules, 'torch was imported'\n")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]


def test_every_method_is_in_the_one_table_and_every_embedded_one_has_a_loss():
    from aepo.core.losses import LOSSES
    from aepo.methods import EMBEDDED, METHODS

    for m in METHODS.values():
        assert (m.loss in LOSSES) == (EMBEDDED in m.backends), m.name
        assert m.controller in ("algo", "fixed", "adaptive_coef", "deadband", "entropic", "none"), m.name


def test_the_metrics_page_is_the_glossary_as_generated():
    """docs/metrics.md is `python -m aepo.glossary`'s output: a key added to the glossary reaches the docs."""
    import subprocess
    import sys
    from pathlib import Path

    page = Path(__file__).resolve().parents[1] / "docs" / "metrics.md"
    out = subprocess.run([sys.executable, "-m", "aepo.glossary"], capture_output=True, text=True, check=True).stdout
    assert page.read_text() == out, "regenerate it: python -m aepo.glossary > docs/metrics.md"
