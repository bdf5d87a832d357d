"""Send events to Flywheel: batched, retried, buffered on disk while the server is away.

    from flywheel_sdk import Client

    with Client("https://flywheel.example.com", api_key, buffer_path="/var/lib/myapp/flywheel") as fw:
        fw.send({"type": "core.generic", "attributes": {"clicked": "buy"}})
        fw.feedback(interaction_id, thumbs="up")

`AsyncClient` is the same for asyncio (``await fw.send(...)``). See README.md.
"""

from flywheel_sdk._async import AsyncClient
from flywheel_sdk._buffer import BufferLocked
from flywheel_sdk._core import BufferFull, ClientClosed, Rejection, Stats
from flywheel_sdk._events import encode_event, feedback_event, task_result_event
from flywheel_sdk._http import RetryPolicy, parse_retry_after
from flywheel_sdk._options import VERSION as __version__
from flywheel_sdk._sync import Client

__all__ = ["AsyncClient", "BufferFull", "BufferLocked", "Client", "ClientClosed", "Rejection", "RetryPolicy", "Stats",
           "__version__", "encode_event", "feedback_event", "parse_retry_after", "task_result_event"]
