"""Object store client (S3 API: SeaweedFS locally, any S3 in production)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

from aiobotocore.config import AioConfig
from aiobotocore.session import get_session
from botocore.exceptions import ClientError

from genomebus.infra.settings import Settings


@contextlib.asynccontextmanager
async def client(settings: Settings) -> AsyncIterator[Any]:
    key, secret = settings.s3_credentials
    config = AioConfig(s3={"addressing_style": "path"}, retries={"max_attempts": 3, "mode": "standard"},
                       connect_timeout=5, read_timeout=60)
    async with get_session().create_client(
        "s3", endpoint_url=settings.s3_endpoint, region_name=settings.s3_region,
        aws_access_key_id=key, aws_secret_access_key=secret, config=config,
    ) as s3:
        yield s3


async def ensure_buckets(s3: Any, names: list[str]) -> None:
    existing = {b["Name"] for b in (await s3.list_buckets()).get("Buckets", [])}
    for name in names:
        if name in existing:
            continue
        try:
            await s3.create_bucket(Bucket=name)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") not in {"BucketAlreadyOwnedByYou", "BucketAlreadyExists"}:
                raise
