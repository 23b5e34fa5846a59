"""Trabecular texture of analytic bones (phantoms/texture.py): it keeps each bone's composition on
average, lives only where the named objects own the space, and gives the film the structure of bone."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from scipy import ndimage

from volumedr.errors import CaseError
from volumedr.phantoms import load_case, load_case_file
from volumedr.phantoms.primitives import box, ellipsoid, pack
from volumedr.phantoms.texture import TrabecularTexture, texture_volume

BONE = [ellipsoid((0, 0, 20), (12, 20, 9), "cortical_bone", label="bone (cortex)"),
        ellipsoid((0, 0, 20), (10.5, 18.5, 7.5), "cancellous_bone", label="bone (marrow)"),
        box((0, 0, 20), (30, 0.8, 30), "soft_tissue", label="fracture gap")]


def _owner(prims, tv):
    """Who owns each texture voxel centre (painter's order), by the simulator's own labelling kernel."""
    from volumedr.simulate import _kernels as K

    p = pack(prims)
    labels = np.full(tv.delta.shape, -1, np.int32)
    K.label_volume(p.kinds, p.world_to_unit, p.centres_mm, p.bounds_mm, np.array(tv.origin_mm),
                   np.array(tv.spacing_mm[::-1]), np.array(tv.delta.shape, np.int64), labels)
    return labels


def test_the_texture_keeps_the_mix_on_average_and_stays_inside_its_own_objects():
    tex = TrabecularTexture(objects=("bone (marrow)",), spacing_mm=2.0, voxel_mm=0.3, seed=1)
    tv = texture_volume(BONE, tex)
    d = tv.delta
    assert abs(float(d.sum())) < 1e-4 * float(np.abs(d).sum())  # zero-sum: the bone's mean attenuation is kept
    own = _owner(BONE, tv)

    def deep(m):  # voxels whose whole cube (not only the centre) lies in m: the edges hold partial volume
        return ndimage.binary_erosion(m, iterations=1)

    assert np.all(d[deep(own == 0)] == 0) and np.all(d[deep(own == -1)] == 0)  # not in the cortex, not outside
    assert np.all(d[deep(own == 2)] == 0)  # the fracture gap painted over the marrow stays a gap
    marrow = own == 1
    bone = tex.bone_fraction + d[marrow]
    assert bone.min() >= -1e-6 and bone.max() <= 1.0 + 1e-6  # a physical bone fraction everywhere
    assert float(d[marrow].std()) > 0.05  # a texture, not a uniform paste
    # plates: the field's power peaks near 1 / spacing_mm
    f = np.abs(np.fft.rfftn(d * marrow)) ** 2
    k = [np.fft.fftfreq(n, 0.3) for n in d.shape[:-1]] + [np.fft.rfftfreq(d.shape[-1], 0.3)]
    kk = np.sqrt(k[0][:, None, None] ** 2 + k[1][None, :, None] ** 2 + k[2][None, None, :] ** 2)
    assert float(f[(kk > 0.3) & (kk < 0.7)].mean()) > 5 * float(f[(kk > 1.2)].mean())


def test_the_same_seed_gives_the_same_bone_and_another_seed_another():
    a = texture_volume(BONE, TrabecularTexture(objects=("bone (marrow)",), seed=3)).delta
    b = texture_volume(BONE, TrabecularTexture(objects=("bone (marrow)",), seed=3)).delta
    c = texture_volume(BONE, TrabecularTexture(objects=("bone (marrow)",), seed=4)).delta
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def _band_power(img, pitch_mm, lo, hi):
    img = img - img.mean()
    w = np.outer(np.hanning(img.shape[0]), np.hanning(img.shape[1]))
    P = np.abs(np.fft.fft2(img * w)) ** 2
    fy = np.fft.fftfreq(img.shape[0], pitch_mm)
    fx = np.fft.fftfreq(img.shape[1], pitch_mm)
    f = np.hypot(fy[:, None], fx[None, :])
    return float(P[(f >= lo) & (f < hi)].mean())


@pytest.mark.slow
def test_the_wrist_film_has_bone_texture_and_keeps_its_mean():
    """The wrist film over the distal radius: with the texture, structure at 0.2-1 cycles/mm well above
    the untextured bone's (the same noise seed); the mean line integral over the radius within 1 %."""
    from volumedr.evidence import evidence_detector
    from volumedr.simulate import simulate_study

    case = load_case("wrist")
    assert case.texture is not None and "distal radius (marrow)" in case.texture.objects
    det = evidence_detector(case)
    films = {}
    for name, c in (("textured", case), ("plain", replace(case, texture=None))):
        st = simulate_study(c, detector=det, rng=1, ct=False)
        films[name] = np.asarray(st.dr, np.float64)
    # the distal radius's marrow (centre (-12, -18), semi-axes 15.5 x 12.5 mm) on the film, well inside
    g = st.geometry
    mag = g.source_positions_mm[0][2] / (g.source_positions_mm[0][2] - 20.0)
    rows = (np.arange(det.rows) - (det.rows - 1) / 2) * det.pitch_row_mm
    cols = (np.arange(det.cols) - (det.cols - 1) / 2) * det.pitch_col_mm
    r = np.nonzero(np.abs(rows - (-18) * mag) < 7 * mag)[0]
    c = np.nonzero(np.abs(cols - (-12) * mag) < 8 * mag)[0]
    patch = {k: -np.log(np.maximum(v[r[0]:r[-1] + 1, c[0]:c[-1] + 1], 1e-9)) for k, v in films.items()}
    assert patch["textured"].mean() == pytest.approx(patch["plain"].mean(), rel=0.01)
    pt = _band_power(patch["textured"], det.pitch_row_mm, 0.2, 1.0)
    pp = _band_power(patch["plain"], det.pitch_row_mm, 0.2, 1.0)
    assert pt > 3 * pp, (pt, pp)


def test_the_wrist_ct_pane_shows_the_texture_at_fine_voxels():
    from volumedr.simulate.ct import ct_reference

    case = load_case("wrist")
    hu = {}
    for name, c in (("textured", case), ("plain", replace(case, texture=None))):
        ref = ct_reference(c, voxel_mm=0.6, noise_hu=0.0)
        z = int(round((20 - ref.origin_mm[2]) / 0.6))
        y = int(round((-18 - ref.origin_mm[1]) / 0.6))
        x = int(round((-12 - ref.origin_mm[0]) / 0.6))
        hu[name] = np.asarray(ref.hu)[z - 3:z + 4, y - 8:y + 9, x - 10:x + 11]
    assert hu["plain"].std() < 5.0  # uniform cancellous bone
    assert hu["textured"].std() > 40.0
    assert hu["textured"].mean() == pytest.approx(hu["plain"].mean(), abs=25.0)


@pytest.mark.parametrize("table, message", [
    ('objects = ["nosuch (marrow)"]', "name no \\[\\[object\\]\\] label"),
    ('objects = []', "at least one"),
    ('objects = ["bone"]\nspacing_mm = 0.5\nvoxel_mm = 0.3', "spacing_mm"),
    ('objects = ["bone"]\nvoxel_mm = -1', "voxel_mm"),
    ('objects = ["bone"]\nelongation_xyz = [1, 2]', "elongation_xyz"),
    ('objects = ["bone"]\ncolour = "red"', "does not take colour"),
])
def test_a_bad_texture_table_is_refused_with_the_file_and_line(tmp_path, table, message):
    p = tmp_path / "t.toml"
    p.write_text('[case]\nname = "t"\n\n[[object]]\ntype = "sphere"\nlabel = "bone"\nmaterial = "cancellous_bone"\n'
                 f'centre_mm = [0, 0, 20]\nradius_mm = 8\n\n[texture]\n{table}\n')
    with pytest.raises(CaseError, match=rf"t.toml:11: .*{message}"):
        load_case_file(p)


def test_a_texture_too_big_for_memory_is_refused_before_allocating():
    from volumedr.errors import MemoryBudgetError

    big = [ellipsoid((0, 0, 150), (200, 200, 140), "cancellous_bone", label="pelvis (marrow)")]
    with pytest.raises(MemoryBudgetError, match="bone texture .* needs"):
        texture_volume(big, TrabecularTexture(objects=("pelvis (marrow)",), spacing_mm=0.5, voxel_mm=0.05))
