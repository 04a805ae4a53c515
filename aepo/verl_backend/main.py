"""`python -m aepo.verl_backend.main [hydra overrides]`: verl's PPO entry point with the AEPO trainer.

The overrides come from `aepo.verl_backend.translate`; `aepo train --backend verl` builds and
runs this command (and `--dry-run` prints it).
"""

from __future__ import annotations

import hydra


@hydra.main(config_path="pkg://verl.trainer.config", config_name="ppo_trainer", version_base=None)
def main(config) -> None:
    from verl.trainer.main_ppo import run_ppo
    from verl.trainer.ppo.utils import need_critic, need_reference_policy
    from verl.utils.config import validate_config
    from verl.utils.device import auto_set_device

    from aepo.verl_backend.trainer import AepoTaskRunner

    auto_set_device(config)
    validate_config(config=config, use_reference_policy=need_reference_policy(config), use_critic=need_critic(config))
    run_ppo(config, task_runner_class=AepoTaskRunner)


if __name__ == "__main__":
    main()
