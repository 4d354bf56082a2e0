"""The decision thresholds a site runs at, estimated from the site's own enrolled templates.

Why not one tau for every site: a stranger at a 1:K door is compared with *everyone*
enrolled, so the chance that somebody lies within tau grows with the gallery size N; and the
distances between different people depend on the camera, the light and the people (a
grey-scale, evenly lit set packs strangers closer than LFW does). The 1:1 tau fitted once on
LFW pairs accepted 23.5% of strangers at 1,680 people and 19-28% on unseen small sets.

The rule (measured in bench.openset_lfw, written down in docs/DESIGN-NOTES.md):

- Different-person distances among the site's own templates (each template against every
  *other* person's fused template, see :func:`person_centroids`) are fitted by a normal
  distribution, ``m`` and ``s``, on the lower half of a normal Q-Q plot (the side a
  stranger's best match comes from). On LFW a normal fit holds down to a per-pair rate of
  1e-6 (1.4 million pairs: empirical 0.2726 against 0.2758 fitted from the moments).
- A stranger's best match among N people is treated as the smallest of N such draws:
  FPIR(tau) = 1 - (1 - F(tau))^N, so tau = m + s * z(1 - (1 - FPIR)^(1/N)). For 1:1 (a claim)
  N = 1 and the target is the FAR. On LFW at N = 1,680 this predicts tau 0.2694 for FPIR
  1e-3 where the strangers' own 0.1% quantile is 0.2655; each enrolled person's best match
  among the others (leave-one-person-out) follows the strangers' best match just as closely.
- The fit is an estimate: it is repeated on the people resampled (a bootstrap over each
  person's row of distances, because pairs of one person are not independent) and the threshold taken at the lower 95% bound, so a
  small gallery gets a stricter tau, never a looser one.
- The fit aims at :data:`TARGET_SHARE` of the requested rate. The independence assumption
  is slightly lenient and more so for large galleries (on LFW, a moment fit aiming at the full
  1e-3 gave 0.087% at 400 people and 0.147% at 1,680); bench.openset_lfw measures the rule
  as shipped at 100 to 5,000 people.
- The gallery may only tighten the model's own reference threshold (its calibration pairs'
  impostor fit at the same N), never loosen it: in 20 random 10-person LFW galleries, two
  whose people happened to look unlike each other got a tau that let 0.3-0.8% of strangers
  in before this rule.
- Below :data:`MIN_PEOPLE` people the estimate is too thin to trust: the threshold is the
  stricter of the point fit (from 3 people up) and a *strict fallback* (the reference fit
  evaluated as if :data:`STRICT_GALLERY` people were enrolled), and the operating point says
  so.

Optional impostor cohort: face images of people who are not enrolled (the site's visitors,
say) add stranger-against-gallery pairs from the site's own camera to the same fit.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
from scipy.stats import norm

METHOD = "gauss-impostor/1"  # stored with every operating point; bump when the rule changes
DEFAULT_FPIR = 1e-3
DEFAULT_FAR = 1e-3
MIN_PEOPLE = 10  # 45 different-person pairs at least before the estimate is trusted alone
STRICT_GALLERY = 1000  # the strict fallback behaves as if this many people were enrolled
BOOTSTRAP = 200
CONFIDENCE = 0.95
TARGET_SHARE = 0.5  # the fit aims at half the requested rate (see the module docstring)
MAX_PEOPLE = 2000  # above this, the fit uses a fixed random subset of people (4M pairs)


@dataclass
class ReferenceImpostors:
    """A model preset's own different-person distance fit (from its calibration pairs): the
    fallback for a gallery too small to measure."""

    mean: float
    sd: float
    pairs: int
    data: str = ""


@dataclass
class OperatingPoint:
    """The thresholds a gallery decides with, and where they came from."""

    tau_identify: float  # 1:K, for ``fpir`` at ``people``
    tau_verify: float  # 1:1, for ``far``
    fpir: float
    far: float
    people: int
    templates: int
    cohort: int
    pairs: int
    mean: float | None
    sd: float | None
    thin: bool
    method: str = METHOD
    revision: int | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        for k in ("tau_identify", "tau_verify", "mean", "sd"):
            if d[k] is not None:
                d[k] = round(float(d[k]), 6)
        return d


def validate_rate(name: str, value: float) -> float:
    """A target error rate must lie strictly between 0 and 1 (``--fpir 0`` would mean a
    threshold below every distance, ``--fpir 2`` is not a rate)."""
    if not (np.isfinite(value) and 0.0 < value < 1.0):
        raise ValueError(f"{name} must be a rate strictly between 0 and 1, got {value:g}")
    return float(value)


def validate_tau(value: float) -> float:
    """Distances between unit vectors lie in [0, 2]; tau outside (0, 2) accepts nobody or
    everybody, and NaN compares false with everything."""
    if not (np.isfinite(value) and 0.0 < value < 2.0):
        raise ValueError(f"tau must be a distance strictly between 0 and 2, got {value:g}")
    return float(value)


def per_pair_rate(rate: float, people: int) -> float:
    """The per-comparison false-match rate that gives ``rate`` for the best of ``people``
    comparisons, if they were independent: 1 - (1 - rate)^(1/people)."""
    return float(-np.expm1(np.log1p(-rate) / max(people, 1)))


def threshold(mean: float, sd: float, rate: float, people: int) -> float:
    """tau for a false-match ``rate`` against ``people`` enrolled people, from the normal
    fit of different-person distances (aiming at ``TARGET_SHARE`` of the rate)."""
    return float(mean + sd * norm.ppf(per_pair_rate(rate * TARGET_SHARE, people)))


def person_centroids(vectors: np.ndarray, owners: np.ndarray,
                     quality: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(person ids, unit centroids): each person's templates averaged, weighted by face
    quality, and re-normalised. A person is scored by the distance to this fused template:
    with two photos each on LFW it misses fewer mated probes at FPIR 1e-3 than the nearer
    single photo does (bench.openset_lfw, "two_photos")."""
    owners = np.asarray(owners)
    if len(owners) == 0:
        return np.zeros(0, np.int64), np.zeros((0, vectors.shape[1] if vectors.ndim == 2
                                                 else 0), np.float32)
    w = np.ones(len(owners)) if quality is None else np.clip(np.asarray(quality, float),
                                                             1e-3, None)
    people, inverse = np.unique(owners, return_inverse=True)
    sums = np.zeros((len(people), vectors.shape[1]))
    np.add.at(sums, inverse, vectors * w[:, None])
    sums /= np.linalg.norm(sums, axis=1, keepdims=True).clip(1e-12)
    return people.astype(np.int64), sums.astype(np.float32)


