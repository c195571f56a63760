"""Training: the config, the loop, checkpoints and logs."""
