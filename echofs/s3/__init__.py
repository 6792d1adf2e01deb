"""The S3 face of a master: the same files, spoken as S3.

A bucket is first-class metadata (:mod:`echofs.metadata.buckets`) and the
object ``k`` of bucket ``b`` *is* the file ``b/k`` of the bucket's owner: one
namespace, one data path (the master's :class:`~echofs.master.files.FileService`),
the same modes and replication as the REST API.

Modules, by what they hold:

- ``errors``      S3's error codes, statuses and XML error documents
- ``sigv4``       AWS Signature Version 4: headers and presigned URLs
- ``chunked``     ``aws-chunked`` request bodies (signed chunks, trailing checksums)
- ``checksums``   the ``x-amz-checksum-*`` algorithms
- ``xml``         the XML documents S3 answers with and reads
- ``routing``     which operation a request is (path- or virtual-host-style)
- ``credentials`` who signed a request: access keys, or single-user mode
- ``buckets``     bucket operations
- ``objects``     object operations
- ``listing``     ListObjects v1 and v2
- ``multipart``   multipart uploads, on the upload-session service (``multipart_xml``: their XML)
- ``server``      the aiohttp app, its middleware (errors, request ids, metrics, log)
"""
