"""Pop-up 3D models from a geometric parse, after Hoiem, Efros and Hebert, "Automatic Photo
Pop-up", SIGGRAPH 2005.

The photo is cut along its surfaces and folded: the ground (horizontal surface) is a plane
below the camera, every vertical region stands up from the line where it meets the ground,
and the sky is a backdrop far away. We keep Hoiem et al.'s level camera above a ground
plane and simplify the rest: instead of fitting line segments to the ground-vertical
boundary and cutting polygons, every pixel of a regular grid becomes a vertex placed by its
surface, and the grid's triangles are kept unless they cross a depth discontinuity.

Camera: at the origin, looking along +z, x to the right, y up. The focal length is
``max(H, W)`` pixels unless given (a field of view of 2 atan(1/2), about 53 degrees, across
the longer side: a normal lens, as in the consumer photos of Stanford Background or SIFT
Flow); the principal point is ``(W / 2, horizon)``, i.e. the camera looks level and the
horizon row fixes the vertical offset of the image centre; the camera stands
``camera_height`` above the ground plane ``y = -camera_height``. All lengths are in units
of ``camera_height``. A pixel ``(u, v)`` (continuous coordinates, ``u`` the column, ``v``
the row) at depth ``z`` is the point ``((u - W/2) z / f, -(v - horizon) z / f, z)``.

- ground: the ray through the pixel meets the plane at ``z = f h / (v - horizon)``;
- a vertical region: for each of its columns, the lowest row where the region sits on
  ground pixels (its ground contact) gives ``z`` for the whole column, so each column is a
  vertical segment and the region a vertical surface folded along the contact polyline.
  Columns without contact interpolate the contact row between their neighbours (a
  straight line in 3D projects to a straight line), and notches narrower than
  ``contact_closing`` of the image width are filled (the ground seen between a person's
  legs), where Hoiem et al. fit line segments. A region that touches no ground stands on
  its lowest row, as though on ground hidden from view;
- sky, and anything that would lie farther than ``max_depth``: at depth ``max_depth``.

Written files use the right-handed convention of OpenGL and 3D viewers (x right, y up, the
camera looking along -z), so :func:`write_obj` and :func:`write_ply` negate z.
"""

import dataclasses
import numbers
import warnings
from pathlib import Path

import numpy as np
from PIL import Image
from scipy import ndimage
from skimage import measure

from keras_sceneparse.structure.geometry import SURFACES, UNKNOWN_ID, as_label_map, check_ids
from keras_sceneparse.viz.overlay import as_rgb_image

SKY_ID, HORIZONTAL_ID, VERTICAL_ID = range(len(SURFACES))
#: :func:`estimate_horizon` puts the horizon this fraction of the way from the lowest sky
#: row to the highest ground row (fitted on Stanford Background's train split; see
#: ``docs/geometry.md``).
HORIZON_GROUND_WEIGHT = 0.8
#: Default far distance, in camera heights.
MAX_DEPTH = 100.0
#: Default width, as a fraction of the image width, of the notches filled in a ground contact.
CONTACT_CLOSING = 0.05


@dataclasses.dataclass(frozen=True)
class PopupMesh:
    """A textured triangle mesh in camera coordinates (see the module docstring).

    Attributes:
        vertices: ``(N, 3)`` float64 points ``(x, y, z)``.
        faces: ``(M, 3)`` int64 vertex indices, counter-clockwise as seen from the camera.
        texcoords: ``(N, 2)`` float64 texture coordinates ``(u / W, 1 - v / H)`` (origin at
            the bottom-left, as OBJ expects).
        pixels: ``(N, 2)`` int64 ``(row, column)`` of the pixel each vertex stands for.
        surfaces: ``(N,)`` int64 surface id of each vertex (0 sky, 1 horizontal, 2 vertical).
        image_size: ``(H, W)`` of the image.
        horizon, focal_length, camera_height, max_depth: the camera (pixels, pixels, and
            lengths in the mesh's units).
        notes: what had to be assumed (no ground visible, unknown surfaces filled, ...).
    """

    vertices: np.ndarray
    faces: np.ndarray
    texcoords: np.ndarray
    pixels: np.ndarray
    surfaces: np.ndarray
    image_size: tuple
    horizon: float
    focal_length: float
    camera_height: float
    max_depth: float
    notes: tuple = ()


