"""The event contract of genomebus: envelope, events per context, topic catalogue, upcasters."""

from genomebus.schemas.envelope import Envelope, EventModel, decode, derived_id, encode, new_envelope
from genomebus.schemas.topics import CATALOGUE, Topic, topic_for

__all__ = ["CATALOGUE", "Envelope", "EventModel", "Topic", "decode", "derived_id", "encode", "new_envelope", "topic_for"]
