from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from keras_sceneparse.structure.popup import PopupMesh, estimate_horizon, popup_mesh, write_obj, write_ply

SKY, GROUND, WALL = 0, 1, 2
HEIGHT, WIDTH, HORIZON = 40, 60, 10.0
FOCAL = 60.0  # max(H, W), the default


def wall_scene():
    """Sky above row 10 (the horizon), ground below, and a wall (region 1) on rows 5-19,
    columns 20-39, standing on the ground along row 20."""
    surfaces = np.full((HEIGHT, WIDTH), GROUND)
    surfaces[:10] = SKY
    regions = np.zeros((HEIGHT, WIDTH), int)
    surfaces[5:20, 20:40] = WALL
    regions[5:20, 20:40] = 1
    image = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3)).astype(np.uint8)
    return image, surfaces, regions


def by_surface(mesh, surface):
    return mesh.vertices[mesh.surfaces == surface], mesh.pixels[mesh.surfaces == surface]


def test_flat_ground_wall_and_sky():
    image, surfaces, regions = wall_scene()
    mesh = popup_mesh(image, surfaces, regions, horizon=HORIZON)
    assert isinstance(mesh, PopupMesh) and mesh.focal_length == FOCAL and mesh.notes == ()
    assert mesh.vertices.shape == (HEIGHT * WIDTH, 3) and mesh.texcoords.shape == (HEIGHT * WIDTH, 2)
    np.testing.assert_array_equal(surfaces[mesh.pixels[:, 0], mesh.pixels[:, 1]], mesh.surfaces)

    # Ground: on the plane y = -1, at the depth where the pixel's ray meets it, up to the
    # far distance 100 (row 10, whose centre is half a pixel below the horizon: 60 / 0.5 > 100).
    ground, pixels = by_surface(mesh, GROUND)
    v, u = pixels[:, 0] + 0.5, pixels[:, 1] + 0.5
    depth = np.minimum(FOCAL / (v - HORIZON), 100.0)
    np.testing.assert_allclose(ground[:, 2], depth)
    np.testing.assert_allclose(ground[:, 0], (u - WIDTH / 2) * depth / FOCAL)
    np.testing.assert_allclose(ground[:, 1], -(v - HORIZON) * depth / FOCAL)
    assert (ground[pixels[:, 0] > 10, 1] == pytest.approx(-1.0)) and (ground[pixels[:, 0] == 10, 2] == 100).all()

    # The wall: every vertex at the depth of its ground contact (row 20: 60 / (20 - 10) = 6),
    # a vertical plane from the ground up.
    wall, pixels = by_surface(mesh, WALL)
    np.testing.assert_allclose(wall[:, 2], 6.0)
    np.testing.assert_allclose(wall[:, 1], -(pixels[:, 0] + 0.5 - HORIZON) * 6.0 / FOCAL)
    np.testing.assert_allclose(wall[:, 0], (pixels[:, 1] + 0.5 - WIDTH / 2) * 6.0 / FOCAL)
    assert wall[:, 1].min() == pytest.approx(-(19.5 - 10) / 10)  # its bottom row's centre, just above y = -1

    sky, _ = by_surface(mesh, SKY)
    np.testing.assert_allclose(sky[:, 2], 100.0)

    # Faces: the wall folds onto the ground (kept) but is cut from the sky behind it.
    kinds = mesh.surfaces[mesh.faces]
    on_wall, on_ground, on_sky = ((kinds == kind).any(axis=1) for kind in (WALL, GROUND, SKY))
    assert (on_wall & on_ground).any()
    assert not (on_wall & on_sky).any()
    assert len(mesh.faces) < 2 * (HEIGHT - 1) * (WIDTH - 1)
    # Counter-clockwise as seen from the camera: the projected triangles have positive area
    # with y up.
    corners = mesh.pixels[mesh.faces][..., ::-1] * np.array([1, -1])
    area = np.cross(corners[:, 1] - corners[:, 0], corners[:, 2] - corners[:, 0])
    assert (area > 0).all()


