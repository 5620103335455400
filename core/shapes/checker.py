"""A rule-based judge of images of the shapes world, written with scikit-image (independent of any model).

It finds flat-coloured objects on the plain background, names each one's colour (nearest palette colour in
CIELAB), shape (from the extent and solidity of its region), position and size, and compares them with the
scene a prompt asked for.
"""

from __future__ import annotations

from dataclasses import dataclass

MIN_OBJECT_AREA = 24        # pixels of a 64x64 image; smaller specks are noise
BACKGROUND_DELTA_E = 18.0   # CIELAB distance from the background beyond which a pixel is foreground
SQUARE_MIN_EXTENT = 0.86    # area / bounding-box area: square ~1.0, circle ~0.79, triangle ~0.5
TRIANGLE_MAX_EXTENT = 0.66
LARGE_MIN_RADIUS = 10.5     # equivalent half-extent separating "small" (8) from "large" (13)


@dataclass(frozen=True)
class DetectedObject:
    colour: str
    shape: str
    position: str
    size: str
    area: int
    centroid: tuple[float, float]  # (x, y) in pixels
    extent: float


@dataclass(frozen=True)
class Verdict:
    colour_shape_ok: bool   # every requested colour x shape found, nothing else found
    position_ok: bool       # ... and each at its requested position
    per_object: tuple[bool, ...]
    detected: tuple[DetectedObject, ...]


def _palette_lab():
    import numpy as np
    from skimage.color import rgb2lab

    from core.shapes.world import BACKGROUND_RGB, COLOURS

    names = list(COLOURS)
    rgb = np.array([COLOURS[n] for n in names] + [BACKGROUND_RGB], dtype=np.float64) / 255.0
    lab = rgb2lab(rgb.reshape(1, -1, 3)).reshape(-1, 3)
    return names, lab[:-1], lab[-1]


def _shape_name(extent: float, solidity: float) -> str:
    if extent >= SQUARE_MIN_EXTENT:
        return "square"
    if extent <= TRIANGLE_MAX_EXTENT:
        return "triangle"
    return "circle"


def _equivalent_radius(shape: str, area: float) -> float:
    import math

    if shape == "circle":
        return math.sqrt(area / math.pi)
    if shape == "square":
        return math.sqrt(area) / 2
    return math.sqrt(area / 2)  # isosceles triangle of base 2r and height 2r has area 2r^2


def _nearest_position(x: float, y: float) -> str:
    from core.shapes.world import POSITION_CENTRES

    return min(POSITION_CENTRES, key=lambda p: (POSITION_CENTRES[p][0] - x) ** 2 + (POSITION_CENTRES[p][1] - y) ** 2)


def detect_objects(image) -> list[DetectedObject]:
    """Objects in an (H, W, 3) uint8 image of the shapes world, largest first. Coordinates scale to 64x64."""
    import numpy as np
    from skimage.color import rgb2lab
    from skimage.measure import label, regionprops
    from skimage.morphology import disk, opening

    image = np.asarray(image)
    if image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"Expected an (H, W, 3) RGB image, got shape {image.shape}.")
    scale = 64.0 / image.shape[1]
    names, palette, _ = _palette_lab()
    lab = rgb2lab(image.astype(np.float64) / 255.0)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    background = np.median(border, axis=0)
    foreground = np.linalg.norm(lab - background, axis=-1) > BACKGROUND_DELTA_E
    foreground = opening(foreground, disk(1)).astype(bool)
    nearest = np.argmin(np.linalg.norm(lab[..., None, :] - palette, axis=-1), axis=-1)
    found: list[DetectedObject] = []
    for index, name in enumerate(names):
        regions = label(foreground & (nearest == index), connectivity=1)
        for region in regionprops(regions):
            area = region.area * scale * scale
            if area < MIN_OBJECT_AREA:
                continue
            shape = _shape_name(region.extent, region.solidity)
            y, x = region.centroid
            size = "large" if _equivalent_radius(shape, area) >= LARGE_MIN_RADIUS else "small"
            found.append(DetectedObject(name, shape, _nearest_position(x * scale, y * scale), size, round(area),
                                        (x * scale, y * scale), float(region.extent)))
    found.sort(key=lambda o: -o.area)
    return found


def check_image(image, scene) -> Verdict:
    """Does `image` show `scene`'s objects (colour and shape; and position)? Extra objects make it wrong."""
    detected = detect_objects(image)
    remaining = list(detected)
    per_object = []
    positions_ok = True
    for wanted in scene.objects:
        match = next((d for d in remaining if d.colour == wanted.colour and d.shape == wanted.shape), None)
        per_object.append(match is not None)
        if match is None:
            positions_ok = False
            continue
        remaining.remove(match)
        positions_ok = positions_ok and match.position == wanted.position
    colour_shape_ok = all(per_object) and not remaining
    return Verdict(colour_shape_ok, colour_shape_ok and positions_ok, tuple(per_object), tuple(detected))


def colour_mask(image, colour: str):
    """Boolean mask of the foreground pixels of `image` whose nearest palette colour is `colour`."""
    import numpy as np
    from skimage.color import rgb2lab
    from skimage.morphology import disk, opening

    names, palette, _ = _palette_lab()
    lab = rgb2lab(np.asarray(image).astype(np.float64) / 255.0)
    border = np.concatenate([lab[0], lab[-1], lab[:, 0], lab[:, -1]])
    foreground = np.linalg.norm(lab - np.median(border, axis=0), axis=-1) > BACKGROUND_DELTA_E
    foreground = opening(foreground, disk(1)).astype(bool)
    nearest = np.argmin(np.linalg.norm(lab[..., None, :] - palette, axis=-1), axis=-1)
    return foreground & (nearest == names.index(colour))
