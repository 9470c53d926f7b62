"""Procedural cartoon faces: a two-domain dataset with known ground-truth factors.

Domain C ("render") is a flat-lit face (albedo only) on a black background with no noise.
Domain V ("photo") is the same face shaded by a coloured directional light (the head is treated
as an ellipsoid, so the shading varies across it), with a cast shadow beside the head, a
procedural or photographic background and Gaussian sensor noise. C and V share the identity,
the expression and the accessory; the lighting, background and noise exist in V only.

Factors (``sample_factors`` returns each as an array of length n; colours are [n, 3] in [0, 1]):

* identity (``IDENTITY_KEYS``): ``identity`` int in [0, num_identities) (0 = the default actor),
  ``face_aspect`` ellipse width/height in [0.72, 0.92], ``skin_color``, ``hair_color``,
  ``hair_style`` int in {0: bald, 1: short cap, 2: long sides}, ``eye_color``. The attributes
  are a function of the identity index only, so every split shares the same cast.
* expression (``EXPRESSION_KEYS``): ``mouth_open`` [0, 1], ``smile`` [-1, 1] (-1 frown, +1 smile),
  ``eye_open`` [0, 1] (0 closed), ``brow`` [-1, 1] (brow height), ``tilt`` [-1, 1] (head roll,
  x15 degrees, positive is counter-clockwise on screen), ``offset_x`` / ``offset_y`` [-1, 1]
  (head translation, x0.12 / x0.08 in image coordinates, which span [-1, 1]).
* accessory: ``glasses`` int in {0, 1} (1 with probability ``glasses_prob``).
* V-only residual (``RESIDUAL_KEYS``): ``light_azimuth`` [-pi, pi) (direction towards the light in
  the image plane, 0 = from the right, pi/2 = from below), ``light_color`` [n, 3] in [0.5, 1] with
  max channel 1, ``bg_kind`` int in {0 stripes, 1 checker, 2 gradient, 3 value noise, 4 texture
  photo}, ``bg_color_a`` / ``bg_color_b`` the two tint colours, ``bg_freq`` [1.5, 6] (cycles per
  image; texture zoom), ``bg_angle`` [0, pi), ``bg_offset`` [n, 2] in [0, 1) (phase / crop
  origin), ``bg_seed`` uint32 (value-noise lattice; ``bg_seed % 3`` picks brick / grass /
  gravel), ``noise_std`` [0, 0.05] (Gaussian sensor noise, in [0, 1] intensity units),
  ``noise_seed`` uint32. Texture photos (``skimage.data``) are used only if scikit-image is
  importable (``sample_factors(textures=...)``).

Every factor of example ``i`` is a counter-based hash of (seed, start + i, factor), so it does
not depend on the batch it is drawn in; ``render`` is per-example too (chunked internally, its
sensor noise a hash of (noise_seed, pixel)), so ``render(f, 'c')`` of a photo's factors is its
exact C counterpart and swapping ``RESIDUAL_KEYS`` between examples gives exact mix-and-match
photos. Images are float32 NHWC in [-1, 1] at any resolution that is a multiple of 8 and >= 16.
``expression_vector`` / ``lighting_vector`` give regression targets.
"""
from __future__ import annotations

import functools
import statistics

import numpy as np

from disen_jax.data import Dataset, register
from disen_jax.errors import DataError

EXPRESSION_KEYS = ("mouth_open", "smile", "eye_open", "brow", "tilt", "offset_x", "offset_y")
IDENTITY_KEYS = ("identity", "face_aspect", "skin_color", "hair_color", "hair_style", "eye_color")
ACCESSORY_KEYS = ("glasses",)
RESIDUAL_KEYS = ("light_azimuth", "light_color", "bg_kind", "bg_color_a", "bg_color_b", "bg_freq",
                 "bg_angle", "bg_offset", "bg_seed", "noise_std", "noise_seed")
