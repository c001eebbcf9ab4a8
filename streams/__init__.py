"""Streams: every event, in chain order, to the destinations that SIEMs read."""
