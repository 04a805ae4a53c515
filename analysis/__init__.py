"""Analysis of AEPO runs: tidy frames (load), interval estimates over seeds (stats), control
quality (control), per-run scores (scores), the run table (summary), claims C1-C8 judged by
rules (claims), tables (tables) and the one-page report (report)."""
