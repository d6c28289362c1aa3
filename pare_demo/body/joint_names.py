"""Joint names and kinematic trees: the one place these constants are defined."""

SMPL_JOINT_NAMES = (
    "pelvis", "left_hip", "right_hip", "spine1", "left_knee", "right_knee",
    "spine2", "left_ankle", "right_ankle", "spine3", "left_foot", "right_foot",
    "neck", "left_collar", "right_collar", "head", "left_shoulder", "right_shoulder",
    "left_elbow", "right_elbow", "left_wrist", "right_wrist", "left_hand", "right_hand",
)
NUM_SMPL_JOINTS = len(SMPL_JOINT_NAMES)

# Parent of each SMPL joint (-1 for the root), SMPL's kinematic tree.
SMPL_PARENTS = (
    -1, 0, 0, 0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 9, 9, 12, 13, 14, 16, 17, 18, 19, 20, 21,
)

# Vertex keypoints smplx appends after the 24 joints, in smplx's order
# (face and feet, then the ten fingertips): 24 + 21 = 45 joints.
EXTRA_KEYPOINT_NAMES = (
    "nose", "reye", "leye", "rear", "lear",
    "LBigToe", "LSmallToe", "LHeel", "RBigToe", "RSmallToe", "RHeel",
    "lthumb", "lindex", "lmiddle", "lring", "lpinky",
    "rthumb", "rindex", "rmiddle", "rring", "rpinky",
)

# The 14 LSP joints on which 3DPW PA-MPJPE is reported (the order the common
# H36M-regressor protocol uses); pelvis alignment uses the mid-point of the hips.
EVAL_JOINT_NAMES = (
    "right_ankle", "right_knee", "right_hip", "left_hip", "left_knee", "left_ankle",
    "right_wrist", "right_elbow", "right_shoulder", "left_shoulder", "left_elbow",
    "left_wrist", "neck", "head_top",
)
EVAL_HIP_INDICES = (2, 3)

# Joints of the H36M 17-joint regressor (J_regressor_h36m.npy) that form the 14 eval joints.
H36M_TO_EVAL = (6, 5, 4, 1, 2, 3, 16, 15, 14, 11, 12, 13, 8, 10)

# Left/right swap of the 24 SMPL joints (for flipping images and poses).
SMPL_FLIP_PERMUTATION = tuple(
    SMPL_JOINT_NAMES.index(
        n.replace("left", "@").replace("right", "left").replace("@", "right")
    )
    for n in SMPL_JOINT_NAMES
)

# The 17 COCO keypoints (person_keypoints_*.json), in COCO's order; left/right are the
# person's own, as in SMPL. COCO 5-16 (shoulders to ankles) carry SMPL's names.
COCO_KEYPOINT_NAMES = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow", "left_wrist", "right_wrist",
    "left_hip", "right_hip", "left_knee", "right_knee", "left_ankle", "right_ankle",
)
COCO_LIMB_INDICES = tuple(range(5, 17))
COCO_LIMB_TO_SMPL = tuple(SMPL_JOINT_NAMES.index(COCO_KEYPOINT_NAMES[i]) for i in COCO_LIMB_INDICES)
