"""The door: everything that runs at a turnstile, in the order a frame meets it.

* :mod:`~faceid.door.sources` -- frames from a camera, clip, stream or folder (reconnects).
* :mod:`~faceid.door.tracking` -- faces followed from frame to frame; who is in the zone.
* :mod:`~faceid.door.liveness` -- the gate: passive MiniFASNet, motion, the challenge
  (:mod:`~faceid.door.liveness_calibrate` sets its threshold on a site's own footage).
* :mod:`~faceid.door.turnstile` -- the loop: detect, track, liveness, encode, match, decide,
  record, act; one :class:`~faceid.door.turnstile.TrackState` per person.
* :mod:`~faceid.door.actuators` -- the relay and the notifiers (deny command, webhook).
* :mod:`~faceid.door.overlay` -- boxes and names drawn on frames, the recorded video.
"""
