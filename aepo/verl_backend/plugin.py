"""verl plugin (entry point `verl.plugins: aepo`): verl imports this in every process that
imports verl, Ray workers included, so the registrations below exist wherever verl looks them up.

Registered: the agent loop `aepo_temperature_agent` (per-row sampling temperature) and the reward
manager `aepo_response` (a response read up to its stop token, special tokens kept).
"""

from aepo.verl_backend import agent_loop, reward  # noqa: F401  (register on import)
