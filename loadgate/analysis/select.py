"""Exact percentiles of many groups at once: numpy's ``linear`` method, without sorting every group.

A histogram per (group, key bucket) finds the bucket that holds each wanted rank; only the samples in
those buckets are sorted. Every output group is a union of base groups (po[i] owns pb[i]), whose histograms it sums.
"""

from __future__ import annotations

import numpy as np

from loadgate.analysis.ci import ci_ranks
from loadgate.analysis.latency import FINE_BITS, Latency

_BIN_BUDGET = 1 << 20  # histogram cells per selection (groups x buckets) ...
_ROWS_PER_BUDGET_BITS = 22  # ... times one per 4M samples (finer buckets, fewer candidates, for long runs)
_BUDGET_SCALE_MAX = 32  # ... up to 32M cells
_MAX_RUNS = 1 << 12  # runs of pairs summed one slice at a time


def group_arrays(
    lat: Latency,
    bases: list[np.ndarray],
    n_base: int,
    failed: list[np.ndarray],
    po: np.ndarray,
    pb: np.ndarray,
    n_out: int,
    qs: tuple[float, ...],
    detail: bool,
) -> dict[str, np.ndarray]:
    """Per output group: requests ``n``, ``fails``, ``nlat`` (with a response time), ``values`` (with
    ``detail`` min and max, the percentiles' neighbour ranks, with ``detail`` the CI bounds), ``pct`` and,
    with ``detail``, ``mean``.
    """

    def per_out(parts: list[np.ndarray], weights: list[np.ndarray] | None = None) -> np.ndarray:
        per_base = sum(
            (np.bincount(p, None if weights is None else weights[i], minlength=n_base) for i, p in enumerate(parts)),
            np.zeros(n_base),
        )
        return np.bincount(po, per_base[pb], minlength=n_out)

    lbases = lat.take(bases)
    n, fails = (per_out(p).astype(np.int64) for p in (bases, [b[f] for b, f in zip(bases, failed)]))
    nlat = n if all(r is None for r in lat.rows) else per_out(lbases).astype(np.int64)
    prev, nxt, gamma = linear_plan(nlat, qs)
    want = [prev, nxt]
    if detail:  # min and max, and the CI bounds: not wanted for the series
        want[:0] = [np.zeros((n_out, 1), np.int64), (nlat - 1)[:, None]]
        bounds = np.array([[ci_ranks(int(m), q) for q in qs] for m in nlat], np.int64).reshape(n_out, len(qs), 2)
        want += [bounds[..., 0], bounds[..., 1]]
    ranks = np.hstack(want)
    has = (nlat > 0)[:, None] & (ranks >= 0)
    values = np.full(ranks.shape, np.nan)
    group = np.broadcast_to(np.arange(n_out)[:, None], ranks.shape)
    values[has] = lat.to_values(select(lat, lbases, n_base, po, pb, n_out, group[has], ranks[has]))
    k, at = len(qs), 2 if detail else 0
    out = {
        "n": n,
        "fails": fails,
        "nlat": nlat,
        "values": values,
        "pct": lerp(values[:, at : at + k], values[:, at + k : at + 2 * k], gamma),
    }
    if detail:
        out["mean"] = per_out(lbases, lat.values) / np.maximum(nlat, 1)
    return out


