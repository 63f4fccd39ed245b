"""The emulated SageMaker control plane and runtime."""
