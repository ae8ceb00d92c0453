"""Celery tasks of the WhatsApp channel (Celery's autodiscovery imports this package).

Each module registers its tasks under explicit names; queues are routed in settings.
"""

from whatsapp.tasks.inbound import *  # noqa: F403
from whatsapp.tasks.media import *  # noqa: F403
from whatsapp.tasks.outbound import *  # noqa: F403
from whatsapp.tasks.templates import *  # noqa: F403
