"""The prices and sizes the benchmark turns counts into dollars with: us-east-1 list prices.

Where they come from: AWS's public pricing pages, us-east-1, on-demand, no free tier, as read in
November 2026 — https://aws.amazon.com/api-gateway/pricing/ (HTTP APIs),
https://aws.amazon.com/lambda/pricing/ (arm64), https://aws.amazon.com/sqs/pricing/ (standard),
https://aws.amazon.com/dynamodb/pricing/on-demand/, https://aws.amazon.com/cloudwatch/pricing/
(Logs ingestion, custom metrics) and https://aws.amazon.com/xray/pricing/. Check them there before
quoting; change them here only: the benchmark reads no price from anywhere else (template.yaml's
Tracing description and docs/operating.md quote the X-Ray figure for readers).
"""

from __future__ import annotations

MILLION = 1_000_000

API_GATEWAY_HTTP_PER_MILLION = 1.00  # HTTP API requests (each 512 KB of a request counts as one)
LAMBDA_REQUEST_PER_MILLION = 0.20  # invocations
LAMBDA_ARM64_PER_GB_SECOND = 0.0000133334  # duration, arm64, per GB-second (billed per ms)
SQS_STANDARD_PER_MILLION = 0.40  # standard queue requests; each 64 KB chunk of a payload counts as one
SQS_CHUNK_BYTES = 64 * 1024
DYNAMODB_WRITE_UNIT_PER_MILLION = 0.625  # on-demand write request units (1 KB each); GSI writes billed too
DYNAMODB_READ_UNIT_PER_MILLION = 0.125  # on-demand read request units (4 KB strongly consistent)
CLOUDWATCH_LOGS_PER_GB = 0.50  # logs ingested (standard class)
CLOUDWATCH_METRIC_PER_SERIES_MONTH = 0.30  # custom metrics (EMF included), per series per month
XRAY_PER_MILLION_TRACES = 5.00  # traces recorded
GB = 1024**3

# Lambda gives CPU in proportion to memory, 1,769 MB being about one vCPU (Lambda's "memory and
# computing power" documentation): at 256 MB about 0.15 vCPU, so CPU time measured on one core here
# grows roughly 7x.
FULL_VCPU_MB = 1769


def cpu_factor(memory_mb: int) -> float:
    """How much longer a CPU-bound stretch takes at ``memory_mb`` than on one full core (about)."""
    return max(1.0, FULL_VCPU_MB / memory_mb)


def floor_per_million() -> float:
    """The least this design can cost per alert, one alert per request: an API Gateway request, the
    queue's send, receive and delete, and one DynamoDB write unit: about $2.83. It leaves out the two
    Lambda requests ($0.40), counted in the measured figures beside it."""
    return API_GATEWAY_HTTP_PER_MILLION + 3 * SQS_STANDARD_PER_MILLION + DYNAMODB_WRITE_UNIT_PER_MILLION
