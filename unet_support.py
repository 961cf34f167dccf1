"""Plumbing for unet_helpers that the lessons need not read, kept apart so that unet_helpers.py
reads as the lessons teach: input checks, the readers of a data set folder, array plumbing
(padding, tile positions, ratios, object overlaps), the synthetic-data renderer, a fix for
TensorFlow 2.21's tf.data (run on import), fixes for Keras 3.15.1 on the PyTorch backend, class
colours, the U-Net diagram and the other figures, writers of label images and object tables.
unet_helpers imports what the lessons call from here (tagged with the lesson, as there); this
module never imports unet_helpers."""

from pathlib import Path

import keras
import numpy as np
from keras import layers
from PIL import Image

# --- Input checks and readers of a data set folder ------------------------------------------------

_IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff")
#: Masks must be lossless: JPEG compression blurs edges and invents class ids that do not exist.
_MASK_EXTENSIONS = (".png", ".bmp", ".tif", ".tiff")
_LAYOUT_HELP = (
    "expected layout: <directory>/images/<stem>.png and <directory>/masks/<stem>.png (or "
    "masks/<stem>_mask.png), same stem for an image and its mask: see data/README.md, or make a "
    "synthetic set with make_synthetic_dataset"
)
#: The fix that the error of each whole-number setting names.
_HINTS = {
    "n_classes": "use 1 for binary (foreground/background) masks, K >= 2 for K classes",
    "depth": "use the number of pooling steps, typically 3 or 4",
    "base_filters": "16 on a CPU, 64 in the original U-Net",
    "channels": "the number of channels ends input_shape, 1 grayscale or 3 RGB",
}


def check_whole_number(name, value):
    """Raise a ValueError naming ``name`` and its fix unless ``value`` is an int >= 1, not bool."""
    if not isinstance(value, (int, np.integer)) or isinstance(value, bool) or value < 1:
        hint = f": {_HINTS[name]}" if name in _HINTS else ""
        raise ValueError(f"{name} must be a whole number >= 1; got {value!r}{hint}.")


def check_channels(channels, allowed=(None, 1, 3)):
    """Raise a ValueError unless ``channels`` is in ``allowed``: None, 1 (grayscale) or 3 (RGB)."""
    if channels not in allowed:
        raise ValueError(f"channels must be 1 (grayscale) or 3 (RGB); got {channels!r}.")


def check_class_ids(masks, n_classes, labels):
    """``masks`` unchanged, or a ValueError naming the fix unless they hold ids 0..labels-1."""
    if masks.size and (masks.min() < 0 or masks.max() >= labels):
        raise ValueError(
            f"mask values {sorted(set(np.unique(masks).tolist()))} fall outside 0..{labels - 1} "
            f"for n_classes={n_classes}: load masks with uh.load_dataset, which checks them."
        )
    return masks


def check_head_and_loss(model, activation, loss):
    """Raise a ValueError naming the fix unless the model's head is ``activation`` and ``loss``
    suits it: binary cross-entropy on a softmax head is refused."""
    n_classes = int(model.output_shape[-1])
    found = getattr(model.layers[-1], "activation", None)
    found = getattr(found, "__name__", str(found))
    if found != activation:
        raise ValueError(
            f"the model has {n_classes} output channel(s) and a {found} head, but "
            f"{n_classes} channel(s) need {activation}. Build it with "
            f"build_unet(..., n_classes={n_classes}) so the head matches."
        )
    resolved = loss
    if isinstance(loss, str):
        try:
            resolved = keras.losses.get(loss)
        except ValueError:  # a name only model.compile knows, such as "crossentropy"
            resolved = None
    if n_classes > 1 and getattr(resolved, "fn", resolved) is keras.losses.binary_crossentropy:
        raise ValueError(
            f"binary_crossentropy scores each of the {n_classes} softmax channels as an "
            f"independent yes/no question, but a softmax head gives one class per pixel. For "
            f"masks of class ids 0..{n_classes - 1} leave loss=None (sparse categorical "
            f"cross-entropy) or use uh.dice_cross_entropy_loss({n_classes}). Multi-label masks "
            f"(classes that overlap) need {n_classes} sigmoid channels: build and compile that "
            f"model by hand with model.compile."
        )


def check_split(count, lengths, fractions, n_groups):
    """Raise a ValueError naming the fix unless ``split_dataset`` can make three parts: one mask,
    group and stratum per image (``lengths``), fractions > 0 leaving some for training."""
    if any(length != count for length in lengths):
        masks, groups, strata = lengths
        raise ValueError(
            f"got {count} images, {masks} masks, {groups} groups and {strata} "
            f"strata: give one of each per image."
        )
    if min(fractions) <= 0 or sum(fractions) >= 1:
        raise ValueError(f"fractions must be > 0 and leave images for training; got {fractions}.")
    if n_groups < 3:
        raise ValueError(
            f"need at least 3 images to split into train, validation and test; got {n_groups}."
        )


def image_weights(images, masks, weights=None):
    """Each image's chance to be picked, summing to 1 (None: alike), or a ValueError naming the
    fix unless images and masks pair up and ``weights`` are one non-negative number per image."""
    if len(images) != len(masks) or not len(images):
        raise ValueError(f"got {len(images)} images and {len(masks)} masks: give pairs.")
    weights = np.ones(len(images)) if weights is None else np.asarray(weights, float)
    if weights.shape != (len(images),) or not (weights >= 0).all() or not weights.sum() > 0:
        raise ValueError(f"weights: one non-negative number per image ({len(images)}).")
    return weights / weights.sum()


def check_tiling(model, tile_size, overlap):
    """The tile side for ``model`` (None: its input's), or a ValueError naming the fix; ``overlap``
    must be a share of a tile, 0 <= overlap < 1."""
    _, height, width, _ = model.input_shape
    if tile_size is None:
        if height is None or height != width:
            raise ValueError(
                "the model accepts any input size: pass tile_size, a multiple of 2**depth."
            )
        tile_size = height
    if not 0 <= overlap < 1:
        raise ValueError(f"overlap is a share of a tile, 0 <= overlap < 1; got {overlap!r}.")
    return tile_size


def short_list(names, cap=20):
    """``a, b, c and N more``: a readable list of at most ``cap`` names."""
    names = list(names)
    text = ", ".join(str(name) for name in names[:cap])
    return text + (f" and {len(names) - cap} more" if len(names) > cap else "")


def _values_text(values):
    """Mask values as ``{0, 1, 7}``, cut after 12."""
    values = sorted(int(value) for value in values)
    if len(values) <= 12:
        return "{" + ", ".join(map(str, values)) + "}"
    return "{" + ", ".join(map(str, values[:12])) + f", ...}} ({len(values)} values)"


def visible(folder):
    """The entries of ``folder`` whose names do not start with "." (.DS_Store, checkpoints)."""
    return [path for path in Path(folder).iterdir() if not path.name.startswith(".")]


def _open_picture(path):
    """The decoded Pillow picture of a file, or None if it cannot be read."""
    try:
        with Image.open(path) as picture:
            picture.load()
            return picture
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError):
        return None