FACTOR_KEYS = IDENTITY_KEYS + EXPRESSION_KEYS + ACCESSORY_KEYS + RESIDUAL_KEYS
HAIR_STYLES = ("bald", "short", "long")
BACKGROUNDS = ("stripes", "checker", "gradient", "noise", "texture")
DOMAINS = ("c", "v")
TILT_DEGREES, OFFSET_X, OFFSET_Y = 15.0, 0.12, 0.08
HEAD_SCALE = 1.12  # head frame units -> image units (the face is 2 * 0.6 * 1.12 high)

_DEFAULT_ACTOR = dict(face_aspect=0.8, skin_color=(0.93, 0.74, 0.60), hair_color=(0.36, 0.20, 0.09),
                      hair_style=1, eye_color=(0.20, 0.45, 0.80))
_SKIN = np.array([[0.98, 0.84, 0.73], [0.90, 0.70, 0.55], [0.70, 0.48, 0.33], [0.42, 0.27, 0.18]])
_HAIR = np.array([[0.08, 0.06, 0.05], [0.36, 0.20, 0.09], [0.75, 0.55, 0.25], [0.65, 0.25, 0.08],
                  [0.60, 0.60, 0.62], [0.90, 0.82, 0.55]])
_EYES = np.array([[0.35, 0.20, 0.08], [0.20, 0.45, 0.80], [0.25, 0.55, 0.30], [0.45, 0.50, 0.55]])
_IDENTITY_SALT = 0x1D3A7


# ---------------------------------------------------------------------------------------------
# Counter-based randomness: every value is a hash of integer keys, so it is batch independent.

