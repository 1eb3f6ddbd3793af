"""Scene folders made from the shipped demo scene for loader tests: lens-distorted (OPENCV / OPENCV_FISHEYE with
known coefficients), odd image sizes, and a COLMAP text model. The tests of ``tests/data`` and
``tests/nerfstudio_plugin`` import this file by path (the ``scene_makers`` fixture), so both check the same scenes.

The distortion is the forward camera model written out here (Brown-Conrady as OpenCV and nerfstudio define it;
the equidistant fisheye model), inverted per pixel by fixed-point / Newton iteration: the distorted image at
pixel ``d`` shows the original image at the undistorted position of ``d``. Undistorting it should give back the
original (resampled to the new intrinsics) up to interpolation.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np

from splatent_viewer.paths import assets_dir

DEMO = assets_dir() / "demo_scene"
COLMAP_WORLD = np.array([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 1.0, 0.0], [0.0, -1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]])
"""nerfstudio's COLMAP world convention: (x, y, z) → (x, z, -y)."""


def demo_meta() -> dict:
    return json.loads((DEMO / "transforms.json").read_text())


def demo_image(k: int) -> np.ndarray:
    """Demo frame ``k`` as uint8 [256, 256, 3]."""
    return cv2.cvtColor(cv2.imread(str(DEMO / "images" / f"frame_{k:05d}.png"), cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def demo_K() -> np.ndarray:
    m = demo_meta()
    return np.array([[m["fl_x"], 0.0, m["cx"]], [0.0, m["fl_y"], m["cy"]], [0.0, 0.0, 1.0]])


def write_image(path: Path, rgb: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))


def sample(image: np.ndarray, u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """Bilinear samples of ``image`` at continuous pixel coordinates (pixel ``i`` covers [i, i + 1]); 0 outside."""
    return cv2.remap(
        image,
        (u - 0.5).astype(np.float32),
        (v - 0.5).astype(np.float32),
        cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0,
    )


def pixel_grid(width: int, height: int) -> tuple[np.ndarray, np.ndarray]:
    """Pixel-centre coordinates (i + 0.5) of an image, as [H, W] arrays."""
    return np.meshgrid(np.arange(width) + 0.5, np.arange(height) + 0.5)


# ----------------------------------------------------------------------------- camera models


def brown(x: np.ndarray, y: np.ndarray, c: dict) -> tuple[np.ndarray, np.ndarray]:
    """Forward Brown-Conrady distortion of normalised coordinates (OpenCV's model: k1, k2, k3 radial, p1, p2 tangential)."""
    r2 = x * x + y * y
    radial = 1 + c.get("k1", 0.0) * r2 + c.get("k2", 0.0) * r2**2 + c.get("k3", 0.0) * r2**3
    p1, p2 = c.get("p1", 0.0), c.get("p2", 0.0)
    return x * radial + 2 * p1 * x * y + p2 * (r2 + 2 * x * x), y * radial + p1 * (r2 + 2 * y * y) + 2 * p2 * x * y


def brown_inverse(xd: np.ndarray, yd: np.ndarray, c: dict) -> tuple[np.ndarray, np.ndarray]:
    """Undistorted normalised coordinates whose :func:`brown` distortion is (xd, yd) (fixed-point iteration)."""
    x, y = xd.copy(), yd.copy()
    for _ in range(50):
        bx, by = brown(x, y, c)
        x, y = x - (bx - xd), y - (by - yd)
    bx, by = brown(x, y, c)
    assert max(np.abs(bx - xd).max(), np.abs(by - yd).max()) < 1e-9, "distortion too strong to invert"
    return x, y


def fisheye(x: np.ndarray, y: np.ndarray, c: dict) -> tuple[np.ndarray, np.ndarray]:
    """Forward equidistant fisheye distortion (OpenCV's cv::fisheye: theta_d = theta (1 + k1 theta^2 + ... + k4 theta^8))."""
    r = np.maximum(np.hypot(x, y), 1e-12)
    t = np.arctan(r)
    td = t * (1 + c["k1"] * t**2 + c["k2"] * t**4 + c["k3"] * t**6 + c["k4"] * t**8)
    return x * td / r, y * td / r


def fisheye_inverse(xd: np.ndarray, yd: np.ndarray, c: dict) -> tuple[np.ndarray, np.ndarray]:
    rd = np.maximum(np.hypot(xd, yd), 1e-12)
    t = rd.copy()
    for _ in range(50):  # Newton on theta_d(theta) = rd
        f = t * (1 + c["k1"] * t**2 + c["k2"] * t**4 + c["k3"] * t**6 + c["k4"] * t**8) - rd
        df = 1 + 3 * c["k1"] * t**2 + 5 * c["k2"] * t**4 + 7 * c["k3"] * t**6 + 9 * c["k4"] * t**8
        t = t - f / df
    r = np.tan(t)
    x, y = xd * r / rd, yd * r / rd
    fx, fy = fisheye(x, y, c)
    assert max(np.abs(fx - xd).max(), np.abs(fy - yd).max()) < 1e-9
    return x, y


def distort_image(image: np.ndarray, K: np.ndarray, coeffs: dict, model: str) -> np.ndarray:
    """The image a lens with ``coeffs`` (and the same ``K``) would have taken: each distorted pixel shows the
    original at its undistorted position (black where that falls outside the original)."""
    u, v = pixel_grid(image.shape[1], image.shape[0])
    xd, yd = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    x, y = (brown_inverse if model == "OPENCV" else fisheye_inverse)(xd, yd, coeffs)
    return sample(image, K[0, 0] * x + K[0, 2], K[1, 1] * y + K[1, 2])


# ----------------------------------------------------------------------------- scene folders

OPENCV_COEFFS = (
    {"k1": -0.12, "k2": 0.03, "p1": 0.002, "p2": -0.0015},
    {"k1": 0.08, "k2": -0.02, "p1": -0.001, "p2": 0.001},
)
"""Two lenses (barrel, pincushion) with tangential terms, one per half of the frames."""
FISHEYE_COEFFS = ({"k1": 0.05, "k2": -0.01, "k3": 0.004, "k4": -0.001},)


def make_distorted_scene(
    root: Path, *, model: str = "OPENCV", frames: tuple[int, ...] = (0, 5, 11, 17, 23, 29)
) -> Path:
    """nerfstudio-data folder of demo ``frames`` seen through distorting lenses (per-frame coefficients, cycling
    through :data:`OPENCV_COEFFS` or :data:`FISHEYE_COEFFS`), with train/val/test lists (val = test = the last two)
    and the demo's point cloud."""
    meta = demo_meta()
    K = demo_K()
    coeff_sets = OPENCV_COEFFS if model == "OPENCV" else FISHEYE_COEFFS
    out_frames = []
    for n, k in enumerate(frames):
        src = meta["frames"][k]
        coeffs = coeff_sets[n % len(coeff_sets)]
        write_image(root / src["file_path"], distort_image(demo_image(k), K, coeffs, model))
        out_frames.append({"file_path": src["file_path"], "transform_matrix": src["transform_matrix"], **coeffs})
    names = [f["file_path"] for f in out_frames]
    top = {key: meta[key] for key in ("fl_x", "fl_y", "cx", "cy", "w", "h")}
    shutil.copy(DEMO / meta["ply_file_path"], root / "sparse_pc.ply")
    (root / "transforms.json").write_text(json.dumps({
        "camera_model": model, **top, "ply_file_path": "sparse_pc.ply", "frames": out_frames,
        "train_filenames": names[:-2], "val_filenames": names[-2:], "test_filenames": names[-2:],
    }, indent=1))  # fmt: skip
    return root


ODD_SIZES = ((500, 500), (270, 480), (500, 500), (270, 480), (270, 480))
"""(width, height) of the odd-size scene's frames."""


def demo_along_rays(image: np.ndarray, K: np.ndarray, frame: int) -> tuple[np.ndarray, np.ndarray]:
    """Demo ``frame`` sampled along the camera rays of ``image``'s pixels (intrinsics ``K``, same pose), in [0, 1],
    and the mask of pixels whose rays fall inside the demo image: equal to ``image`` only where ``K`` is right."""
    K0 = demo_K()
    u, v = pixel_grid(image.shape[1], image.shape[0])
    x, y = (u - K[0, 2]) / K[0, 0], (v - K[1, 2]) / K[1, 1]
    uo, vo = K0[0, 0] * x + K0[0, 2], K0[1, 1] * y + K0[1, 2]
    reference = sample(demo_image(frame).astype(np.float32) / 255.0, uo, vo)
    return reference, (uo > 1) & (uo < 255) & (vo > 1) & (vo < 255)


def odd_size_view(k: int, size: tuple[int, int]) -> tuple[np.ndarray, np.ndarray]:
    """Demo frame ``k`` at ``size``: resized to the larger side (500x500 from 256x256), then centre-cropped in width
    (270x480 from 480x480); returns the image and its exact intrinsics."""
    side = max(size)
    image = cv2.resize(demo_image(k), (side, side), interpolation=cv2.INTER_CUBIC)
    K = demo_K() * np.array([[side / 256], [side / 256], [1.0]])
    x0 = (side - size[0]) // 2
    K[0, 2] -= x0
    return np.ascontiguousarray(image[:, x0 : x0 + size[0]]), K


def make_odd_size_scene(
    root: Path, *, frames: tuple[int, ...] = (2, 9, 15, 21, 27), sizes: tuple[tuple[int, int], ...] = ODD_SIZES
) -> Path:
    """nerfstudio-data folder of demo ``frames`` at ``sizes`` (:data:`ODD_SIZES`, cycled; per-frame intrinsics and
    sizes), the last one held out (val = test)."""
    meta = demo_meta()
    out_frames = []
    for n, k in enumerate(frames):
        size = sizes[n % len(sizes)]
        src = meta["frames"][k]
        image, K = odd_size_view(k, size)
        write_image(root / src["file_path"], image)
        out_frames.append(
            {
                "file_path": src["file_path"],
                "transform_matrix": src["transform_matrix"],
                "w": size[0],
                "h": size[1],
                "fl_x": K[0, 0],
                "fl_y": K[1, 1],
                "cx": K[0, 2],
                "cy": K[1, 2],
            }
        )
    names = [f["file_path"] for f in out_frames]
    (root / "transforms.json").write_text(json.dumps({
        "camera_model": "OPENCV", "frames": out_frames,
        "train_filenames": names[:-1], "val_filenames": names[-1:], "test_filenames": names[-1:],
    }, indent=1))  # fmt: skip
    return root


def rotation_to_quaternion(R: np.ndarray) -> np.ndarray:
    """Scalar-first unit quaternion (COLMAP's qvec) of a rotation matrix."""
    w = np.sqrt(max(0.0, 1.0 + R[0, 0] + R[1, 1] + R[2, 2])) / 2
    x = np.sqrt(max(0.0, 1.0 + R[0, 0] - R[1, 1] - R[2, 2])) / 2
    y = np.sqrt(max(0.0, 1.0 - R[0, 0] + R[1, 1] - R[2, 2])) / 2
    z = np.sqrt(max(0.0, 1.0 - R[0, 0] - R[1, 1] + R[2, 2])) / 2
    x, y, z = np.copysign(x, R[2, 1] - R[1, 2]), np.copysign(y, R[0, 2] - R[2, 0]), np.copysign(z, R[1, 0] - R[0, 1])
    return np.array([w, x, y, z])


def make_colmap_scene(
    root: Path, *, frames: tuple[int, ...] = tuple(range(0, 36, 4)), model_dir: str = "sparse/0", num_points: int = 200
) -> Path:
    """COLMAP folder (text model in ``model_dir``, ``images/``) of demo ``frames``: PINHOLE camera, world-to-camera
    poses from the demo's OpenGL camera-to-worlds, image ids in reverse file order, the first ``num_points`` of the
    demo point cloud (colours from the PLY)."""
    from splatent_viewer.data.ply import read_ply_points

    meta = demo_meta()
    recon = root / model_dir
    recon.mkdir(parents=True)
    (root / "images").mkdir()
    m = meta
    (recon / "cameras.txt").write_text(
        f"# Camera list\n1 PINHOLE {m['w']} {m['h']} {m['fl_x']!r} {m['fl_y']!r} {m['cx']!r} {m['cy']!r}\n"
    )
    lines = ["# Image list"]
    for n, k in enumerate(frames):
        src = meta["frames"][k]
        name = Path(src["file_path"]).name
        shutil.copy(DEMO / src["file_path"], root / "images" / name)
        c2w_cv = np.array(src["transform_matrix"]) @ np.diag([1.0, -1.0, -1.0, 1.0])
        w2c = np.linalg.inv(c2w_cv)
        q, t = rotation_to_quaternion(w2c[:3, :3]), w2c[:3, 3]
        lines += [f"{len(frames) - n} {' '.join(repr(float(v)) for v in (*q, *t))} 1 {name}", ""]
    (recon / "images.txt").write_text("\n".join(lines) + "\n")
    xyz, rgb = read_ply_points(DEMO / meta["ply_file_path"])
    rows = [
        f"{i + 1} {' '.join(repr(float(v)) for v in xyz[i].tolist())} {' '.join(str(int(round(c * 255))) for c in rgb[i].tolist())} 0.5"
        for i in range(num_points)
    ]
    (recon / "points3D.txt").write_text("# 3D point list\n" + "\n".join(rows) + "\n")
    return root


def make_blender_scene(root: Path, size: tuple[int, int] = (12, 8)) -> Path:
    """A NeRF-synthetic (blender) folder at ``root``: 3 train and 2 val views of one RGBA image (half-transparent red,
    one opaque blue pixel) of ``size`` (width, height); "test" lists the val views, as the NeRF synthetic scenes."""
    rgba = np.zeros((size[1], size[0], 4), dtype=np.uint8)
    rgba[..., 0], rgba[..., 3] = 255, 128  # half-transparent red
    rgba[0, 0] = (0, 0, 255, 255)  # one opaque blue pixel
    c2w = np.eye(4)
    for split, names in (("train", ["r_0", "r_1", "r_2"]), ("val", ["r_0", "r_1"])):
        (root / split).mkdir()
        frames = []
        for k, name in enumerate(names):
            cv2.imwrite(str(root / split / f"{name}.png"), cv2.cvtColor(rgba, cv2.COLOR_RGBA2BGRA))
            m = c2w.copy()
            m[0, 3] = k
            frames.append({"file_path": f"./{split}/{name}", "rotation": 0.0, "transform_matrix": m.tolist()})
        (root / f"transforms_{split}.json").write_text(json.dumps({"camera_angle_x": 0.8, "frames": frames}))
    # like the NeRF synthetic scenes, "test" reuses the val images
    val = json.loads((root / "transforms_val.json").read_text())
    (root / "transforms_test.json").write_text(json.dumps(val))
    return root
