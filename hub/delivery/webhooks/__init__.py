"""Webhook subscriptions: storage (store), signing and backoff (rules), the delivery worker (delivery).

For downstream applications that take events over plain HTTP (the GitHub-webhooks model): each
subscription names a URL, topics and event types; `hub serve` POSTs every matching event to it.

Storage: table `hub_subscriptions` in the read-model database (every `hub serve` node sees the
same subscriptions). The signing secret is shown once, at creation, and stored encrypted
(AES-256-GCM, key = SHA-256 of a label and HUB_SECRET_KEY): the hub needs it back to sign, so
it cannot be a hash. Changing HUB_SECRET_KEY makes stored secrets unreadable; such subscriptions
record the error and deliver nothing until recreated.

Delivery (`WebhookService`, run by `hub serve`): one consumer group `webhook.<id>` per active
subscription over its topics, so several nodes share its partitions. Guarantees, as built:

- at least once: an event's offset is committed only after the receiver answered 2xx. A crash,
  a pause or a rebalance can repeat what was delivered since the last commit (at most one
  batch per partition); receivers deduplicate by `X-Hub-Event-Id`;
- in order per partition (per asset, item or work order): a failed event is retried, with
  exponential backoff (1 s doubling to 5 min, jittered), and nothing after it on its partition is
  sent first; nothing is ever skipped. The subscription's other partitions slow to the same pace
  (one batch per backoff), since one receiver is failing;
- a subscription starts at the end of the log when it is created: its start offsets are stored
  with it, so it never receives older events, and a restart continues from the committed offset;
- created, paused, resumed and deleted subscriptions are picked up within `reload_s` seconds.
  A paused subscription keeps its position: on resume it receives what was published meanwhile.

For the operator (hub.delivery.webhooks.log, .replay): every attempt is kept in a delivery log
(`GET /subscriptions/{id}/deliveries`); `POST /subscriptions/{id}/replay?from=T` delivers the
events recorded since T once more; `POST /subscriptions/{id}/rotate-secret` issues a new secret
while the old one keeps signing through an overlap window (both signatures in the header).
Timeouts, backoff, concurrency and the attempts that pause a subscription are HUB_WEBHOOK_*.
"""

from hub.delivery.webhooks.delivery import (
    USER_AGENT,
    Sent,
    SubscriptionWorker,
    Tuning,
    post_event,
    send_event,
)
from hub.delivery.webhooks.log import AttemptRow, DeliveryLog, Replay
from hub.delivery.webhooks.replay import replay_positions
from hub.delivery.webhooks.rules import Backoff, TypeFilter, signature, signature_header, verify_signature
from hub.delivery.webhooks.service import WebhookService
from hub.delivery.webhooks.store import (
    KEY_LABEL,
    MAX_ERROR_CHARS,
    METADATA,
    StartOffsets,
    Status,
    Subscription,
    SubscriptionStore,
    new_subscription_id,
    subscription_key,
    subscriptions_table,
)

__all__ = [
    "KEY_LABEL",
    "MAX_ERROR_CHARS",
    "METADATA",
    "USER_AGENT",
    "AttemptRow",
    "Backoff",
    "DeliveryLog",
    "Replay",
    "Sent",
    "StartOffsets",
    "Status",
    "Subscription",
    "SubscriptionStore",
    "SubscriptionWorker",
    "Tuning",
    "TypeFilter",
    "WebhookService",
    "new_subscription_id",
    "post_event",
    "replay_positions",
    "send_event",
    "signature",
    "signature_header",
    "subscription_key",
    "subscriptions_table",
    "verify_signature",
]
