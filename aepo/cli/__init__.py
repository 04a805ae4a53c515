"""The `aepo` command line: one module per command group, joined here."""

from __future__ import annotations

import typer

from aepo.cli import eval as eval_cli
from aepo.cli import plot, sweep, train

app = typer.Typer(add_completion=False, no_args_is_help=True,
                  help="Run, sweep, evaluate and analyse entropy-controlled RL fine-tuning (AEPO).")


@app.callback()
def _root(debug: bool = typer.Option(False, "--debug", help="Show tracebacks of failures (or set AEPO_DEBUG=1).")) -> None:
    import os

    from aepo.cli.common import DEBUG_ENV

    if debug:
        os.environ[DEBUG_ENV] = "1"


app.command("train", help=train.__doc__)(train.train_command)
app.add_typer(sweep.app, name="sweep")  # a group: `aepo sweep entropy-targets`
app.command("eval", help=eval_cli.__doc__)(eval_cli.eval_command)
app.command("plot", help=plot.__doc__, context_settings={"allow_interspersed_args": True})(plot.plot_command)


def main() -> None:
    app()