def _picture_array(picture):
    """(H, W) or (H, W, 3) array of a picture, values as stored (alpha dropped, palettes RGB)."""
    if picture.mode in ("L", "RGB", "F") or picture.mode.startswith("I"):
        return np.asarray(picture)
    if picture.mode in ("LA", "La"):
        return np.asarray(picture.convert("L"))
    return np.asarray(picture.convert("RGB"))  # RGBA drops alpha; palette, CMYK... become RGB


def read_image(path):
    """An image file as an array at its own size, (H, W) or (H, W, 3), as stored (lesson 07.1)."""
    picture = _open_picture(path)
    if picture is None:
        raise ValueError(
            f"cannot read {Path(path).as_posix()}: the file is corrupt, truncated or not an image."
        )
    return _picture_array(picture)


def image_array(image):
    """``(array, maximum)``: an image as float32 (H, W, 1 or 3), alpha dropped, and the largest
    value its type holds (1.0 for floats), or a ValueError naming the fix."""
    array = np.asarray(image)
    maximum = np.iinfo(array.dtype).max if array.dtype.kind in "ui" else 1.0
    if array.dtype.kind == "i" and array.max(initial=0) <= 65535:
        maximum = 65535  # Pillow mode "I" (int32) holding 16-bit values
    if array.ndim == 2:
        array = array[..., None]
    if array.ndim != 3 or array.shape[-1] not in (1, 3, 4):
        raise ValueError(
            f"an image must be (H, W) grayscale or (H, W, C) with 1, 3 or 4 channels; got shape "
            f"{array.shape}. Read files with uh.read_image."
        )
    return array[..., :3].astype(np.float32), maximum


def _mask_ids(picture):
    """2-D int64 array of a mask's values, or None for a colour mask."""
    bands = len(picture.getbands())
    if bands >= 3:  # RGB, RGBA, CMYK...: a gray mask saved in colour has three equal channels
        rgb = np.asarray(picture.convert("RGB"))
        if (rgb[..., 0] != rgb[..., 1]).any() or (rgb[..., 0] != rgb[..., 2]).any():
            return None
        return rgb[..., 0].astype(np.int64)
    values = np.asarray(picture)  # L, P (palette index = class id), 1, I, I;16, F; LA and PA
    return (values[..., 0] if bands == 2 else values).astype(np.int64)  # drop the alpha band


def map_mask_values(mask, values):
    """uint8 class ids of a mask whose classes are coded by other values: ``values[k]`` -> k."""
    mask, values = np.asarray(mask), [int(value) for value in values]
    if len(set(values)) != len(values) or not 1 <= len(values) <= 256:
        raise ValueError(f"mask_values={values}: give 1 to 256 different values, one per class.")
    ids = np.zeros(mask.shape, np.uint8)
    for class_id, value in enumerate(values):
        ids[mask == value] = class_id
    unknown = ~np.isin(mask, values)
    if unknown.any():
        raise ValueError(
            f"mask values {_values_text(np.unique(mask[unknown]))} are not in mask_values="
            f"{values}: list the value of every class, class 0 (the background) first."
        )
    return ids


def _mask_value_error(n_classes, found, bad_values, mixed_files, mask_values=None):
    """The ValueError for mask values that do not fit ``n_classes`` (or ``mask_values``)."""
    values = sorted(int(value) for value in found)
    grey_levels = (  # K distinct values for K classes: grey levels
        f"The masks hold exactly {len(values)} distinct values, one per class: grey levels, as "
        f"annotation tools export them. Map them to class ids 0..{len(values) - 1} with "
        f"load_dataset(..., mask_values={values}) (the k-th value becomes class k: put the "
        f"background's value first), or renumber the masks."
    )
    if mask_values is not None:
        allowed, fix = f"mask_values={mask_values}", "List every class's value, class 0 first."
    elif n_classes == 1:
        allowed = "binary masks hold only 0 and 1, or only 0 and 255"
        fix = (
            "Threshold in-between values (antialiased edges, JPEG) and save as PNG; for K "
            "classes pass n_classes=K."
        )
        fix = grey_levels if len(found) == 2 and not mixed_files else fix
    else:
        allowed = f"allowed 0..{n_classes - 1}"
        fix = f"Pass n_classes={max(found) + 1} if there are that many classes, or renumber them."
        fix = grey_levels if len(found) == n_classes else fix
        if set(found) <= {0, 255}:
            fix = "These look like 0/255 binary masks: pass n_classes=1. " + fix
    parts = [f"value {value} in {short_list(bad_values[value], 5)}" for value in sorted(bad_values)]
    parts += [f"both 1 and 255 in {short_list(mixed_files, 5)}"] if mixed_files else []
    return ValueError(
        f"mask values {_values_text(found)} do not fit n_classes={n_classes} ({allowed}): "
        f"{short_list(parts, 8)}. {fix}"
    )


def _folder_files(directory, folder, extensions):
    """``{stem: path}`` of ``directory/folder``; files that do not belong there are refused."""
    path = directory / folder
    if not path.is_dir():
        raise FileNotFoundError(f"{path.as_posix()} is missing: {_LAYOUT_HELP}.")
    files, strangers, lossy, duplicates = {}, [], [], []
    for entry in sorted(visible(path)):
        name, suffix = f"{folder}/{entry.name}", entry.suffix.lower()
        if folder == "masks" and suffix in (".jpg", ".jpeg"):
            lossy.append(name)
        elif not entry.is_file() or suffix not in extensions:
            strangers.append(name)
        elif entry.stem in files:
            duplicates.append(f"{folder}/{files[entry.stem].name} and {name}")
        else:
            files[entry.stem] = entry
    for found, message in (
        (lossy, "JPEG masks found: {}. Masks must be lossless: re-export them as PNG"),
        (strangers, f"not an image file in {folder}/: {{}}. Move it out of the data set folder"),
        (duplicates, "two files share a stem: {}. Remove or rename one of them"),
    ):
        if found:
            raise ValueError(message.format(short_list(found)) + ".")
    return files


def _paired_files(directory):
    """``(image_files, mask_files)``, stem -> path, checked to pair one to one (a mask
    ``<stem>_mask.*`` pairs with image ``<stem>``, unless that gives the image two masks)."""
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(
            f"data set folder {directory.as_posix()} not found: {_LAYOUT_HELP}."
        )
    image_files = _folder_files(directory, "images", _IMAGE_EXTENSIONS)
    mask_files = _folder_files(directory, "masks", _MASK_EXTENSIONS)
    for mask_stem in sorted(mask_files):
        stem = mask_stem.removesuffix("_mask")
        if stem == mask_stem or mask_stem in image_files or stem not in image_files:
            continue
        if stem in mask_files:
            raise ValueError(
                f"two masks for images/{image_files[stem].name}: masks/{mask_files[stem].name} "
                f"and masks/{mask_files[mask_stem].name}. Keep one of them and move the other out."
            )
        mask_files[stem] = mask_files.pop(mask_stem)
    if not image_files:
        raise ValueError(f"no images in {directory.as_posix()}/images: {_LAYOUT_HELP}.")
    problems = []
    for folder, files, others, what in (
        ("images", image_files, mask_files, "image(s) without a mask"),
        ("masks", mask_files, image_files, "mask(s) without an image"),
    ):
        names = [f"{folder}/{files[stem].name}" for stem in sorted(files.keys() - others)]
        if names:
            problems.append(f"{len(names)} {what}: {short_list(names)}")
    if problems:
        raise ValueError(
            f"unpaired files in {directory.as_posix()}: {'; '.join(problems)}. Every image needs a "
            f"mask with the same stem (images/a.jpg <-> masks/a.png or masks/a_mask.png): add the "
            f"missing files or move the unpaired ones out."
        )
    return image_files, mask_files


