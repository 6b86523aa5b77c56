"""Durable queue declarations: replicated (quorum) queues and their arguments.

Work queues are quorum queues (Raft, replicated over the cluster's nodes) with an initial
group of 3 members: on a three-node cluster every node holds a replica, on a larger one
three do, and on a single node RabbitMQ caps the group at the nodes there are (one), so
the same declaration serves the dev broker and a cluster.

A queue's arguments are fixed when it is created; declaring it again with other ones is a
channel error (PRECONDITION_FAILED). A queue created by an older release (no group size;
a classic `rpc.<service>` before the broker became a cluster) is therefore used as it
is, with a warning: delete it (when drained) to have it re-created replicated.
"""

from __future__ import annotations

import contextlib
import logging
from typing import Any

from aio_pika.abc import AbstractChannel, AbstractConnection, AbstractQueue
from aio_pika.exceptions import ChannelPreconditionFailed

log = logging.getLogger("guahao.messaging")

INITIAL_GROUP_SIZE = 3
QUORUM: dict[str, Any] = {
    "x-queue-type": "quorum",
    "x-quorum-initial-group-size": INITIAL_GROUP_SIZE,
}


async def declare_durable(
    connection: AbstractConnection,
    channel: AbstractChannel,
    name: str,
    arguments: dict[str, Any] | None = None,
) -> AbstractQueue:
    """Declare durable queue `name` with `arguments` on `channel`, or take the existing
    queue as it is when it was created with other arguments (probed on a channel of its
    own, since the refusal closes the channel it happens on)."""
    probe = await connection.channel(publisher_confirms=False)
    compatible = True
    try:
        await probe.declare_queue(name, durable=True, arguments=arguments)
    except ChannelPreconditionFailed as exc:
        compatible = False
        log.warning(
            "queue exists with other arguments; used as it is (delete it when "
            "drained to re-create it replicated)",
            extra={"queue": name, "error": str(exc)},
        )
    finally:
        with contextlib.suppress(Exception):
            await probe.close()
    if compatible:
        return await channel.declare_queue(name, durable=True, arguments=arguments)
    return await channel.declare_queue(name, passive=True)