def estimate_horizon(surfaces, unknown_id=UNKNOWN_ID):
    """The horizon row estimated from a surface map (continuous row coordinate).

    The ground ends at or below the horizon and the sky at or above it, so the horizon lies
    between the lowest sky row ``s`` (bottom edge of the lowest sky pixel) and the highest
    ground row ``g`` (top edge of the highest horizontal pixel); it returns
    ``s + HORIZON_GROUND_WEIGHT * (g - s)``. With only ground, ``g``; with only sky, ``s``;
    with neither, or sky reaching below the ground (inconsistent labels), ``g`` or the
    image's middle row.
    """
    surfaces = as_label_map("surfaces", surfaces)
    check_ids("surfaces", surfaces, len(SURFACES), unknown_id)
    ground_rows = np.nonzero((surfaces == HORIZONTAL_ID).any(axis=1))[0]
    sky_rows = np.nonzero((surfaces == SKY_ID).any(axis=1))[0]
    if ground_rows.size == 0 and sky_rows.size == 0:
        return surfaces.shape[0] / 2.0
    if sky_rows.size == 0:
        return float(ground_rows[0])
    sky_bottom = float(sky_rows[-1] + 1)
    if ground_rows.size == 0:
        return sky_bottom
    ground_top = float(ground_rows[0])
    if sky_bottom >= ground_top:
        return ground_top
    return sky_bottom + HORIZON_GROUND_WEIGHT * (ground_top - sky_bottom)


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not np.isfinite(value) or value <= 0:
        raise ValueError(f"`{name}` must be a positive number, got {value!r}.")
    return float(value)


def _grid(size, step):
    """Pixel indices sampled every ``step``, always including the last one."""
    return np.unique(np.append(np.arange(0, size, step), size - 1))