def distances(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Euclidean distances between rows of unit vectors ``a`` and ``b``."""
    return np.sqrt(np.clip(2.0 - 2.0 * (a @ b.T), 0.0, 4.0))


BIN = 0.0005  # distance histogram resolution (distances lie in [0, 2])
N_BINS = int(round(2.0 / BIN))
LOWER = 0.5  # the fit is made to the lower half of the distances: the side that matters


def _histograms(probes: np.ndarray, probe_unit: np.ndarray, centroids: np.ndarray,
                n_units: int) -> np.ndarray:
    """(units, bins) counts of distances from each unit's probes to every *other* person's
    fused template (unit i < len(centroids) is gallery person i; later units are cohort
    photos). Histograms let the bootstrap reweight units without re-sorting pairs."""
    hist = np.zeros(n_units * N_BINS, np.float64)
    for start in range(0, len(probes), 512):
        d = distances(probes[start:start + 512], centroids)
        unit = probe_unit[start:start + 512]
        own = unit[:, None] == np.arange(len(centroids))[None, :]
        cells = (unit[:, None] * N_BINS + np.minimum(d / BIN, N_BINS - 1).astype(np.int64))
        hist += np.bincount(cells[~own], minlength=n_units * N_BINS)
    return hist.reshape(n_units, N_BINS)


def fit_lower_tail(hist: np.ndarray) -> tuple[float, float]:
    """(mean, sd) of the normal distribution that best fits the lower half of a distance
    histogram on a normal Q-Q plot (weighted least squares over the bins). Fitting the lower
    half, not the moments, keeps a skewed upper side from narrowing the fitted tail."""
    total = hist.sum()
    cdf = np.cumsum(hist) / total
    keep = (hist > 0) & (cdf < 1.0) & (cdf - hist / total < LOWER)
    x = (np.flatnonzero(keep) + 1) * BIN  # upper bin edges: F(x) = cdf
    z = norm.ppf(cdf[keep])
    w = hist[keep]
    if len(x) < 2:
        return (float(x[0]) if len(x) else 1.0), BIN
    zm, xm = np.average(z, weights=w), np.average(x, weights=w)
    sd = np.sum(w * (z - zm) * (x - xm)) / max(np.sum(w * (z - zm) ** 2), 1e-12)
    return float(xm - sd * zm), float(max(sd, BIN))


def estimate(vectors: np.ndarray, owners: np.ndarray, *, reference: ReferenceImpostors,
             quality: np.ndarray | None = None,
             cohort: np.ndarray | None = None, fpir: float = DEFAULT_FPIR,
             far: float = DEFAULT_FAR,
             people: int | None = None, revision: int | None = None,
             seed: int = 0) -> OperatingPoint:
    """The operating point for a gallery of template ``vectors`` (unit rows) owned by
    ``owners`` (person ids), optionally with ``cohort`` vectors of people not enrolled.
    ``people`` is the number of people a stranger is compared with (default: the distinct
    owners; the active ones in use)."""
    fpir, far = validate_rate("FPIR", fpir), validate_rate("FAR", far)
    owners = np.asarray(owners, np.int64)
    vectors = np.asarray(vectors, np.float32)
    dim = vectors.shape[-1] if vectors.size else (
        np.asarray(cohort).shape[-1] if cohort is not None and np.size(cohort) else 1)
    vectors = vectors.reshape(len(owners), dim)  # an empty gallery is (0, dim), not (0, 0)
    cohort = (np.zeros((0, dim), np.float32) if cohort is None
              else np.asarray(cohort, np.float32).reshape(-1, dim))
    ids, centroids = person_centroids(vectors, owners, quality)
    n_people = len(ids) if people is None else int(people)
    rng = np.random.default_rng(seed)
    notes: list[str] = []
    keep = np.arange(len(ids))
    if len(ids) > MAX_PEOPLE:
        keep = np.sort(rng.choice(len(ids), MAX_PEOPLE, replace=False))
        notes.append(f"fitted on {MAX_PEOPLE} of {len(ids)} people (random subset)")
    unit_of = {int(p): i for i, p in enumerate(ids[keep])}
    rows = np.array([i for i, o in enumerate(owners) if int(o) in unit_of], np.int64)
    probes = np.concatenate([vectors[rows], cohort])
    probe_unit = np.concatenate([[unit_of[int(o)] for o in owners[rows]],
                                 len(keep) + np.arange(len(cohort))]).astype(np.int64)
    n_units = len(keep) + len(cohort)
    mean = sd = None
    pairs = 0
    tau_k = tau_1 = np.inf
    if len(keep) >= 3 or (len(keep) >= 1 and len(cohort) >= 3):
        hist = _histograms(probes, probe_unit, centroids[keep], n_units)
        pairs = int(hist.sum())
        mean, sd = fit_lower_tail(hist.sum(axis=0))
        boot_k, boot_1 = [], []
        for _ in range(BOOTSTRAP):
            w = rng.multinomial(n_units, np.full(n_units, 1.0 / n_units)).astype(float)
            h = w @ hist
            if h.sum() < 2:
                continue
            m, s = fit_lower_tail(h)
            boot_k.append(threshold(m, s, fpir, n_people))
            boot_1.append(threshold(m, s, far, 1))
        q = 1.0 - CONFIDENCE
        tau_k = float(np.quantile(boot_k, q)) if boot_k else threshold(mean, sd, fpir, n_people)
        tau_1 = float(np.quantile(boot_1, q)) if boot_1 else threshold(mean, sd, far, 1)
    thin = len(ids) < MIN_PEOPLE
    if thin:
        # a handful of people cannot be resampled meaningfully: the point fit (when there is
        # one) may only make the strict threshold stricter, for a site whose strangers sit
        # closer together than the model's reference set
        tau_k = threshold(mean, sd, fpir, n_people) if mean is not None else np.inf
        tau_1 = threshold(mean, sd, far, 1) if mean is not None else np.inf
        notes.append(f"only {len(ids)} people enrolled: the estimate needs at least "
                     f"{MIN_PEOPLE}; using the strict threshold until then")
    # the site's own data may tighten the model's reference threshold, never loosen it: a
    # few dozen people who happen to look unlike each other must not open the door wider
    ref_people = max(STRICT_GALLERY, n_people) if thin else n_people
    tau_k = min(tau_k, threshold(reference.mean, reference.sd, fpir, ref_people))
    tau_1 = min(tau_1, threshold(reference.mean, reference.sd, far, 1))
    return OperatingPoint(tau_identify=tau_k, tau_verify=tau_1, fpir=fpir, far=far,
                          people=n_people, templates=len(owners), cohort=len(cohort),
                          pairs=pairs, mean=mean, sd=sd, thin=thin, revision=revision,
                          notes=notes)


def reference_from_pairs(distances_: np.ndarray, labels: np.ndarray,
                         data: str = "") -> ReferenceImpostors:
    """The normal fit of the different-person distances of labelled calibration pairs."""
    d = np.asarray(distances_, float)[np.asarray(labels) == 0]
    if len(d) < 2:
        raise ValueError("need different-person pairs to fit the impostor distances")
    return ReferenceImpostors(float(d.mean()), float(d.std()), int(len(d)), data)