def test_grid_step_texture_coordinates_and_defaults():
    image, surfaces, _ = wall_scene()
    mesh = popup_mesh(image, surfaces, horizon=HORIZON, step=7, camera_height=1.6, max_depth=50.0)
    rows, cols = np.unique(mesh.pixels[:, 0]), np.unique(mesh.pixels[:, 1])
    assert rows.tolist() == [0, 7, 14, 21, 28, 35, 39] and cols.tolist() == [*range(0, 60, 7), 59]
    assert len(mesh.vertices) == len(rows) * len(cols)
    np.testing.assert_allclose(mesh.texcoords, np.stack(
        [(mesh.pixels[:, 1] + 0.5) / WIDTH, 1 - (mesh.pixels[:, 0] + 0.5) / HEIGHT], axis=1
    ))
    ground, pixels = by_surface(mesh, GROUND)
    np.testing.assert_allclose(ground[:, 1], -1.6)
    np.testing.assert_allclose(ground[:, 2], 1.6 * FOCAL / (pixels[:, 0] + 0.5 - HORIZON))
    # Without region ids, the connected vertical area is the wall.
    np.testing.assert_allclose(by_surface(mesh, WALL)[0][:, 2], 1.6 * 6.0)
    np.testing.assert_allclose(by_surface(mesh, SKY)[0][:, 2], 50.0)


def test_notches_in_the_ground_contact_are_filled():
    image, surfaces, regions = wall_scene()
    surfaces[15:20, 28:30] = GROUND  # ground seen between two "legs"
    regions[15:20, 28:30] = 0
    closed = popup_mesh(image, surfaces, regions, horizon=HORIZON)
    np.testing.assert_allclose(by_surface(closed, WALL)[0][:, 2], 6.0)
    folded = popup_mesh(image, surfaces, regions, horizon=HORIZON, contact_closing=0)
    wall, pixels = by_surface(folded, WALL)
    notch = (pixels[:, 1] >= 28) & (pixels[:, 1] < 30)
    np.testing.assert_allclose(wall[notch, 2], FOCAL / (15 - HORIZON))
    np.testing.assert_allclose(wall[~notch, 2], 6.0)


def test_estimated_horizon():
    _, surfaces, _ = wall_scene()
    assert estimate_horizon(surfaces) == HORIZON  # the sky ends where the ground begins
    surfaces[8:12] = 255  # unknown band: sky ends at 8, ground starts at 12
    assert estimate_horizon(surfaces) == pytest.approx(8 + 0.8 * 4)
    mesh = popup_mesh(np.zeros((HEIGHT, WIDTH, 3)), surfaces)
    assert mesh.horizon == pytest.approx(11.2)
    assert any("horizon estimated" in note for note in mesh.notes)
    assert any("240 pixels of unknown surface" in note for note in mesh.notes)
    rows, cols = mesh.pixels.T
    assert set(mesh.surfaces[(rows >= 8) & (rows < 10) & (cols < 20)]) == {SKY}  # the nearest known surface
    assert set(mesh.surfaces[(rows >= 10) & (rows < 12) & (cols < 20)]) == {GROUND}
    assert estimate_horizon(np.full((4, 6), GROUND)) == 0.0
    assert estimate_horizon(np.full((4, 6), SKY)) == 4.0
    assert estimate_horizon(np.full((4, 6), WALL)) == 2.0


def test_no_ground_visible_warns_and_falls_back():
    image, surfaces, regions = wall_scene()
    surfaces[surfaces == GROUND] = WALL
    regions[10:] = 2  # a second wall below the horizon, on the image's bottom edge
    with pytest.warns(UserWarning, match="No ground"):
        mesh = popup_mesh(image, surfaces, regions, horizon=HORIZON)
    assert any("No ground" in note for note in mesh.notes)
    wall, pixels = by_surface(mesh, WALL)
    lower = regions[pixels[:, 0], pixels[:, 1]] == 2
    np.testing.assert_allclose(wall[lower, 2], FOCAL / (HEIGHT - HORIZON))  # stands on its lowest row
    assert np.isfinite(mesh.vertices).all()