def popup_mesh(image, surfaces, region_ids=None, horizon=None, *, focal_length=None, camera_height=1.0,
               max_depth=MAX_DEPTH, step=1, depth_tolerance=0.1, contact_closing=CONTACT_CLOSING,
               unknown_id=UNKNOWN_ID):
    """A pop-up 3D model of a photo from its geometric surfaces (see the module docstring).

    Args:
        image: ``(H, W, 3)`` photo (or grey ``(H, W)``) in ``[0, 255]``.
        surfaces: ``(H, W)`` surface ids, 0 sky, 1 horizontal, 2 vertical, or ``unknown_id``
            (unknown pixels take the surface of the nearest known pixel).
        region_ids: optional ``(H, W)`` region ids; each connected vertical part of a region
            is one folded surface. None: each connected vertical area is one.
        horizon: the horizon row in pixels (may lie outside the image); None estimates it
            with :func:`estimate_horizon`.
        focal_length: in pixels; None means ``max(H, W)``.
        camera_height: height of the camera above the ground, the unit of the mesh.
        max_depth: the distance of the sky and the farthest any point is placed.
        step: grid spacing in pixels (1: one vertex per pixel).
        depth_tolerance: triangles whose vertices belong to different surfaces (ground,
            sky, one vertical region) are kept only when their depths differ by at most
            this fraction; the others straddle a depth discontinuity (an occlusion) and are
            dropped.
        contact_closing: notches in a region's ground contact narrower than this fraction of
            the image width are filled (a grey closing of the contact rows), so the ground
            seen between a person's legs or a car's wheels does not fold the region back.
        unknown_id: the unknown id of ``surfaces`` and ``region_ids``.

    Returns:
        A :class:`PopupMesh`. When no ground is visible, every vertical region stands on its
        lowest row (as though on hidden ground); this is said in a warning and in ``notes``.
    """
    picture = as_rgb_image(image)
    height, width = picture.shape[:2]
    surfaces = as_label_map("surfaces", surfaces, (height, width), reference="image")
    check_ids("surfaces", surfaces, len(SURFACES), unknown_id)
    regions = np.zeros((height, width), np.int64) if region_ids is None else as_label_map(
        "region_ids", region_ids, (height, width), reference="image"
    )
    camera_height = _check_positive("camera_height", camera_height)
    max_depth = _check_positive("max_depth", max_depth)
    depth_tolerance = _check_positive("depth_tolerance", depth_tolerance)
    if isinstance(contact_closing, bool) or not isinstance(contact_closing, numbers.Real) or not 0 <= contact_closing < 1:
        raise ValueError(f"`contact_closing` must be a fraction of the image width in [0, 1), got {contact_closing!r}.")
    if isinstance(step, bool) or not isinstance(step, numbers.Integral) or step < 1:
        raise ValueError(f"`step` must be a positive integer (pixels), got {step!r}.")
    focal = float(max(height, width)) if focal_length is None else _check_positive("focal_length", focal_length)
    notes = []

    unknown = surfaces == unknown_id
    if unknown.all():
        raise ValueError("`surfaces` holds no known surface (every pixel is the unknown id); nothing to pop up.")
    if horizon is None:
        horizon = estimate_horizon(surfaces, unknown_id)
        notes.append(f"horizon estimated from the surfaces: row {horizon:.1f}")
    elif isinstance(horizon, bool) or not isinstance(horizon, numbers.Real) or not np.isfinite(horizon):
        raise ValueError(f"`horizon` must be a finite row coordinate (pixels) or None, got {horizon!r}.")
    horizon = float(horizon)
    if unknown.any():
        nearest = ndimage.distance_transform_edt(unknown, return_distances=False, return_indices=True)
        surfaces = surfaces[tuple(nearest)]
        notes.append(f"{int(unknown.sum())} pixels of unknown surface took the nearest known surface")

    ground = surfaces == HORIZONTAL_ID
    vertical = surfaces == VERTICAL_ID
    if not ground.any():
        message = (
            "No ground (horizontal surface) is visible: every vertical region is placed as though it stood on "
            "hidden ground at its lowest row."
        )
        warnings.warn(message, stacklevel=2)
        notes.append(message)

    # One folded surface per connected vertical part of each region (labels 1..S, 0 elsewhere).
    _, region_index = np.unique(regions, return_inverse=True)
    segments = measure.label(np.where(vertical, region_index.reshape(regions.shape) + 1, 0), background=0,
                             connectivity=1)
    count = int(segments.max())
    near = focal * camera_height / max_depth  # rows below the horizon closer than max_depth
    closing = round(contact_closing * width)

    def depth_at(rows):
        return focal * camera_height / np.maximum(np.asarray(rows, np.float64) - horizon, near)

    # Contact row (bottom edge of the lowest wall pixel above ground) per segment and column.
    contact = np.full((count + 1, width), -1.0)
    on_ground = vertical[:-1] & ground[1:]
    rows, cols = np.nonzero(on_ground)
    np.maximum.at(contact, (segments[:-1][on_ground], cols), rows + 1.0)
    column_depth = np.full((count + 1, width), max_depth)
    objects = ndimage.find_objects(segments)
    unsupported = 0
    for label, box in enumerate(objects, start=1):
        if box is None:
            continue
        columns = np.arange(box[1].start, box[1].stop)
        known = contact[label, columns] >= 0
        if known.any():
            contact_rows = np.interp(columns, columns[known], contact[label, columns[known]])
            if closing > 1:
                contact_rows = ndimage.grey_closing(contact_rows, size=closing, mode="nearest")
        else:
            contact_rows = np.full(columns.size, float(box[0].stop))  # stands on its lowest row
            unsupported += 1
        column_depth[label, columns] = depth_at(contact_rows)
    if unsupported and ground.any():
        notes.append(f"{unsupported} vertical parts touch no ground and stand on their lowest row")

    grid_rows, grid_cols = _grid(height, step), _grid(width, step)
    pixel_rows, pixel_cols = np.meshgrid(grid_rows, grid_cols, indexing="ij")
    v, u = pixel_rows + 0.5, pixel_cols + 0.5
    kind = surfaces[pixel_rows, pixel_cols]
    segment = segments[pixel_rows, pixel_cols]
    depth = np.where(kind == HORIZONTAL_ID, depth_at(v), max_depth)
    depth = np.where(kind == VERTICAL_ID, column_depth[segment, pixel_cols], depth)
    vertices = np.stack([(u - width / 2.0) * depth / focal, -(v - horizon) * depth / focal, depth], axis=-1)

    # Two triangles per grid cell, counter-clockwise as seen from the camera.
    index = np.arange(pixel_rows.size).reshape(pixel_rows.shape)
    top_left, top_right = index[:-1, :-1].ravel(), index[:-1, 1:].ravel()
    bottom_left, bottom_right = index[1:, :-1].ravel(), index[1:, 1:].ravel()
    faces = np.concatenate([
        np.stack([top_left, bottom_left, bottom_right], axis=1),
        np.stack([top_left, bottom_right, top_right], axis=1),
    ])
    part = np.where(kind == VERTICAL_ID, segment, -1 - kind).ravel()  # sky -1, ground -2, walls 1..S
    flat_depth = depth.ravel()
    same_part = (part[faces] == part[faces[:, :1]]).all(axis=1)
    face_depth = flat_depth[faces]
    smooth = face_depth.max(axis=1) <= (1.0 + depth_tolerance) * face_depth.min(axis=1)
    faces = faces[same_part | smooth]

    return PopupMesh(
        vertices=vertices.reshape(-1, 3),
        faces=faces.astype(np.int64),
        texcoords=np.stack([u.ravel() / width, 1.0 - v.ravel() / height], axis=1),
        pixels=np.stack([pixel_rows.ravel(), pixel_cols.ravel()], axis=1).astype(np.int64),
        surfaces=kind.ravel().astype(np.int64),
        image_size=(int(height), int(width)),
        horizon=horizon,
        focal_length=focal,
        camera_height=camera_height,
        max_depth=max_depth,
        notes=tuple(notes),
    )


