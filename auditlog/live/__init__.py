"""Events in real time: the stream of the event list (Server-Sent Events), and how its
readers learn that new events were sealed (see :mod:`auditlog.live.hub`)."""
