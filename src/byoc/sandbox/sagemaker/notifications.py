"""SNS notifications of asynchronous endpoints ("Check prediction results",
async-inference-check-predictions.html; "Create Endpoint", async-inference-create-endpoint-create-endpoint.html)."""

from __future__ import annotations

from typing import Optional

from byoc.sandbox import peers

# "When you call the CreateEndpoint API, Amazon SageMaker Asynchronous Inference sends a test notification to
# check that you have configured an Amazon SNS topic. [...] also sends test notifications after calls to
# UpdateEndpoint and UpdateEndpointWeightsAndCapacities." (async-inference-create-endpoint-create-endpoint.html)
TEST_NOTIFICATION = {"eventVersion": "1.0", "eventSource": "aws:sagemaker", "eventName": "TestNotification"}


def topics(async_config: Optional[dict]) -> dict:
    return ((async_config or {}).get("OutputConfig") or {}).get("NotificationConfig") or {}


def send_test(account: str, region: str, async_config: Optional[dict]) -> None:
    """The test notification, to the success and the error topic of an asynchronous endpoint config."""
    config = topics(async_config)
    for key in ("SuccessTopic", "ErrorTopic"):
        if config.get(key):
            peers.sns_publish(account, region, config[key], TEST_NOTIFICATION)


def include_response(async_config: Optional[dict], status: str) -> bool:
    """Whether IncludeInferenceResponseIn asks for the response in this notification (API_AsyncInferenceNotificationConfig:
    SUCCESS_NOTIFICATION_TOPIC | ERROR_NOTIFICATION_TOPIC; only responses of at most 128 KB are included)."""
    wanted = "SUCCESS_NOTIFICATION_TOPIC" if status == "Completed" else "ERROR_NOTIFICATION_TOPIC"
    return wanted in (topics(async_config).get("IncludeInferenceResponseIn") or [])