def image_files(directory):
    """``{stem: path}`` of the images ``load_images`` reads, to open them raw (lesson 07.1)."""
    return _paired_files(directory)[0]


def _class_ids(ids, n_classes, mask_values):
    """``(class ids, wrong values, both 1 and 255)`` of one mask's stored values."""
    values = set(np.unique(ids).tolist())
    if mask_values is not None:
        wrong = values - set(mask_values)
        return (ids if wrong else map_mask_values(ids, mask_values)), wrong, False
    if n_classes > 1:
        return ids, {value for value in values if not 0 <= value < n_classes}, False
    mixed = {1, 255} <= values
    return (ids // 255 if 255 in values and not mixed else ids), values - {0, 1, 255}, mixed


def read_pairs(directory, n_classes=1, mask_values=None):
    """``(images as stored, uint8 (H, W, 1) class ids, sorted stems)`` of a checked folder:
    every problem in it raises one error that names the files and the fix."""
    check_whole_number("n_classes", n_classes)
    labels = 2 if n_classes == 1 else n_classes
    if n_classes > 256:
        raise ValueError(f"n_classes must be at most 256 (masks hold uint8); got {n_classes}.")
    if mask_values is not None:
        mask_values = [int(value) for value in mask_values]
        if len(mask_values) != labels or len(set(mask_values)) < len(mask_values):
            raise ValueError(
                f"mask_values={mask_values} must list {labels} different values for "
                f"n_classes={n_classes}: each class's value in the mask files, class 0 first."
            )
    image_files, mask_files = _paired_files(directory)
    stems = sorted(image_files)
    images, masks, corrupt, colour_masks, sizes, mixed_files = [], [], [], [], [], []
    found, bad_values = set(), {}
    for stem in stems:
        names = f"images/{image_files[stem].name}", f"masks/{mask_files[stem].name}"
        pictures = _open_picture(image_files[stem]), _open_picture(mask_files[stem])
        corrupt += [name for name, picture in zip(names, pictures, strict=True) if picture is None]
        if None in pictures:
            continue
        if pictures[0].size != pictures[1].size:
            (iw, ih), (mw, mh) = pictures[0].size, pictures[1].size
            sizes.append(f"'{stem}' ({names[0]} {iw}x{ih}, {names[1]} {mw}x{mh})")
            continue
        ids = _mask_ids(pictures[1])
        if ids is None:
            colour_masks.append(names[1])
            continue
        found |= set(np.unique(ids).tolist())
        ids, wrong, mixed = _class_ids(ids, n_classes, mask_values)
        mixed_files += [names[1]] if mixed else []
        for value in wrong:
            bad_values.setdefault(value, []).append(names[1])
        if not (wrong or mixed_files):
            masks.append(ids.astype(np.uint8)[..., None])
            images.append(_picture_array(pictures[0]))
    if corrupt:
        raise ValueError(
            f"cannot read {short_list(corrupt)}: the file is corrupt, truncated or not really an "
            f"image. Re-export it, or move the image and its mask out of the folder."
        )
    if sizes:
        raise ValueError(
            f"image and mask sizes differ (width x height) for {short_list(sizes, 10)}: "
            f"re-export each mask at its image's size."
        )
    if colour_masks:
        raise ValueError(
            f"colour mask(s) {short_list(colour_masks)}: a mask must be ONE channel of class ids "
            f"(0 background, 1, 2, ...), not an RGB picture: map each colour to an id."
        )
    if bad_values or mixed_files:
        raise _mask_value_error(n_classes, found, bad_values, mixed_files, mask_values)
    return images, masks, stems


def read_labels(directory, stems, shapes):
    """int32 label images ``labels/<stem>.*`` of the given (H, W) shapes; None without labels/."""
    folder = Path(directory) / "labels"
    if not folder.is_dir():
        return None
    files = {path.stem: path for path in visible(folder)}
    missing = [stem for stem in stems if stem not in files]
    if missing:
        raise FileNotFoundError(
            f"no labels/ file for {short_list(missing)}: add them or remove labels/."
        )
    labels = [read_image(files[stem]).astype(np.int32) for stem in stems]
    for stem, label, shape in zip(stems, labels, shapes, strict=True):
        if label.shape != shape:
            raise ValueError(f"labels/{files[stem].name} is {label.shape}, its mask {shape}.")
    return labels


def check_label_masks(y_true, y_pred, n_labels=None):
    """Both masks as NumPy arrays of class ids (in 0..n_labels-1) with one shape, or a ValueError
    naming the fix."""
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    probabilities = (
        "threshold (1 channel) or argmax (K channels) first: uh.predicted_classes(y_pred)"
    )
    if y_true.shape != y_pred.shape:
        hint = "compare masks of the same images, with the same (N, H, W, 1) layout"
        if y_pred.shape[:-1] == y_true.shape[:-1] and y_pred.ndim and y_pred.shape[-1] > 1:
            hint = f"y_pred has {y_pred.shape[-1]} channels, probabilities? {probabilities}"
        raise ValueError(
            f"y_true {y_true.shape} and y_pred {y_pred.shape} differ in shape: {hint}."
        )
    for name, mask in (("y_true", y_true), ("y_pred", y_pred)):
        if mask.dtype.kind not in "biuf":
            raise ValueError(f"{name} must hold integer class ids; got dtype {mask.dtype}.")
        if mask.dtype.kind == "f" and not np.all(np.isfinite(mask) & (mask == np.round(mask))):
            fix = probabilities if name == "y_pred" else "masks must hold class ids 0, 1, ..."
            raise ValueError(
                f"{name} holds non-integer values (for example "
                f"{mask[mask != np.round(mask)][0]:.3g}), which look like probabilities: {fix}."
            )
        if n_labels is not None and mask.size and (mask.min() < 0 or mask.max() >= n_labels):
            bad = mask.min() if mask.min() < 0 else mask.max()
            hint = "binary masks have n_labels = uh.mask_classes(1) = 2, 0/255 ones need / 255"
            raise ValueError(
                f"{name} holds label {bad:g}, outside 0..{n_labels - 1} for n_labels={n_labels}: "
                f"{hint}."
            )
    return y_true, y_pred


# --- The synthetic data set -----------------------------------------------------------------------

#: Synthetic classes: 0 background, then one name per object class (lesson 05.1).
SYNTHETIC_CLASS_NAMES = {
    "binary": ["background", "object"],
    "multiclass": ["background", "ellipse", "rectangle", "triangle"],
}
_COLOURS = {
    "blob": (0.78, 0.70, 0.55),
    "ellipse": (0.80, 0.42, 0.30),
    "rectangle": (0.35, 0.68, 0.40),
    "triangle": (0.45, 0.62, 0.95),
}


def _shape_distance(kind, rows, cols, center, radii, angle, rng):
    """Signed distance in pixels (positive inside) of a rotated shape, on the given grids."""
    dy, dx = rows - center[0], cols - center[1]
    cos, sin = np.cos(angle), np.sin(angle)
    u, v = dx * cos + dy * sin, -dx * sin + dy * cos
    if kind == "rectangle":
        return np.minimum(radii[0] - np.abs(u), radii[1] - np.abs(v))
    if kind == "triangle":
        corner_angles = angle + np.array([0.0, 2.0, 4.0]) * np.pi / 3 + rng.uniform(-0.3, 0.3, 3)
        corners = (
            radii[0]
            * rng.uniform(0.85, 1.15, 3)[:, None]
            * np.stack([np.sin(corner_angles), np.cos(corner_angles)], axis=1)
        )
        distance = np.full(rows.shape, np.inf)
        for i in range(3):  # positive inside each edge: the corners go round by increasing angle
            (y0, x0), (y1, x1) = corners[i], corners[(i + 1) % 3]
            length = np.hypot(y1 - y0, x1 - x0)
            edge = ((x1 - x0) * (dy - y0) - (y1 - y0) * (dx - x0)) / length
            distance = np.minimum(distance, edge)
        return distance
    wobble = 1.0  # an ellipse; a blob is an ellipse whose radius wobbles with the angle
    if kind == "blob":
        lobes, phase, depth = rng.integers(2, 6), rng.uniform(0, 2 * np.pi), rng.uniform(0.05, 0.2)
        wobble = 1.0 + depth * np.sin(lobes * np.arctan2(v, u) + phase)
    rho = np.hypot(u / radii[0], v / radii[1]) / wobble
    return (1.0 - rho) * min(radii)


def _smooth_noise(rng, size, grid):
    """Smooth random field in [-1, 1]: a ``grid`` x ``grid`` random image, resized bicubically."""
    coarse = rng.uniform(-1.0, 1.0, (grid, grid)).astype(np.float32)
    picture = Image.fromarray(coarse).resize((size, size), Image.Resampling.BICUBIC)
    return np.clip(np.asarray(picture), -1.0, 1.0)


def _synthetic_objects(task, rng, size, n_classes=4):
    """One image's objects: ``(class_id, kind, center, radii, angle, colour)`` tuples."""
    objects = []
    if rng.random() < 0.05:  # some images hold no object at all
        return objects
    if task == "binary":
        plan = [(1, "blob", 4.0, 26.0)] * int(rng.integers(1, 9))
    else:
        plan = (
            [(1, "ellipse", 17.0, 33.0)] * int(rng.integers(1, 3))
            + [(2, "rectangle", 8.0, 18.0)] * int(rng.integers(1, 5))
            + [(3, "triangle", 6.0, 11.0)] * int(rng.integers(2, 7))
        )
        plan = [entry for entry in plan if entry[0] < n_classes]
    previous = None
    for class_id, kind, smallest, largest in plan:
        radius = np.exp(rng.uniform(np.log(smallest), np.log(largest)))  # many small, few large
        radii = (radius, radius * rng.uniform(0.55, 1.0))
        if previous is not None and rng.random() < 0.3:  # touch the previous object
            direction = rng.uniform(0, 2 * np.pi)
            reach = 0.9 * (previous[1] + radii[1])
            center = previous[0] + reach * np.array([np.sin(direction), np.cos(direction)])
        else:  # anywhere, including partly outside the image
            center = rng.uniform(-0.3 * radius, size + 0.3 * radius, 2)
        colour = np.array(_COLOURS[kind]) * rng.uniform(0.85, 1.1) + rng.uniform(-0.06, 0.06, 3)
        colour += rng.uniform(0.0, 0.35) * (colour.mean() - colour)  # some objects look greyer
        objects.append((class_id, kind, center, radii, rng.uniform(0, np.pi), colour))
        previous = (center, radii[0])
    return objects


def synthetic_pair(task="binary", image_size=128, rng=None, n_classes=4):
    """One synthetic ``(image uint8 (H, W, 3), mask uint8 (H, W) of class ids)`` pair (lesson 04.1);
    ``n_classes`` (multiclass, 2 to 4) keeps the first ``n_classes - 1`` object classes."""
    rng = np.random.default_rng(rng)
    size = image_size
    background = rng.uniform(0.22, 0.42) + rng.uniform(-0.04, 0.04, 3)
    texture = 0.25 * _smooth_noise(rng, size, 5) + 0.15 * _smooth_noise(rng, size, 24)
    image = np.clip(background * (1.0 + texture)[..., None], 0.0, 1.0)
    mask = np.zeros((size, size), np.uint8)
    objects = _synthetic_objects(task, rng, size, n_classes)
    for class_id, kind, center, radii, angle, colour in objects:
        reach = radii[0] * 1.2 + 2
        top, bottom = max(int(center[0] - reach), 0), min(int(center[0] + reach) + 1, size)
        left, right = max(int(center[1] - reach), 0), min(int(center[1] + reach) + 1, size)
        if top >= bottom or left >= right:
            continue
        rows, cols = np.mgrid[top:bottom, left:right].astype(np.float32)
        distance = _shape_distance(kind, rows, cols, center, radii, angle, rng)
        # One soft pixel at the edge; slightly see-through, so the background texture shows.
        coverage = np.clip(distance + 0.5, 0.0, 1.0)[..., None] * rng.uniform(0.8, 1.0)
        shading = 1.0 + 0.08 * rng.standard_normal()
        region = image[top:bottom, left:right]
        image[top:bottom, left:right] = region * (1 - coverage) + colour * shading * coverage
        mask[top:bottom, left:right][distance >= 0] = class_id
    direction = rng.uniform(0, 2 * np.pi)  # uneven illumination: a gradient, some direction
    rows, cols = np.mgrid[0:size, 0:size] / (size - 1) - 0.5
    gradient = 1.0 + rng.uniform(0.2, 0.5) * (rows * np.sin(direction) + cols * np.cos(direction))
    image = image * gradient[..., None] * (1.0 + 0.06 * _smooth_noise(rng, size, 48))[..., None]
    image = image + rng.uniform(0.02, 0.05) * rng.standard_normal(image.shape)
    return (np.clip(image, 0.0, 1.0) * 255 + 0.5).astype(np.uint8), mask


def _synthetic_stem(index):
    return f"sample_{index:04d}"


def _write_synthetic(directory, task, indices, image_size=128, seed=0, n_classes=4):
    """Write synthetic pairs ``indices``, each from its own generator: image i never changes."""
    image_folder, mask_folder = Path(directory) / "images", Path(directory) / "masks"
    image_folder.mkdir(parents=True, exist_ok=True)
    mask_folder.mkdir(parents=True, exist_ok=True)
    progress = keras.utils.Progbar(len(indices), unit_name="image") if len(indices) > 200 else None
    for done, index in enumerate(indices, start=1):
        image, mask = synthetic_pair(
            task, image_size, np.random.default_rng([seed, index]), n_classes
        )
        stem = _synthetic_stem(index)
        Image.fromarray(image).save(image_folder / f"{stem}.png")
        Image.fromarray(mask * 255 if task == "binary" else mask).save(mask_folder / f"{stem}.png")
        if progress is not None and (done % 50 == 0 or done == len(indices)):
            progress.update(done)


def make_synthetic_dataset(
    directory, task="binary", n_images=400, image_size=128, seed=0, overwrite=False, n_classes=4
):
    """Write a seeded synthetic set of PNGs (binary masks 0/255); return it (lesson 04.1).
    Multiclass: ellipses 1, rectangles 2, small rare triangles 3; ``n_classes`` 2-4 keeps some."""
    if task not in SYNTHETIC_CLASS_NAMES:
        raise ValueError(f"task must be 'binary' or 'multiclass'; got {task!r}.")
    check_whole_number("n_images", n_images)
    if task == "multiclass" and n_classes not in (2, 3, 4):
        raise ValueError(
            f"the synthetic multiclass set has 2 to 4 classes (background, ellipse, rectangle, "
            f"triangle); got n_classes={n_classes!r}."
        )
    directory = Path(directory)
    files = [path.relative_to(directory).parts for path in directory.rglob("*") if path.is_file()]
    if any(not any(part.startswith(".") for part in parts) for parts in files):  # visible files
        if not overwrite:
            raise FileExistsError(
                f"{directory.as_posix()} is not empty: pass overwrite=True to replace its "
                f"images/ and masks/ PNG files, or choose another directory."
            )
        for path in (*directory.glob("images/*.png"), *directory.glob("masks/*.png")):
            path.unlink()
    _write_synthetic(directory, task, range(n_images), image_size, seed, n_classes)
    return directory


def _is_synthetic(directory, index, task, image_size=128, seed=0, n_classes=4):
    """Whether ``images/`` holds synthetic image ``index`` exactly as the generator makes it."""
    image, _ = synthetic_pair(task, image_size, np.random.default_rng([seed, index]), n_classes)
    picture = _open_picture(Path(directory) / "images" / f"{_synthetic_stem(index)}.png")
    return picture is not None and np.array_equal(np.asarray(picture), image)


def ensure_dataset(directory, task="binary", n_images=400, **generator_kwargs):
    """Generate the synthetic set in ``directory`` unless it holds images; return it (lesson 04.1).
    A folder of its first k < ``n_images`` images (the last checked pixel for pixel) gets more."""
    directory, images = Path(directory), Path(directory) / "images"
    if not images.is_dir() or not any(path.is_file() for path in visible(images)):
        make_synthetic_dataset(directory, task=task, n_images=n_images, **generator_kwargs)
        print(f"Generated {n_images} synthetic {task} image/mask pairs in {directory.as_posix()}")
        return directory
    stems = set(_paired_files(directory)[0])  # the loaders' checks and pairing rule
    found, k = f"Found {len(stems)} image/mask pairs in {directory.as_posix()}", len(stems)
    if (
        stems == {_synthetic_stem(index) for index in range(k)}
        and k < n_images
        and _is_synthetic(directory, k - 1, task, **generator_kwargs)
    ):
        _write_synthetic(directory, task, range(k, n_images), **generator_kwargs)
        found += f"; added synthetic pairs {k} to {n_images - 1}"
    print(found)
    return directory


# --- Array plumbing: padding, tile positions, ratios with NaN, object overlaps --------------------


def pad_to_at_least(array, size):
    """Reflect-pad the first two axes at the bottom and right up to ``size``; larger stays as is."""
    array = np.asarray(array)
    extra = [(0, max(size - length, 0)) for length in array.shape[:2]]
    if not any(after for _, after in extra):
        return array
    return np.pad(array, extra + [(0, 0)] * (array.ndim - 2), mode="reflect")


def tile_starts(length, tile_size, stride):
    """Start offsets of ``tile_size`` tiles that cover ``length``, the last flush with the end."""
    if length <= tile_size:
        return [0]
    starts = list(range(0, length - tile_size, stride))
    return starts + [length - tile_size]


def ratio_or_nan(numerator, denominator):
    """numerator / denominator, NaN where the denominator is 0 (class absent from both masks)."""
    result = np.full(np.shape(denominator), np.nan)
    np.divide(numerator, denominator, out=result, where=denominator > 0)
    return result


def nanmean_or_nan(values):
    """Mean of the non-NaN values; NaN (without a warning) when there are none."""
    values = np.asarray(values, dtype=np.float64)
    defined = values[~np.isnan(values)]
    return float(defined.mean()) if defined.size else float("nan")


def sequential_labels(labels):
    """Label ids renumbered 1..n in increasing order, 0 kept: ``relabel_sequential`` with one
    ``bincount`` (it sorts all pixels; this runs thousands of times in lesson 08's search)."""
    labels = np.asarray(labels, np.int64).squeeze()
    present = np.bincount(labels.ravel()) > 0
    present[0] = False
    return (np.cumsum(present) * present)[labels]


def object_overlaps(true_labels, predicted_labels):
    """``(intersection, true_areas, predicted_areas, true, predicted)``: pixels shared by each true
    (rows) and predicted object (columns) of the label images relabelled 1, 2, ... Counted densely
    with ``bincount``: ``skimage.metrics.contingency_table`` gives the same table, sparse and
    about 5x slower."""
    true, predicted = sequential_labels(true_labels), sequential_labels(predicted_labels)
    if true.shape != predicted.shape:
        raise ValueError(f"label images differ in shape: {true.shape} and {predicted.shape}.")
    rows, columns = true.max(initial=0) + 1, predicted.max(initial=0) + 1
    pairs = np.bincount((true * columns + predicted).ravel(), minlength=rows * columns)
    pairs = pairs.reshape(rows, columns)  # [true id, predicted id]
    return pairs[1:, 1:], pairs[1:].sum(axis=1), pairs[:, 1:].sum(axis=0), true, predicted


# --- Fix for TensorFlow 2.21: epochs that end in a pause -----------------------------------------


def _without_autotune(get_tf_dataset):
    """``get_tf_dataset`` with tf.data's autotuner off: the same batches, in the same order."""

    def built_without_autotune(adapter):
        import tensorflow as tf

        options = tf.data.Options()
        options.autotune.enabled = False
        return get_tf_dataset(adapter).with_options(options)

    built_without_autotune.__wrapped__ = get_tf_dataset  # marks it as done; the test calls it
    return built_without_autotune


def tf_data_without_autotune():
    """On TensorFlow, Keras' pipelines for fit, evaluate and predict (arrays, PyDataset,
    generators) run without tf.data's autotuner, which held up epoch ends (README)."""
    # TensorFlow 2.21 fix: deleting an epoch's iterator waits for the autotuner's thread, which at
    # times first sleeps out its wait (35-67 s in our runs). Delete once epochs end at once.
    if keras.backend.backend() != "tensorflow":
        return
    from keras.src.trainers.data_adapters import array_data_adapter as arrays
    from keras.src.trainers.data_adapters import generator_data_adapter as generators
    from keras.src.trainers.data_adapters import py_dataset_adapter as datasets

    for adapter in (
        arrays.ArrayDataAdapter,
        generators.GeneratorDataAdapter,
        datasets.PyDatasetAdapter,
    ):
        if not hasattr(adapter.get_tf_dataset, "__wrapped__"):
            adapter.get_tf_dataset = _without_autotune(adapter.get_tf_dataset)


tf_data_without_autotune()


# --- Fixes for Keras 3.15.1 on the PyTorch backend ------------------------------------------------


def sparse_categorical_crossentropy(y_true, y_pred):
    """Keras' sparse categorical cross-entropy per pixel, ids (N, H, W[, 1]) -> (N, H, W), on one
    flat (N*H*W, K) list: the same numbers, and PyTorch's backward pass fails on 4-D inputs."""
    # Keras 3.15.1 on PyTorch fix (pytorch/pytorch#175084): delete once 4-D inputs train there.
    y_pred = keras.ops.convert_to_tensor(y_pred)
    pixel_shape = keras.ops.shape(y_pred)[:-1]
    flat_pred = keras.ops.reshape(y_pred, (-1, y_pred.shape[-1]))
    flat_loss = keras.losses.sparse_categorical_crossentropy(
        keras.ops.reshape(y_true, (-1,)), flat_pred
    )
    return keras.ops.reshape(flat_loss, pixel_shape)


@keras.saving.register_keras_serializable(package="unet_helpers")
class SparseCategoricalCrossentropy(keras.losses.SparseCategoricalCrossentropy):
    """Keras' loss through ``sparse_categorical_crossentropy``, weights per pixel (lesson 03.6)."""

    # Keras 3.15.1 on PyTorch fix (pytorch/pytorch#175084): delete with the function above.
    def call(self, y_true, y_pred):
        return sparse_categorical_crossentropy(y_true, y_pred)


def _count_confusion(metric, y_true, y_pred, sample_weight=None):
    """Add a batch to ``metric.total_cm`` (rows true, columns predicted) as a product of one-hot
    matrices, fast on every backend: Keras' ops.scatter is a Python loop over pixels on PyTorch."""
    # Keras 3.15.1 on PyTorch fix (no upstream issue named): delete with both metrics once fast.
    if metric.ignore_class is not None:
        raise ValueError("ignore_class is not supported here: use the keras.metrics class.")
    n_labels = metric.num_classes
    y_true = keras.ops.reshape(keras.ops.convert_to_tensor(y_true, metric.dtype), (-1,))
    y_pred = keras.ops.reshape(keras.ops.convert_to_tensor(y_pred, metric.dtype), (-1,))
    weights = 1 if sample_weight is None else keras.ops.convert_to_tensor(sample_weight)
    weights = keras.ops.cast(weights, metric.dtype)  # int in Keras 3.15.1: weights are truncated
    if len(weights.shape) > 1:
        weights = keras.ops.reshape(weights, (-1,))
    weights = keras.ops.broadcast_to(weights, keras.ops.shape(y_true))
    inside = keras.ops.logical_and(  # labels outside 0..n_labels-1 are not counted, as in Keras
        keras.ops.logical_and(y_true >= 0, y_true < n_labels),
        keras.ops.logical_and(y_pred >= 0, y_pred < n_labels),
    )
    true_ids = keras.ops.cast(keras.ops.where(inside, y_true, 0), "int32")
    predicted_ids = keras.ops.cast(keras.ops.where(inside, y_pred, 0), "int32")
    weights = keras.ops.cast(keras.ops.where(inside, weights, 0), "float32")
    true_hot = keras.ops.one_hot(true_ids, n_labels, dtype="float32") * weights[:, None]
    predicted_hot = keras.ops.one_hot(predicted_ids, n_labels, dtype="float32")
    batch_matrix = keras.ops.matmul(keras.ops.transpose(true_hot), predicted_hot)
    return metric.total_cm.assign(
        metric.total_cm + keras.ops.cast(batch_matrix, metric.total_cm.dtype)
    )


@keras.saving.register_keras_serializable(package="unet_helpers")
class BinaryIoU(keras.metrics.BinaryIoU):
    """``keras.metrics.BinaryIoU`` via ``_count_confusion``, fast on PyTorch (lesson 03.8)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        y_pred = keras.ops.cast(keras.ops.convert_to_tensor(y_pred) >= self.threshold, self.dtype)
        return _count_confusion(self, y_true, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="unet_helpers")
class MeanIoU(keras.metrics.MeanIoU):
    """``keras.metrics.MeanIoU`` counted by ``_count_confusion``, fast on PyTorch (lesson 03.8)."""

    def update_state(self, y_true, y_pred, sample_weight=None):
        if not self.sparse_y_true:
            y_true = keras.ops.argmax(y_true, axis=self.axis)
        if not self.sparse_y_pred:
            y_pred = keras.ops.argmax(y_pred, axis=self.axis)
        return _count_confusion(self, y_true, y_pred, sample_weight)


@keras.saving.register_keras_serializable(package="unet_helpers")
class RandomRotation(layers.RandomRotation):
    """``keras.layers.RandomRotation`` turning the mask as the image (lesson 07.4): on PyTorch,
    ``affine_transform`` swaps entries of the shared matrix in place, so each gets a copy."""

    # Keras 3.15.1 on PyTorch fix (no upstream issue named): delete once masks turn right there.
    def transform_images(self, images, transformation, training=True):
        return super().transform_images(images, _own_matrix(transformation), training)

    def transform_segmentation_masks(self, segmentation_masks, transformation, training=True):
        return super().transform_segmentation_masks(
            segmentation_masks, _own_matrix(transformation), training
        )


def _own_matrix(transformation):
    """A transformation whose rotation matrix nothing else shares."""
    if transformation is None:
        return None
    return dict(transformation, rotation_matrix=keras.ops.copy(transformation["rotation_matrix"]))


def prebuilt(pipeline, input_shape=None):
    """``pipeline`` with its unbuilt layers built from ``input_shape``; the draws stay the same."""
    # Keras 3.15.1 builds an unbuilt Pipeline's layers by first tracing the whole Pipeline: for a
    # batch of 400 pictures of 64 x 64 that took 13 s on PyTorch and 2.5 s on JAX, against 0.6 s and
    # 0.13 s for the call (TensorFlow: 0.23 s and 0.12 s). Delete once a first call costs no more.
    for layer in getattr(pipeline, "layers", [pipeline]):
        if not layer.built:
            layer.build(input_shape)
    return pipeline


def augmentation_outcomes(augment, count=400, size=64):
    """``(mirrored, angles)`` of ``count`` draws of ``augment`` (lesson 07.4), read from three dots:
    a negative determinant of their 2x2 map is a mirror image, its turn the angle."""
    from scipy import ndimage

    center = (size - 1) / 2
    dots = np.array([(-12.0, 4.0), (3.0, 14.0), (9.0, -10.0)])  # (row, column) from the centre
    rows, cols = np.mgrid[:size, :size]
    mask = np.zeros((size, size, 1), np.float32)
    for label, (dy, dx) in enumerate(dots, start=1):
        mask[(rows - center - dy) ** 2 + (cols - center - dx) ** 2 <= 6, 0] = label
    batch = np.repeat(mask[None], count, axis=0)
    augment = prebuilt(augment, batch.shape)
    moved = augment({"images": batch, "segmentation_masks": batch}, training=True)
    moved = np.rint(keras.ops.convert_to_numpy(moved["segmentation_masks"]))[..., 0]
    mirrored, angles = [], []
    for picture in moved:
        found = np.array(ndimage.center_of_mass(picture > 0, picture, [1, 2, 3])) - center
        linear = np.linalg.lstsq(dots, found, rcond=None)[0].T  # found = dots @ linear.T
        mirrored.append(bool(np.linalg.det(linear) < 0))
        if mirrored[-1]:
            linear = linear @ np.diag([1.0, -1.0])  # undo a mirror (columns) to read the turn
        angles.append(np.degrees(np.arctan2(linear[1, 0], linear[0, 0])))
    return np.array(mirrored), np.array(angles)


# --- Figures: U-Net diagram, class colours, training history, confusion matrix --------------------


#: Class colours: background black, then distinct colours (binary foreground is white).
_PALETTE = np.array(
    [
        (0.0, 0.0, 0.0),
        (0.90, 0.30, 0.20),
        (0.25, 0.75, 0.30),
        (0.20, 0.50, 0.95),
        (0.95, 0.80, 0.15),
        (0.70, 0.30, 0.85),
        (0.15, 0.80, 0.80),
        (0.95, 0.55, 0.70),
        (0.60, 0.45, 0.25),
        (0.60, 0.60, 0.60),
    ]
)
#: Colour of the binary foreground in overlays (white would vanish on bright images).
_BINARY_OVERLAY_COLOUR = np.array((1.0, 0.85, 0.0))


def palette(n_classes):
    """(max(n_classes, 2), 3) colours: white foreground for binary, _PALETTE (cycled) otherwise."""
    if n_classes == 1:
        return np.array([(0.0, 0.0, 0.0), (1.0, 1.0, 1.0)])
    return np.array([_PALETTE[0]] + [_PALETTE[1 + i % 9] for i in range(n_classes - 1)])


def colorize_mask(mask, n_classes):
    """RGB float (H, W, 3) of a class-id mask, a fixed colour per class (lesson 04.1); ``label2rgb``
    colours the labels present in order, so a missing class would shift its colours."""
    mask = np.asarray(mask)
    if mask.ndim == 3:
        mask = mask[..., 0]
    colours = palette(n_classes)
    return colours[np.clip(mask.astype(np.int64), 0, len(colours) - 1)]


def overlay(image, mask, n_classes, alpha=0.45):
    """The image with the mask's classes painted on it, half transparent."""
    image = np.asarray(image, dtype=np.float32)
    rgb = np.repeat(image, 3, axis=-1) if image.shape[-1] == 1 else image[..., :3]
    colours = colorize_mask(mask, n_classes)
    if n_classes == 1:
        colours = np.where(colours > 0, _BINARY_OVERLAY_COLOUR, 0.0)
    painted = (mask > 0)[..., None]
    return np.clip(np.where(painted, (1 - alpha) * rgb + alpha * colours, rgb), 0.0, 1.0)


def draw_unet(height, width, base_filters, depth, head):
    """The figure of ``uh.plot_unet_diagram``; ``head`` describes the output channels."""
    import matplotlib.pyplot as plt

    _, ax = plt.subplots(figsize=(2.0 + 1.5 * depth, 1.5 + 0.9 * depth))
    box_w, box_h = 1.6, 0.55
    span = 2 * depth + 2  # horizontal slots: encoder levels, bridge, decoder levels

    def box(x, level, color):
        y = -level * 1.0
        text = f"{height >> level}x{width >> level}\n{base_filters << level} filters"
        ax.add_patch(
            plt.Rectangle((x - box_w / 2, y - box_h / 2), box_w, box_h, color=color, ec="k")
        )
        ax.text(x, y, text, ha="center", va="center", fontsize=8)
        return x, y

    def arrow(start, end, color, **style):
        props = dict(arrowstyle="-|>", color=color, **style)
        ax.annotate("", xy=end, xytext=start, arrowprops=props)

    left, right = [], []
    for level in range(depth):
        left.append(box(level * 1.0, level, "#9ecae1"))
        right.append(box(span - level * 1.0, level, "#a1d99b"))
    bridge = box(span / 2, depth, "#fdae6b")
    for level in range(depth):
        (lx, ly), (rx, ry) = left[level], right[level]
        (dx, dy), (ux, uy) = (left + [bridge])[level + 1], (right + [bridge])[level + 1]
        arrow((lx, ly - box_h / 2), (dx - 0.3, dy + box_h / 2), "#3182bd")
        arrow((ux + 0.3, uy + box_h / 2), (rx, ry - box_h / 2), "#31a354")
        arrow((lx + box_w / 2, ly), (rx - box_w / 2, ry), "0.5", linestyle="--")
    ax.text(-box_w, 0.55, f"input {height}x{width}", fontsize=8)
    output = f"output {height}x{width}x{head}"
    ax.text(span - box_w / 2, 0.55, output, fontsize=8)
    ax.plot([], [], color="#3182bd", label="max pool 2x2 (encoder)")
    ax.plot([], [], color="#31a354", label="transposed conv 2x2 (decoder)")
    ax.plot([], [], color="0.5", linestyle="--", label="skip connection (concatenate)")
    ax.legend(loc="lower left", fontsize=7, frameon=False)
    ax.set(xlim=(-box_w, span + box_w), ylim=(-depth - 1.0, 1.0), aspect="auto")
    ax.axis("off")
    ax.set_title(f"U-Net, depth {depth}, base {base_filters} filters")
    return ax


def draw_examples(images, truths, predicted_ids=None, ious=None, n_classes=1, class_names=None):
    """The figure of ``show_examples``: a row per image, with its prediction's errors and IoU."""
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    count = len(images)
    columns = ["image", "true mask"]
    if predicted_ids is not None:
        columns += ["prediction", "errors"]
    columns.append("overlay (true)")
    figure, axes = plt.subplots(
        count, len(columns), figsize=(2.2 * len(columns), 2.2 * count + 0.3), squeeze=False
    )
    for row in range(count):
        image = np.asarray(images[row], dtype=np.float32)
        truth = truths[row]
        panels = [image[..., 0] if image.shape[-1] == 1 else image, colorize_mask(truth, n_classes)]
        titles = list(columns)
        if predicted_ids is not None:
            predicted = predicted_ids[row]
            errors = np.zeros(truth.shape + (3,))
            errors[predicted != truth] = (1.0, 0.2, 0.2)  # red (binary: false positives)
            if n_classes == 1:
                errors[(predicted == 0) & (truth == 1)] = (0.2, 0.5, 1.0)  # false negative: blue
            titles[3] = "errors (FP red, FN blue)" if n_classes == 1 else "errors (red)"
            iou = ious[row]
            titles[2] = "prediction" + ("" if np.isnan(iou) else f" (IoU {iou:.2f})")
            panels += [colorize_mask(predicted, n_classes), errors]
        panels.append(overlay(image, truth, n_classes))
        for column, (axis, panel) in enumerate(zip(axes[row], panels, strict=False)):
            axis.imshow(panel, cmap="gray" if panel.ndim == 2 else None, vmin=0, vmax=1)
            axis.set(xticks=[], yticks=[])
            if row == 0:
                axis.set_title(titles[column], fontsize=8)
            elif predicted_ids is not None and column == 2:
                axis.set_title(titles[2].replace("prediction", "").strip(), fontsize=8)
    if n_classes > 1:
        names = class_names or ["background"] + [f"class {i}" for i in range(1, n_classes)]
        if len(names) != n_classes:
            raise ValueError(
                f"got {len(names)} class_names for n_classes={n_classes}: one a class."
            )
        handles = [
            Patch(facecolor=colour, edgecolor="0.5", label=f"{i} {name}")
            for i, (colour, name) in enumerate(zip(palette(n_classes), names, strict=True))
        ]
        figure.legend(handles=handles, loc="lower center", ncol=min(n_classes, 6), fontsize=8)
    figure.tight_layout(rect=(0, 0.06 if n_classes > 1 else 0, 1, 1))
    return figure


def plot_history(history, metrics=None):
    """A panel per metric, training and validation per epoch, of a ``model.fit`` history
    (lesson 04.4)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    values = getattr(history, "history", history)
    if metrics is None:
        metrics = [name for name in values if not name.startswith("val_")]
    missing = [name for name in metrics if name not in values]
    if missing:
        raise ValueError(f"no {missing} in the history; it has {sorted(values)}.")
    fig, axes = plt.subplots(1, len(metrics), figsize=(4 * len(metrics), 3), squeeze=False)
    for ax, name in zip(axes[0], metrics, strict=True):
        epochs = np.arange(1, len(values[name]) + 1)
        ax.plot(epochs, values[name], "o-", label="training")
        if f"val_{name}" in values:
            ax.plot(epochs, values[f"val_{name}"], "o-", label="validation")
        ax.set(title=name, xlabel="epoch")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.legend()
    fig.tight_layout()
    return fig


def plot_confusion_matrix(matrix, class_names=None, normalize=True):
    """Confusion matrix figure (scikit-learn's display) (lesson 05.4): row percentages, or counts
    with ``normalize=False``; a class with no true pixels shows n/a."""
    import matplotlib.pyplot as plt
    from sklearn.metrics import ConfusionMatrixDisplay

    matrix = np.asarray(matrix)
    if matrix.ndim != 2 or matrix.shape[0] != matrix.shape[1]:
        raise ValueError(f"matrix must be square (classes, classes); got shape {matrix.shape}.")
    size = len(matrix)
    if class_names is not None and len(class_names) != size:
        raise ValueError(f"got {len(class_names)} class_names for a {size}x{size} matrix.")
    with np.errstate(invalid="ignore"):  # a class with no true pixels: 0 / 0, n/a
        shown = 100 * (matrix / matrix.sum(axis=1, keepdims=True)) if normalize else matrix
    fig, ax = plt.subplots(figsize=(1.5 + 1.0 * size, 1.2 + 0.9 * size))
    display = ConfusionMatrixDisplay(shown, display_labels=class_names)
    top = 100 if normalize else max(float(matrix.max()), 1.0)
    display.plot(
        ax=ax, cmap="Blues", colorbar=False, values_format=".1f" if normalize else "d",
        im_kw={"vmin": 0, "vmax": top},
    )  # fmt: skip
    for text in display.text_.ravel():
        label = text.get_text()
        text.set_text("n/a" if label == "nan" else label + ("%" if normalize else ""))
        text.set_fontsize(8)
    title = "% of each true class" if normalize else "pixel counts"
    ax.set(xlabel="predicted class", ylabel="true class", title=title)
    fig.tight_layout()
    return fig


# --- Files and measurements: label images, object tables, settings in a .keras file, memory -------


def save_labels(path, labels):
    """Instance labels as a 16-bit PNG or TIFF: Fiji, napari, QuPath (lesson 08.11)."""
    labels = np.asarray(labels)
    if labels.min(initial=0) < 0 or labels.max(initial=0) > 65535:
        raise ValueError("16-bit label images hold ids 0..65535.")
    Image.fromarray(labels.astype(np.uint16)).save(path)


#: Column names of ``save_object_table`` (``regionprops_table`` names -> CSV names).
_OBJECT_COLUMNS = {
    "label": "id",
    "area": "area",
    "centroid-0": "centroid_row",
    "centroid-1": "centroid_col",
    "intensity_mean": "mean_intensity",
}


def save_object_table(path, labels, image):
    """CSV of id, area, centroid, mean intensity per object; returns its columns (lesson 08.11)."""
    import csv

    from skimage.measure import regionprops_table

    image = np.asarray(image)
    if image.ndim == 3 and image.shape[-1] == 1:
        image = image[..., 0]
    properties = ("label", "area", "centroid", "intensity_mean")
    table = regionprops_table(np.asarray(labels), image, properties=properties)
    columns = [
        _OBJECT_COLUMNS.get(name, name.replace("intensity_mean-", "mean_intensity_"))
        for name in table
    ]
    with open(path, "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(columns)
        writer.writerows(zip(*(np.round(values, 3) for values in table.values()), strict=True))
    return columns


@keras.saving.register_keras_serializable(package="unet_helpers")
class ObjectSettings(keras.layers.Layer):
    """Pass-through layer whose config stores ``predict_instances``' settings (lesson 08.10)."""

    def __init__(self, settings=None, **kwargs):
        super().__init__(**kwargs)
        self.settings = dict(settings or {})

    def call(self, inputs):
        return inputs

    def get_config(self):
        return {**super().get_config(), "settings": self.settings}


def with_object_settings(model, **settings):
    """The model ending in an ``ObjectSettings`` layer that holds ``settings`` (lesson 08.10)."""
    if isinstance(model.layers[-1], ObjectSettings):
        model = keras.Model(model.inputs, model.layers[-1].input, name=model.name)
    plain = {k: v.item() if isinstance(v, np.generic) else v for k, v in settings.items()}
    outputs = ObjectSettings(plain, name="object_settings")(model.outputs[0])
    return keras.Model(model.inputs, outputs, name=model.name)


def object_settings(model):
    """``predict_instances``' settings: the head's defaults, then the model's own (lesson 08.10)."""
    defaults = {
        "threshold": 0.5,  # nucleus probability (binary: the sigmoid; 3-class: 1 - background)
        "seed_threshold": 0.5 if model.output_shape[-1] >= 3 else None,  # interior seeds
        "min_size": 10,  # pixels; smaller objects are dropped
        "min_distance": None,  # None, or cut objects (seeds) at necks: a distance watershed
        "overlap": 0.5,  # of the prediction tiles (predict_tiled)
    }
    stored = [layer.settings for layer in model.layers if isinstance(layer, ObjectSettings)]
    return {**defaults, **(stored[-1] if stored else {})}


def peak_memory_bytes():
    """Peak resident memory of this process in bytes; None where it cannot be read (lesson 04.9)."""
    import sys

    if sys.platform == "win32":
        return None
    import resource

    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # kilobytes on Linux, bytes on macOS
    return peak if sys.platform == "darwin" else peak * 1024