def _mix(x: np.ndarray) -> np.ndarray:
  """splitmix64 finaliser on uint64 arrays (wrapping arithmetic)."""
  with np.errstate(over="ignore"):
    x = (x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    x = (x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
  return x ^ (x >> np.uint64(31))


def _hash(*keys) -> np.ndarray:
  h = np.zeros((), np.uint64)
  for k in keys:
    h = _mix(h ^ (np.asarray(k).astype(np.uint64) + np.uint64(0x9E3779B97F4A7C15)))
  return h


def _uniform(*keys) -> np.ndarray:
  """float64 uniform in [0, 1) from integer keys (broadcast)."""
  return (_hash(*keys) >> np.uint64(11)).astype(np.float64) * 2.0 ** -53


# ---------------------------------------------------------------------------------------------
# Factors.

def _sample_identities(ids: np.ndarray) -> dict[str, np.ndarray]:
  """Identity attributes as a function of the identity index only (0 = the default actor)."""
  u = lambda slot, *shape: _uniform(_IDENTITY_SALT, ids.reshape(-1, *[1] * len(shape)), slot,
                                    *[np.arange(s) for s in shape])

  def palette(table, slot, jitter):
    pick = table[(u(slot) * len(table)).astype(int)]
    return np.clip(pick + jitter * (u(slot + 1, 3) - 0.5), 0, 1)

  out = dict(face_aspect=0.72 + 0.2 * u(0), skin_color=palette(_SKIN, 1, 0.08),
             hair_color=palette(_HAIR, 3, 0.12), hair_style=(u(5) * 3).astype(np.int32),
             eye_color=palette(_EYES, 6, 0.1))
  default = ids == 0
  for k, val in _DEFAULT_ACTOR.items():
    out[k][default] = val
  return {k: v.astype(np.int32 if k == "hair_style" else np.float32) for k, v in out.items()}


def textures_available() -> bool:
  try:
    import skimage.data  # noqa: F401  pylint: disable=g-import-not-at-top,unused-import
    return True
  except ImportError:
    return False


def sample_factors(n: int, *, seed: int, start: int = 0, num_identities: int = 1,
                   glasses_prob: float = 0.0, textures: bool | None = None) -> dict[str, np.ndarray]:
  """Factors of examples ``start .. start + n - 1`` of the stream ``seed`` (see module doc).

  ``textures=None`` allows texture-photo backgrounds when scikit-image is importable.
  """
  for name, val, lo in (("n", n, 1), ("seed", seed, 0), ("start", start, 0),
                        ("num_identities", num_identities, 1)):
    if int(val) != val or val < lo:
      raise DataError(f"sample_factors: {name}={val!r} must be an integer >= {lo}")
  if not 0.0 <= glasses_prob <= 1.0:
    raise DataError(f"sample_factors: glasses_prob={glasses_prob!r} must be in [0, 1]")
  textures = textures_available() if textures is None else bool(textures)
  if textures and not textures_available():
    raise DataError("sample_factors: textures=True needs scikit-image, which is not importable")
  idx = np.arange(start, start + n, dtype=np.int64)
  u = lambda slot, *shape: _uniform(seed, idx.reshape(-1, *[1] * len(shape)), slot,
                                    *[np.arange(s) for s in shape])
  f32 = lambda x: np.asarray(x, np.float32)
  ids = np.minimum((u(0) * num_identities).astype(np.int64), num_identities - 1)
  f = dict(identity=ids.astype(np.int32), **_sample_identities(ids))
  f.update(mouth_open=f32(u(1)), smile=f32(2 * u(2) - 1), eye_open=f32(u(3)), brow=f32(2 * u(4) - 1),
           tilt=f32(2 * u(5) - 1), offset_x=f32(2 * u(6) - 1), offset_y=f32(2 * u(7) - 1))
  f["glasses"] = (u(8) < glasses_prob).astype(np.int32)
  light = 0.5 + 0.5 * u(10, 3)
  f.update(light_azimuth=f32(np.pi * (2 * u(9) - 1)), light_color=f32(light / light.max(1, keepdims=True)),
           bg_kind=(u(11) * (5 if textures else 4)).astype(np.int32),
           bg_color_a=f32(u(12, 3)), bg_color_b=f32(u(13, 3)), bg_freq=f32(1.5 + 4.5 * u(14)),
           bg_angle=f32(np.pi * u(15)), bg_offset=f32(u(16, 2)),
           bg_seed=(_hash(seed, idx, 17) >> np.uint64(32)).astype(np.uint32),
           noise_std=f32(0.05 * u(18)), noise_seed=(_hash(seed, idx, 19) >> np.uint64(32)).astype(np.uint32))
  return f


def expression_vector(factors) -> np.ndarray:
  """[n, 7] float32: ``EXPRESSION_KEYS`` in order, each in its documented range."""
  return np.stack([np.asarray(factors[k], np.float32) for k in EXPRESSION_KEYS], axis=1)


def lighting_vector(factors) -> np.ndarray:
  """[n, 5] float32: (cos, sin) of ``light_azimuth`` and the RGB ``light_color``."""
  az = np.asarray(factors["light_azimuth"], np.float64)
  return np.concatenate([np.stack([np.cos(az), np.sin(az)], 1),
                         np.asarray(factors["light_color"])], axis=1).astype(np.float32)


# ---------------------------------------------------------------------------------------------
# Rendering. Coordinates: the image spans [-1, 1] on both axes, y points down.

@functools.lru_cache(maxsize=1)
def _texture_bank() -> np.ndarray:
  import skimage.data  # pylint: disable=g-import-not-at-top
  bank = []
  for name in ("brick", "grass", "gravel"):
    t = getattr(skimage.data, name)().astype(np.float32)
    lo, hi = np.percentile(t, [2, 98])
    bank.append(np.clip((t - lo) / (hi - lo), 0, 1))
  return np.stack(bank)  # [3, 512, 512]


def _ellipse_sdf(du, dv, a, b):
  """Approximate signed distance to an axis-aligned ellipse (Quilez's gradient correction)."""
  q1, q2 = du / a, dv / b
  k0 = np.sqrt(q1 * q1 + q2 * q2)
  k1 = np.sqrt((q1 / a) ** 2 + (q2 / b) ** 2) + 1e-6
  return k0 * (k0 - 1) / k1


def _block_rows(res: int) -> int:
  """Rows per matmul block of <= 4096 pixels. One large thin GEMM makes OpenBLAS spawn threads,
  which is far slower (and contends with anything else running) than small single-threaded ones."""
  return max(d for d in range(1, res + 1) if res % d == 0 and d * res <= 4096)


def _background(f, sl, lin, res) -> np.ndarray:
  """[n, H, W] pattern in [0, 1] for the examples ``sl`` of factors ``f``."""
  xx, yy = lin[None, None, :], lin[None, :, None]
  kind = np.asarray(f["bg_kind"])[sl]
  n = len(kind)
  out = np.empty((n, res, res), np.float32)
  col = lambda k, sel: np.asarray(f[k], np.float32)[sl][sel][:, None, None]
  for k in np.unique(kind):
    sel = kind == k
    freq, ang = col("bg_freq", sel), col("bg_angle", sel)
    off = np.asarray(f["bg_offset"], np.float32)[sl][sel]
    ox, oy = off[:, 0, None, None], off[:, 1, None, None]
    p = (xx * np.cos(ang) + yy * np.sin(ang)) * 0.5  # in [-0.71, 0.71]
    if k == 0:  # soft-edged stripes
      t = p * freq + ox
      t = np.abs(2 * (t - np.floor(t)) - 1)
      val = np.clip((t - 0.5) * 4 + 0.5, 0, 1)
    elif k == 1:  # checker
      q = (-xx * np.sin(ang) + yy * np.cos(ang)) * 0.5
      val = np.floor(p * freq + ox) + np.floor(q * freq + oy)
      val = val - 2 * np.floor(val * 0.5)
    elif k == 2:  # linear gradient
      val = np.clip(p + 0.5 + (ox - 0.5) * 0.6, 0, 1)
    elif k == 3:  # value noise: hashed values on a 9 x 9 lattice, smoothstep-interpolated
      seeds = np.asarray(f["bg_seed"])[sl][sel]
      grid = _uniform(seeds[:, None, None], np.arange(9)[:, None], np.arange(9)).astype(np.float32)
      knots = np.arange(9, dtype=np.float32)
      hat = lambda t: (lambda d: d * d * (3 - 2 * d))(np.maximum(1 - np.abs(t - knots), 0))
      coord = (lin[None, :, None] * 0.5 + 0.5) * freq[:, :, :1]  # [n, res, 1]; separable weights
      wy, wx = hat(coord + 2 * oy[:, :, :1]), hat(coord + 2 * ox[:, :, :1])  # [n, res, 9]
      rows = _block_rows(res)
      val = (wy @ grid).reshape(-1, res // rows, rows, 9) @ wx.transpose(0, 2, 1)[:, None]
      val = val.reshape(-1, res, res)
    else:  # a crop of a grayscale texture photo
      bank = _texture_bank()
      size = 768.0 / freq
      tid = np.asarray(f["bg_seed"])[sl][sel].astype(np.int64)[:, None, None] % len(bank)
      sx = ((ox * (512 - size)) + (xx * 0.5 + 0.5) * size).astype(np.int64).clip(0, 511)
      sy = ((oy * (512 - size)) + (yy * 0.5 + 0.5) * size).astype(np.int64).clip(0, 511)
      val = bank[tid, sy, sx]
    out[sel] = val
  return out


@functools.lru_cache(maxsize=1)
def _normal_table() -> np.ndarray:
  """Standard-normal quantiles at 2^12 bin centres: a hash indexes it to draw N(0, 1)."""
  inv = statistics.NormalDist().inv_cdf
  return np.array([inv((i + 0.5) / 4096) for i in range(4096)], np.float32)


def _gaussian_noise(seeds: np.ndarray, res: int) -> np.ndarray:
  """[n, 3, res, res] N(0, 1) noise; example i is a hash of (seeds[i], pixel) only."""
  h = np.arange(3 * res * res, dtype=np.uint32).reshape(1, 3, res, res) * np.uint32(0x9E3779B1)
  h = h ^ np.asarray(seeds, np.uint32)[:, None, None, None]
  with np.errstate(over="ignore"):  # lowbias32 finaliser
    h ^= h >> np.uint32(16)
    h *= np.uint32(0x7FEB352D)
    h ^= h >> np.uint32(15)
    h *= np.uint32(0x846CA68B)
    h ^= h >> np.uint32(16)
  return np.take(_normal_table(), (h >> np.uint32(20)).astype(np.intp))


def _check(factors, domain, resolution) -> int:
  if domain not in DOMAINS:
    raise DataError(f"render: unknown domain {domain!r}; expected one of {DOMAINS}")
  if int(resolution) != resolution or resolution < 16 or resolution % 8:
    raise DataError(f"render: resolution={resolution!r} must be a multiple of 8 and >= 16")
  need = IDENTITY_KEYS[1:] + EXPRESSION_KEYS + ACCESSORY_KEYS + (RESIDUAL_KEYS if domain == "v" else ())
  missing = [k for k in need if k not in factors]
  if missing:
    raise KeyError(f"render(domain={domain!r}): factors lack {missing}")
  sizes = {k: len(factors[k]) for k in need}
  if len(set(sizes.values())) != 1:
    raise DataError(f"render: factor arrays have different lengths: {sizes}")
  return next(iter(sizes.values()))


def render(factors, domain: str, resolution: int = 64, *, chunk_pixels: int = 1 << 16) -> np.ndarray:
  """Renders factors into float32 [n, res, res, 3] images in [-1, 1] (domain 'c' or 'v')."""
  n = _check(factors, domain, resolution)
  res = int(resolution)
  out = np.empty((n, res, res, 3), np.float32)
  step = max(1, chunk_pixels // (res * res))
  for s in range(0, n, step):
    chunk = _render_chunk(factors, slice(s, min(n, s + step)), domain, res)  # [n, 3, H, W]
    out[s:s + step] = chunk.transpose(0, 2, 3, 1)
  return out


def _render_chunk(f, sl, domain, res):
  """Renders the examples ``sl`` of factors ``f``: float32 [n, 3, res, res] in [-1, 1]."""
  g = lambda k: np.asarray(f[k])[sl].astype(np.float32)
  p = lambda k: g(k)[:, None, None]  # per-example scalar, broadcast over [H, W]
  c = lambda x: np.asarray(x, np.float32)[..., :, None, None]  # colour [n, 3, 1, 1]
  n = len(g("mouth_open"))
  lin = ((np.arange(res, dtype=np.float32) + 0.5) / res * 2 - 1)
  xx, yy = lin[None, None, :], lin[None, :, None]
  inv_px = np.float32(res / 2)
  S = np.float32(HEAD_SCALE)
  cov = lambda sdf: np.clip(0.5 - sdf * (inv_px * S), 0, 1)  # antialiased coverage of sdf < 0

  # Head frame (u, v): translate, scale by 1 / HEAD_SCALE, rotate by -tilt.
  th = np.float32(np.deg2rad(TILT_DEGREES)) * p("tilt")
  ct, st = np.cos(th), np.sin(th)
  cx, cy = OFFSET_X * p("offset_x"), OFFSET_Y * p("offset_y") - 0.03
  dx, dy = (xx - cx) / S, (yy - cy) / S
  u, v = ct * dx - st * dy, st * dx + ct * dy
  au = np.abs(u)  # mirrored coordinate: one pass draws both eyes / brows / ears / lenses
  b = np.float32(0.6)
  a = b * p("face_aspect")
  style = g("hair_style").astype(np.int32)[:, None, None]
  skin, hair, eye_col = g("skin_color"), g("hair_color"), g("eye_color")

  layers = []  # (coverage [n, H, W], colour), back to front

  def layer(cover, colour):
    layers.append((cover, np.broadcast_to(np.asarray(colour, np.float32), (n, 3))))

  # Shoulders and neck (not tilted), long hair behind the head, ears, face, fringe.
  layer(cov(_ellipse_sdf(dx, dy - 1.22, 0.85, 0.5)), (0.22, 0.28, 0.42))
  neck = np.maximum(np.abs(dx) - 0.2, 0.3 - dy)
  layer(cov(np.maximum(neck, _ellipse_sdf(dx, dy - 0.8, 0.32, 0.3))), skin * 0.8)
  long_hair = np.minimum(_ellipse_sdf(u, v + 0.04, a + 0.13, b + 0.09),
                         np.maximum(au - a - 0.13, np.abs(v - 0.3) - 0.3))
  layer(cov(long_hair) * (style == 2), hair)
  cap = np.maximum(_ellipse_sdf(u, v + 0.03, a + 0.05, b + 0.07), v + 0.1)
  layer(cov(cap) * (style == 1), hair)
  layer(cov(_ellipse_sdf(au - a, v - 0.02, 0.075, 0.13)) * (style != 2), skin * 0.9)
  face = _ellipse_sdf(u, v, a, b)
  layer(cov(face), skin)
  hairline = -0.42 - 0.08 * (u / a) - 0.03 * np.abs(np.sin(u * 18))
  fringe = np.maximum(face - 0.01, v - hairline)
  layer(cov(fringe) * (style != 0), hair)

  # Eyes: white, iris, pupil, lid outline; brows; nose.
  ex, ey = np.float32(0.21), np.float32(-0.06)
  eye = _ellipse_sdf(au - ex, v - ey, 0.15, 0.02 + 0.12 * p("eye_open"))
  inside = cov(eye)
  layer(inside, (0.97, 0.97, 0.97))
  r2 = (au - ex) ** 2 + (v - ey) ** 2
  layer(cov(np.sqrt(r2) - 0.08) * inside, eye_col)
  layer(cov(np.sqrt(r2) - 0.037) * inside, (0.02, 0.02, 0.02))
  layer(cov(np.abs(eye) - 0.017), (0.1, 0.05, 0.04))
  bu = (au - ex) / 0.14
  brow_v = ey - 0.22 - 0.09 * p("brow") + 0.05 * bu * bu
  layer(cov(np.maximum(np.abs(v - brow_v) - 0.036, np.abs(bu) - 1)),
        0.5 * np.minimum(hair, skin))
  layer(cov(_ellipse_sdf(u, v - 0.11, 0.055, 0.045)), skin * 0.8)

  # Mouth: a curved band whose centre line bends with the smile and whose height opens.
  w = np.float32(0.24)
  t = np.minimum((u / w) ** 2, 1)
  centre = 0.3 + 0.16 * p("smile") * (0.5 - t)
  h = (0.014 + 0.13 * p("mouth_open")) * np.sqrt(1 - t)
  dist = np.abs(v - centre)
  layer(cov(np.maximum(dist - h - 0.035, au - w - 0.02)), (0.78, 0.30, 0.30))
  mouth = np.maximum(dist - h, au - w)
  layer(cov(mouth), (0.30, 0.04, 0.06))
  layer(cov(np.maximum(mouth, v - centre + 0.4 * h)), (0.95, 0.95, 0.92))

  # Glasses: two rings, a bridge and the arms.
  bar = np.abs(v - ey + 0.03) - 0.018
  frame = np.minimum(np.abs(np.sqrt(r2) - 0.17) - 0.02,  # rims
                     np.maximum(bar, np.minimum(au - ex + 0.16, np.maximum(ex + 0.16 - au, au - a))))
  layer(cov(frame) * p("glasses"), (0.06, 0.06, 0.08))

  # Composite front to back: weight_i = coverage_i * transmittance of the layers above it; the
  # albedo image (C, over black) is then one batched [HW, L] x [L, 3] product per example.
  trans = np.ones((n, res, res), np.float32)
  weights = np.empty((n, len(layers), res, res), np.float32)
  for i in range(len(layers) - 1, -1, -1):
    np.multiply(layers[i][0], trans, out=weights[:, i])
    trans -= weights[:, i]
  colours = np.stack([col for _, col in layers], axis=2)  # [n, 3, L]
  rows = _block_rows(res)
  blocks = weights.reshape(n, len(layers), res // rows, rows * res).transpose(0, 2, 1, 3)
  img = np.matmul(colours[:, None], blocks).transpose(0, 2, 1, 3).reshape(n, 3, res, res)
  if domain == "c":
    return img * 2 - 1

  # V: Lambertian shading of the head ellipsoid under a coloured light.
  az = g("light_azimuth")
  lx, ly = 0.8 * np.cos(az), 0.8 * np.sin(az)
  lu = (ct[:, 0, 0] * lx - st[:, 0, 0] * ly)[:, None, None]  # light in the head frame
  lv = (st[:, 0, 0] * lx + ct[:, 0, 0] * ly)[:, None, None]
  nx, ny = u / (a + 0.05), v / (b + 0.05)
  r = np.maximum(np.sqrt(nx * nx + ny * ny), 1)
  nx, ny = nx / r, ny / r
  nz = np.sqrt(np.maximum(1 - nx * nx - ny * ny, 0))
  shade = 0.28 + 0.8 * np.maximum(nx * lu + ny * lv + 0.6 * nz, 0)
  light = c(g("light_color"))
  # Background in the same light, darkened by the head's soft shadow cast away from the light.
  pat = _background(f, sl, lin, res)[:, None]
  bg_a = c(g("bg_color_a")) * (0.45 + 0.55 * light)
  bg_d = c(g("bg_color_b")) * (0.45 + 0.55 * light) - bg_a
  sx, sy = xx - cx + 0.24 * np.cos(az)[:, None, None], yy - cy + 0.24 * np.sin(az)[:, None, None]
  shadow = np.clip(0.5 - _ellipse_sdf(sx, sy, S * (a + 0.1), S * (b + 0.08)) * 8, 0, 1)
  shadow = np.maximum(shadow, np.clip(0.5 - np.maximum(np.abs(sx) - 0.22, -sy - 0.35) * 8, 0, 1))
  photo = img * (light * shade[:, None])
  photo += (trans * (1 - 0.6 * shadow))[:, None] * (bg_a + bg_d * pat)
  photo += g("noise_std")[:, None, None, None] * _gaussian_noise(np.asarray(f["noise_seed"])[sl], res)
  return np.clip(photo, 0, 1) * 2 - 1


# ---------------------------------------------------------------------------------------------
# The registered source.

_STREAMS = {("train", "v"): 1, ("train", "c"): 2, ("test", "v"): 3, ("test", "c"): 4,
            ("train", "a"): 5, ("train", "b"): 6, ("test", "a"): 8, ("test", "b"): 9,
            ("grid", "content"): 10}


def _check_data(d, minimums: dict[str, int]) -> None:
  """Each ``config.data.<name>`` of ``minimums`` an integer >= its minimum, and the resolution a
  multiple of 8; else a ``DataError`` naming the field."""
  for name, lo in minimums.items():
    val = d[name]
    if not isinstance(val, (int, np.integer)) or val < lo:
      raise DataError(f"config.data.{name}={val!r} must be an integer >= {lo}")
  if d.resolution % 8:
    raise DataError(f"config.data.resolution={d.resolution} must be a multiple of 8")


def stream_seed(seed: int, split: str, domain: str) -> int:
  """The ``sample_factors`` seed of one (split, domain) stream: disjoint streams per seed (domains
  ``v``, ``c`` of ``synthfaces``; ``a``, ``b`` of ``synthfaces_glasses``)."""
  return int(_hash(seed, _STREAMS[split, domain]) >> np.uint64(2))


@register("synthfaces", resolution=64, num_v=7074, num_c=1000, num_test=500, num_identities=1,
          glasses_prob=0.0, textures=True)
def build(data_config, split: str) -> Dataset:
  """Unpaired V/C faces; ``extras`` hold every factor as 'v/<key>' and 'c/<key>'."""
  if split not in ("train", "test"):
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  d = data_config
  res, seed = d.resolution, d.seed
  sizes = ({"v": ("num_v", d.num_v), "c": ("num_c", d.num_c)} if split == "train"
           else {dom: ("num_test", d.num_test) for dom in DOMAINS})
  _check_data(d, {"seed": 0, "resolution": 16, **{k: 1 for k, _ in sizes.values()}})
  textures = bool(d.textures) and textures_available()
  domains, extras = {}, {}
  for dom, (_, n) in sizes.items():
    f = sample_factors(n, seed=stream_seed(seed, split, dom), num_identities=d.num_identities,
                       glasses_prob=d.glasses_prob, textures=textures)
    domains[dom] = render(f, dom, res)
    extras.update({f"{dom}/{k}": val for k, val in f.items()})
    extras[f"{dom}/expression"] = expression_vector(f)
    extras[f"{dom}/lighting"] = lighting_vector(f)
  return Dataset(domains=domains, extras=extras)


@register("synthfaces_glasses", resolution=64, num_a=4000, num_b=4000, num_test=500,
          num_identities=100, render="c", textures=True)
def build_glasses(data_config, split: str) -> Dataset:
  """Unpaired faces without glasses (domain ``a``) and with them (``b``), the setting of Press et
  al.'s content transfer, with every factor as ``a/<key>``, ``b/<key>`` in ``extras``: swapping
  ``glasses`` re-renders the exact ground truth of adding or removing them.

  ``config.data.render``: ``"c"`` (flat renders on black) or ``"v"`` (photos: lighting,
  backgrounds, sensor noise). Every other factor is drawn as in ``synthfaces``, from streams of
  their own (``num_identities`` actors shared by every split)."""
  if split not in ("train", "test"):
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  d = data_config
  if d.render not in DOMAINS:
    raise DataError(f"config.data.render={d.render!r}: expected one of {DOMAINS}")
  sizes = ({"a": ("num_a", d.num_a), "b": ("num_b", d.num_b)} if split == "train"
           else {dom: ("num_test", d.num_test) for dom in ("a", "b")})
  _check_data(d, {"seed": 0, "resolution": 16, "num_identities": 1, **{k: 1 for k, _ in sizes.values()}})
  textures = bool(d.textures) and textures_available()
  domains, extras = {}, {}
  for dom, (_, n) in sizes.items():
    f = sample_factors(n, seed=stream_seed(d.seed, split, dom), num_identities=d.num_identities,
                       glasses_prob=float(dom == "b"), textures=textures)
    domains[dom] = render(f, d.render, d.resolution)
    extras.update({f"{dom}/{k}": val for k, val in f.items()})
  return Dataset(domains=domains, extras=extras)


@register("synthfaces_lord", resolution=64, num_identities=60, num_contents=48, test_identities=10,
          render="c", textures=True)
def build_grid(data_config, split: str) -> Dataset:
  """Every (identity, content) pair of ``num_identities`` actors and ``num_contents`` content
  settings, rendered: a class/content dataset with exact ground truth, as Cars3D's, for LORD.

  Class = ``identity`` (its face shape and skin, hair and eye colours); content = one of
  ``num_contents`` settings of the expression and head pose (``EXPRESSION_KEYS``; with
  ``render="v"`` also the lighting, background and noise), drawn once from a stream of their own.
  Domains (paired): ``image``, ``identity`` and ``content`` (int32), ordered identity-major;
  ``content`` also as ground truth of ``image`` (``extras["image/content"]``).
  ``config.data.test_identities = k`` holds the last k actors out as the test split (unseen
  classes; 0: the test split is the train split). Identity 0 is the default actor."""
  if split not in ("train", "test"):
    raise DataError(f"unknown split {split!r}; expected 'train' or 'test'")
  d = data_config
  if d.render not in DOMAINS:
    raise DataError(f"config.data.render={d.render!r}: expected one of {DOMAINS}")
  _check_data(d, {"seed": 0, "resolution": 16, "num_identities": 1, "num_contents": 1})
  k = d.test_identities
  if not isinstance(k, (int, np.integer)) or not 0 <= k < d.num_identities:
    raise DataError(f"config.data.test_identities={k!r} must be an int in [0, {d.num_identities})")
  lo, hi = (d.num_identities - k, d.num_identities) if split == "test" and k else (0, d.num_identities - k)
  ids = np.repeat(np.arange(lo, hi, dtype=np.int64), d.num_contents)
  content = np.tile(np.arange(d.num_contents, dtype=np.int32), hi - lo)
  settings = sample_factors(d.num_contents, seed=stream_seed(d.seed, "grid", "content"),
                            textures=bool(d.textures) and textures_available())
  f = {key: val[content] for key, val in settings.items()}
  f.update(identity=ids.astype(np.int32), **_sample_identities(ids))
  images = render(f, d.render, d.resolution)
  return Dataset(domains={"image": images, "identity": f["identity"], "content": content},
                 extras={"image/content": content}, paired=True)