def test_errors():
    image, surfaces, regions = wall_scene()
    with pytest.raises(ValueError, match=r"`surfaces` has shape \(39, 60\); expected \(40, 60\), the shape of `image`"):
        popup_mesh(image, surfaces[1:])
    with pytest.raises(ValueError, match=r"`region_ids` has shape"):
        popup_mesh(image, surfaces, regions[:, 1:])
    with pytest.raises(ValueError, match=r"`surfaces` holds ids \[3\]"):
        popup_mesh(image, np.full_like(surfaces, 3))
    with pytest.raises(ValueError, match="no known surface"):
        popup_mesh(image, np.full_like(surfaces, 255))
    with pytest.raises(ValueError, match="`horizon` must be a finite"):
        popup_mesh(image, surfaces, horizon=float("nan"))
    for name, value in (("step", 0), ("camera_height", -1.0), ("max_depth", 0), ("focal_length", "wide"),
                        ("contact_closing", 1.5)):
        with pytest.raises(ValueError, match=f"`{name}`"):
            popup_mesh(image, surfaces, **{name: value})
    with pytest.raises(ValueError, match="`image`"):
        popup_mesh(np.zeros((HEIGHT, WIDTH, 2)), surfaces)


def read_obj(path):
    """A tiny OBJ reader: vertices, texture coordinates, faces ``[(vertex, texcoord) x 3]`` (from 0)."""
    vertices, texcoords, faces, materials = [], [], [], []
    for line in Path(path).read_text().splitlines():
        kind, *fields = line.split() or [""]
        if kind == "v":
            vertices.append([float(value) for value in fields])
        elif kind == "vt":
            texcoords.append([float(value) for value in fields])
        elif kind == "f":
            faces.append([[int(index) - 1 for index in corner.split("/")] for corner in fields])
        elif kind in ("mtllib", "usemtl"):
            materials.append((kind, fields[0]))
    return np.array(vertices), np.array(texcoords), np.array(faces), materials


def test_obj_files(tmp_path):
    image, surfaces, regions = wall_scene()
    mesh = popup_mesh(image, surfaces, regions, horizon=HORIZON, step=3)
    path = write_obj(tmp_path / "scene.obj", mesh, image)
    assert path == tmp_path / "scene.obj"
    vertices, texcoords, faces, materials = read_obj(path)
    assert vertices.shape == mesh.vertices.shape and texcoords.shape == mesh.texcoords.shape
    np.testing.assert_allclose(vertices, mesh.vertices * [1, 1, -1], atol=1e-6)  # right-handed, camera looking along -z
    np.testing.assert_allclose(texcoords, mesh.texcoords, atol=1e-6)
    assert faces.shape == (len(mesh.faces), 3, 2)
    np.testing.assert_array_equal(faces[..., 0], mesh.faces)
    np.testing.assert_array_equal(faces[..., 1], mesh.faces)
    assert materials == [("mtllib", "scene.mtl"), ("usemtl", "popup")]
    material = (tmp_path / "scene.mtl").read_text()
    assert "newmtl popup" in material and "map_Kd scene.png" in material
    with Image.open(tmp_path / "scene.png") as texture:
        np.testing.assert_array_equal(np.asarray(texture), image)
    with pytest.raises(ValueError, match=r"end in \.obj"):
        write_obj(tmp_path / "scene.ply", mesh, image)
    with pytest.raises(ValueError, match=r"`image` is 20x60 .* built from a 40x60 image"):
        write_obj(tmp_path / "other.obj", mesh, image[:20])


def test_ply_file(tmp_path):
    image, surfaces, regions = wall_scene()
    mesh = popup_mesh(image, surfaces, regions, horizon=HORIZON, step=4)
    lines = write_ply(tmp_path / "scene.ply", mesh, image).read_text().splitlines()
    assert lines[:2] == ["ply", "format ascii 1.0"]
    end = lines.index("end_header")
    header = lines[:end]
    vertex_count = int(next(line for line in header if line.startswith("element vertex")).split()[-1])
    face_count = int(next(line for line in header if line.startswith("element face")).split()[-1])
    assert (vertex_count, face_count) == (len(mesh.vertices), len(mesh.faces))
    assert len(lines) == end + 1 + vertex_count + face_count
    rows = np.array([line.split() for line in lines[end + 1 : end + 1 + vertex_count]], float)
    np.testing.assert_allclose(rows[:, :3], mesh.vertices * [1, 1, -1], atol=1e-5)
    np.testing.assert_array_equal(rows[:, 3:], image[mesh.pixels[:, 0], mesh.pixels[:, 1]])
    faces = np.array([line.split() for line in lines[end + 1 + vertex_count :]], int)
    assert (faces[:, 0] == 3).all()
    np.testing.assert_array_equal(faces[:, 1:], mesh.faces)
