"""pyrie's Python runtime interface client: runs ``module.function`` handlers the way awslambdaric does, and can
also stream their responses.

Run it as ``python -m pyrie_runtime_client app.handler`` with ``AWS_LAMBDA_RUNTIME_API`` set (pyrie does this for
``pyrie app.handler``). A handler streams its response by returning a generator or another iterator, a
``StreamingResponse``, or by being marked with ``@streaming``::

    from pyrie_runtime_client import streaming

    @streaming(content_type="text/event-stream")
    def handler(event, context):
        yield "data: 1\\n\\n"  # sent at once, as one chunk

Each yielded ``str`` (UTF-8) or bytes-like item is one chunk, sent as soon as it is produced. An exception before
the first item is an ordinary error response; after it, the stream ends with Lambda's error trailers. For a Function
URL, ``http_response_stream(body, status_code=..., headers=..., cookies=...)`` streams an HTTP response with its
status and headers.
"""

from .context import LambdaContext
from .streaming import DEFAULT_CONTENT_TYPE, StreamingResponse, http_response_stream, streaming

__all__ = ["DEFAULT_CONTENT_TYPE", "LambdaContext", "StreamingResponse", "http_response_stream", "streaming"]
