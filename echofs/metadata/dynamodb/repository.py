"""The DynamoDB repository: the same methods as
``echofs.metadata.repository.MetadataRepository``, one mixin per part over
:class:`~echofs.metadata.dynamodb.base.DynamoBase`."""

from __future__ import annotations

from typing import TYPE_CHECKING

from echofs.metadata.dynamodb.chunks import DynamoChunks
from echofs.metadata.dynamodb.collection import DynamoCollection
from echofs.metadata.dynamodb.commits import DynamoCommits
from echofs.metadata.dynamodb.files import DynamoFiles
from echofs.metadata.dynamodb.replication_queue import DynamoReplicationQueue
from echofs.metadata.dynamodb.upload_sessions import DynamoUploadSessions

if TYPE_CHECKING:
    from echofs.metadata.dynamodb.access_keys import DynamoAccessKeys
    from echofs.metadata.dynamodb.buckets import DynamoBuckets
    from echofs.metadata.dynamodb.consistency import DynamoConsistency
    from echofs.metadata.dynamodb.s3_uploads import DynamoS3Uploads
    from echofs.metadata.dynamodb.users import DynamoUsers


class DynamoMetadataRepository(DynamoFiles, DynamoCommits, DynamoChunks,
                               DynamoReplicationQueue, DynamoCollection,
                               DynamoUploadSessions):
    """The metadata store on DynamoDB: files and versions, their commits,
    chunks and copies, the replication queue, garbage collection and
    resumable upload sessions; accounts, buckets, access keys, S3 uploads
    and the controller's state through the properties below."""

    @property
    def users(self) -> DynamoUsers:
        from echofs.metadata.dynamodb.users import DynamoUsers

        return DynamoUsers(self)

    @property
    def access_keys(self) -> DynamoAccessKeys:
        from echofs.metadata.dynamodb.access_keys import DynamoAccessKeys

        return DynamoAccessKeys(self)

    @property
    def buckets(self) -> DynamoBuckets:
        from echofs.metadata.dynamodb.buckets import DynamoBuckets

        return DynamoBuckets(self)

    @property
    def s3_uploads(self) -> DynamoS3Uploads:
        from echofs.metadata.dynamodb.s3_uploads import DynamoS3Uploads

        return DynamoS3Uploads(self)

    @property
    def consistency(self) -> DynamoConsistency:
        from echofs.metadata.dynamodb.consistency import DynamoConsistency

        return DynamoConsistency(self)