# --- Files -------------------------------------------------------------------------------


def _file_picture(mesh, image):
    picture = as_rgb_image(image)
    if picture.shape[:2] != tuple(mesh.image_size):
        raise ValueError(
            f"`image` is {picture.shape[0]}x{picture.shape[1]} (H x W) but the mesh was built from a "
            f"{mesh.image_size[0]}x{mesh.image_size[1]} image."
        )
    return picture


def _file_vertices(mesh):
    """Vertices in the files' right-handed convention (x right, y up, camera looking along -z)."""
    return mesh.vertices * np.array([1.0, 1.0, -1.0])


def write_obj(path, mesh, image):
    """Writes ``mesh`` as a Wavefront OBJ with its material (``.mtl``) and texture (``.png``).

    The three files share ``path``'s stem: ``scene.obj``, ``scene.mtl`` and ``scene.png``
    (the photo, mapped by the texture coordinates). Blender, MeshLab and most viewers open
    them. Returns the OBJ's ``Path``.
    """
    path = Path(path)
    if path.suffix.lower() != ".obj":
        raise ValueError(f"`path` must end in .obj, got {str(path)!r}.")
    picture = _file_picture(mesh, image)
    material, texture = path.with_suffix(".mtl"), path.with_suffix(".png")
    Image.fromarray(picture).save(texture, format="PNG")
    material.write_text(
        "newmtl popup\nKa 1.0 1.0 1.0\nKd 1.0 1.0 1.0\nKs 0.0 0.0 0.0\nillum 1\n"
        f"map_Kd {texture.name}\n"
    )
    corners = mesh.faces + 1  # OBJ counts from 1; each vertex has the texture coordinate of its index
    lines = [f"# pop-up model: {len(mesh.vertices)} vertices, {len(mesh.faces)} faces", f"mtllib {material.name}"]
    lines += [f"v {x:.6f} {y:.6f} {z:.6f}" for x, y, z in _file_vertices(mesh).tolist()]
    lines += [f"vt {s:.6f} {t:.6f}" for s, t in mesh.texcoords.tolist()]
    lines += ["usemtl popup"]
    lines += [f"f {a}/{a} {b}/{b} {c}/{c}" for a, b, c in corners.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path


def write_ply(path, mesh, image):
    """Writes ``mesh`` as an ASCII PLY with per-vertex colours taken from ``image``. Returns the ``Path``."""
    path = Path(path)
    picture = _file_picture(mesh, image)
    colors = picture[mesh.pixels[:, 0], mesh.pixels[:, 1]]
    header = [
        "ply", "format ascii 1.0", "comment pop-up model (keras_sceneparse.structure.popup)",
        f"element vertex {len(mesh.vertices)}",
        "property float x", "property float y", "property float z",
        "property uchar red", "property uchar green", "property uchar blue",
        f"element face {len(mesh.faces)}", "property list uchar int vertex_indices", "end_header",
    ]
    lines = header + [
        f"{x:.6f} {y:.6f} {z:.6f} {r} {g} {b}"
        for (x, y, z), (r, g, b) in zip(_file_vertices(mesh).tolist(), colors.tolist())
    ]
    lines += [f"3 {a} {b} {c}" for a, b, c in mesh.faces.tolist()]
    path.write_text("\n".join(lines) + "\n")
    return path
