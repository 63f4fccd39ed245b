"""byoc's sandbox: one local HTTP endpoint that speaks the AWS wire protocols.

SageMaker and SageMaker Runtime are emulated here (lifecycle, blue/green updates, container
behaviours, logs); ECR, CloudWatch Logs, CloudWatch, STS, IAM, Application Auto Scaling, S3 and
SNS are moto's, in-process behind the same port. boto3 and the AWS CLI talk to it unmodified
through AWS_ENDPOINT_URL. This package never imports the rest of byoc.
"""

from byoc.sandbox.server import ACCOUNT, Sandbox

__all__ = ["ACCOUNT", "Sandbox"]
