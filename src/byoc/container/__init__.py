"""Your container before it reaches SageMaker: Dockerfile, build/push, the hosting contract, a local run."""
