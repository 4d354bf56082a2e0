"""Which face an operation uses when a photo holds several: a choice every command offers,
kept apart from the detector so the command line can name it without loading torch."""

from __future__ import annotations

from enum import Enum


class Pick(str, Enum):
    """Which face to use when an operation needs exactly one."""

    one = "one"          # exactly one face, else MultipleFaces (enrolment, access control)
    largest = "largest"  # the biggest box
    center = "center"    # the face nearest the image centre (LFW-style portraits)
    all = "all"          # every face big enough to encode (batch identification)



class DetectorName(str, Enum):
    """Which face detector finds faces (``faceid --detector``, ``FACEID_DETECTOR``)."""

    mtcnn = "mtcnn"  # MTCNN with refined points: the most accurate on photos
    yunet = "yunet"  # YuNet boxes + MTCNN's O-Net points: several times faster, for video