def select(
    lat: Latency,
    bases: list[np.ndarray],
    n_base: int,
    po: np.ndarray,
    pb: np.ndarray,
    n_out: int,
    group: np.ndarray,
    rank: np.ndarray,
) -> np.ndarray:
    """Keys at 0-based ``rank`` within output ``group`` (a union of base groups), without a full sort.

    A histogram per (group, bucket) cell locates each rank's cell; only the samples in wanted cells
    are sorted, packed with their cell into one uint64 so that one plain sort orders both. Buckets
    hold about equal shares of all samples (runs of fine buckets, merged by their global counts), so
    that a wanted cell holds few samples even when there are many small groups (the per-second series).
    """
    if rank.size == 0:
        return np.zeros(0, np.uint64)
    rows = int(lat.fine_hist.sum())
    budget = _BIN_BUDGET * min(_BUDGET_SCALE_MAX, max(1, rows >> _ROWS_PER_BUDGET_BITS))
    target = max(16, min(1 << FINE_BITS, budget // max(n_base, n_out, 1)))
    before = np.cumsum(lat.fine_hist) - lat.fine_hist
    lut = (before * target // max(rows, 1)).astype(np.intp)  # fine bucket -> bucket, non-decreasing
    nb = int(lut[-1]) + 1
    first_fine = np.searchsorted(lut, np.arange(nb + 1))  # bucket b = fine buckets first_fine[b] .. [b+1]-1
    fine_shift = np.uint64(lat.fine_shift)

    cell_dtype = np.int32 if n_base * nb < 1 << 31 else np.int64
    lut = lut.astype(cell_dtype)
    flats = []  # (base group, bucket) cell of each sample: 4 bytes a sample while the selection runs
    hist_base: np.ndarray = np.zeros(n_base * nb, np.int64)
    pending, pending_rows = [], 0
    for i in range(len(bases)):
        flat = np.multiply(bases[i], nb, dtype=cell_dtype)
        flat += np.take(lut, lat.buckets[i])  # take: half the time of lut[...] with uint16 indices
        flats.append(flat)
        del flat
        pending.append(flats[-1])
        pending_rows += flats[-1].size
        # One histogram per at least as many samples as cells: a histogram per chunk would cost
        # chunks x cells, which grows with the square of the samples (the budget grows with them).
        if pending_rows >= n_base * nb or i == len(bases) - 1:
            hist_base += np.bincount(np.concatenate(pending) if len(pending) > 1 else pending[0], minlength=n_base * nb)
            pending, pending_rows = [], 0
    hist_base = hist_base.reshape(n_base, nb)
    hist = sum_rows(hist_base, po, pb, n_out).ravel()  # row o: the sum of its base groups' rows
    del hist_base
    cum = np.cumsum(hist)
    pos = np.concatenate(([0], cum[nb - 1 :: nb][:-1]))[group] + rank
    cell = np.searchsorted(cum, pos, side="right")  # the (group, bucket) cell holding each rank
    within = pos - (cum[cell] - hist[cell])
    del cum, hist
    wanted = np.zeros(n_out * nb, bool)
    wanted[cell] = True
    # A sample is a candidate when any group it belongs to wants its bucket.
    wanted_base = sum_rows(wanted.reshape(n_out, nb), pb, po, n_base).ravel() > 0
    base_key = np.uint64(lat.lo) + (first_fine[:-1].astype(np.uint64) << fine_shift)  # lowest key of each bucket
    cflats, clows = [np.zeros(0, np.int64)], [np.zeros(0, np.uint64)]
    for i in range(len(bases)):
        flat, flats[i] = flats[i], None
        picked = np.flatnonzero(wanted_base[flat])
        cflats.append(flat[picked])
        clows.append(lat.keys[i][picked] - base_key[flat[picked] % nb])
    cflat, clow = np.concatenate(cflats), np.concatenate(clows)
    del cflats, clows
    # Copy each candidate to its output groups (pairs sorted by base); keep those whose cell is wanted.
    by_base = np.argsort(pb, kind="stable")
    cb = cflat // nb
    reps = np.bincount(pb, minlength=n_base)[cb]
    src = np.repeat(np.arange(cb.size), reps)
    offs = np.arange(src.size) - np.repeat(np.cumsum(reps) - reps, reps)
    first = np.searchsorted(pb[by_base], np.arange(n_base))
    ocell = po[by_base][first[cb][src] + offs] * nb + cflat[src] % nb
    keep = wanted[ocell]
    ocell, clow = ocell[keep], clow[src[keep]]
    cells_wanted = np.flatnonzero(wanted)
    tid_of = np.cumsum(wanted) - 1  # wanted cell -> its index among the wanted cells
    tid = tid_of[ocell]
    span = np.diff(first_fine)[cells_wanted % nb].max(initial=1)  # widest wanted bucket, in fine buckets
    bits = lat.fine_shift + int(span).bit_length()  # every clow < 2**bits
    values: np.ndarray = base_key[cell % nb] + _pick(tid, clow, bits, tid_of[cell], within, cells_wanted.size, budget)
    return values


def sum_rows(rows: np.ndarray, into: np.ndarray, of: np.ndarray, n: int) -> np.ndarray:
    """``out[j] = sum of rows[of[i]] for every pair i with into[i] == j``, for j < n (a sparse 0/1 product).

    Pairs come in runs (``of`` and ``into`` both counting up, as the per-second series' do): one slice
    addition per run, without a pairs-by-columns copy. Else one cumulative sum over the gathered rows.
    """
    out = np.zeros((n, rows.shape[1]), np.int64)
    if into.size == 0:
        return out
    order = np.lexsort((into, of - into))
    into, of = into[order], of[order]
    breaks = np.flatnonzero((np.diff(into) != 1) | (np.diff(of) != 1)) + 1
    if breaks.size < _MAX_RUNS:
        for a, b in zip([0, *breaks.tolist()], [*breaks.tolist(), into.size]):
            out[into[a] : into[a] + b - a] += rows[of[a] : of[a] + b - a]
        return out
    order = np.argsort(into, kind="stable")
    into, of = into[order], of[order]
    ends = np.flatnonzero(np.concatenate((into[1:] != into[:-1], [True])))  # last pair of each target
    totals = np.cumsum(rows[of], axis=0, dtype=np.int64)[ends]
    out[into[ends]] = np.diff(totals, axis=0, prepend=np.zeros((1, rows.shape[1]), np.int64))
    return out


def _pick(
    tid: np.ndarray, low: np.ndarray, bits: int, want: np.ndarray, within: np.ndarray, n_tid: int, budget: int
) -> np.ndarray:
    """For each query j, the value at 0-based rank ``within[j]`` among the ``low`` of candidates ``tid == want[j]``.

    One sort of (tid, low) packed into a uint64 when both fit; else a radix pass first: a histogram of
    each tid's candidates by the top bits of ``low`` keeps only those in the wanted sub-bucket, which
    leaves fewer bits to sort (exact: the order of the kept candidates is unchanged).
    """
    offset = np.zeros(want.size, np.uint64)
    while True:
        tid_bits = max(1, int(n_tid - 1).bit_length())
        if tid_bits + bits <= 64:
            packed = np.sort((tid.astype(np.uint64) << np.uint64(bits)) | low)
            seg = np.searchsorted(packed >> np.uint64(bits), want.astype(np.uint64))
            picked: np.ndarray = offset + (packed[seg + within] & np.uint64((1 << bits) - 1))
            return picked
        k = max(1, min(bits, tid_bits + bits - 64, max(budget // max(n_tid, 1), 2).bit_length() - 1))
        rest = bits - k
        cell = tid * (1 << k) + (low >> np.uint64(rest)).astype(np.int64)
        hist = np.bincount(cell, minlength=n_tid << k)
        cum = np.cumsum(hist)
        pos = np.concatenate(([0], cum[(1 << k) - 1 :: 1 << k][:-1]))[want] + within
        sub = np.searchsorted(cum, pos, side="right")
        within = pos - (cum[sub] - hist[sub])
        offset += (sub & ((1 << k) - 1)).astype(np.uint64) << np.uint64(rest)
        wanted = np.zeros(n_tid << k, bool)
        wanted[sub] = True
        keep = wanted[cell]
        kept_of = np.cumsum(wanted) - 1
        tid = kept_of[cell[keep]]
        low = low[keep] & np.uint64((1 << rest) - 1)
        want, n_tid, bits = kept_of[sub], int(kept_of[-1]) + 1, rest


def linear_plan(n: np.ndarray, qs: tuple[float, ...]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """numpy's linear-method neighbour ranks and weights, per group size and percentile."""
    virtual = (n[:, None] - 1) * np.true_divide(np.array(qs, np.float64), 100)[None, :]
    prev = np.floor(virtual)
    above = virtual >= (n[:, None] - 1)
    gamma = virtual - np.where(above, -1.0, prev)  # numpy subtracts index -1 (= last) above the top
    prev_rank = np.where(above, n[:, None] - 1, prev.astype(np.int64))
    return prev_rank, np.where(above, n[:, None] - 1, prev_rank + 1), gamma


def lerp(a: np.ndarray, b: np.ndarray, t: np.ndarray) -> np.ndarray:
    """numpy's ``lerp``: ``a + (b-a)*t``, or ``b - (b-a)*(1-t)`` where t >= 0.5."""
    diff = b - a
    mixed: np.ndarray = np.where(t >= 0.5, b - diff * (1 - t), a + diff * t)
    return mixed


def pkey(q: float) -> str:
    """Summary key of a percentile: 99.9 -> 'p99.9', 50.0 -> 'p50'."""
    return f"p{q:g}"


def time_keys(qs: tuple[float, ...]) -> list[str]:
    """Response-time keys in contract order."""
    return ["min", "mean", *(pkey(q) for q in qs), "max"]
