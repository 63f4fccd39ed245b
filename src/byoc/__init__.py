"""byoc: bring your own container to a SageMaker inference endpoint.

The operations are importable; the CLI (`byoc.cli`) only parses arguments and renders results.
"""

__version__ = "0.1.0"
