"""Customized-GRPO reproduction library: pure Python/torch, no orchestration (no prefect, no mlflow)."""
