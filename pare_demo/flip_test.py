"""The flip test: run the network on a crop and on its mirror image, map the mirrored
prediction back, and average the two.

A mirror image of a person is a person too, so the network's prediction on it, mirrored
back, is a second estimate of the same body whose errors are partly independent of the
first (the mirror itself: pare_demo.body.mirror).

The part-attention maps and part logits are kept from the unmirrored crop: they show what
the network looked at in the picture the user gave it.
"""
from __future__ import annotations

from dataclasses import replace

from pare_demo.body.mirror import mirror_camera, mirror_pose
from pare_demo.geometry import nearest_rotation
from pare_demo.models.pare import PareOutput


def average_with_mirror(out: PareOutput, mirrored: PareOutput) -> PareOutput:
    """Network outputs on crops and on the same crops mirrored -> the averaged output.
    Rotations are averaged as matrices and projected back onto rotations."""
    return replace(out,
                   pose=nearest_rotation(out.pose + mirror_pose(mirrored.pose)),
                   betas=(out.betas + mirrored.betas) / 2,
                   cam=(out.cam + mirror_camera(mirrored.cam)) / 2)
