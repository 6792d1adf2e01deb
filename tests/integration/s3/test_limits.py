"""RATE_LIMIT_PER_MINUTE counts S3 requests per account, as the REST API's:
over it, S3's SlowDown (503, Retry-After), which clients back off from."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from echofs.testing.s3 import start_s3_node


def test_slow_down_over_the_limit(tmp_path):
    node = start_s3_node(tmp_path, env={"RATE_LIMIT_PER_MINUTE": "5"})
    try:
        s3 = node.client()
        for _ in range(5):
            s3.list_buckets()
        with pytest.raises(ClientError) as limited:
            s3.list_buckets()
        response = limited.value.response
        assert response["Error"]["Code"] == "SlowDown"
        assert response["ResponseMetadata"]["HTTPStatusCode"] == 503
        assert int(response["ResponseMetadata"]["HTTPHeaders"]["retry-after"]) >= 1
    finally:
        node.process.terminate()
