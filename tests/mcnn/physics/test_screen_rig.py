"""The hidden-screen rig: fixed parts from the seed, noise from the generator, linear transport."""

import pytest
import torch

from mcnn.physics import ProceduralContent, ScreenRigConfig, ScreenRigPhysics, ScreenRigSimulator

CLEAN = {"noise_std": 0.0, "photons_full_scale": None}
FLAT = {"albedo_contrast": 0.0, "vignetting": 0.0, "warp": 0.0, "global_mix": 0.0}


def screens(batch: int = 2, size: tuple[int, int] = (48, 64), seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, *size, generator=torch.Generator().manual_seed(seed))


def test_output_has_camera_size_and_stays_in_unit_range() -> None:
    rig = ScreenRigPhysics(camera_hw=(24, 40))
    out = rig(screens(3, (50, 90)), torch.Generator().manual_seed(0), exposure=5.0)
    assert out.shape == (3, 3, 24, 40)
    assert out.dtype == torch.float32
    assert out.min() >= 0 and out.max() <= 1
    assert out.max() == 1.0  # five times over-exposed: the sensor saturates


def test_rig_seed_fixes_the_rig_and_different_seeds_differ() -> None:
    a, b, c = (ScreenRigPhysics(camera_hw=(24, 32), seed=s, **CLEAN) for s in (3, 3, 4))
    x = screens(1, (24, 32))
    assert torch.equal(a(x), b(x))
    assert torch.equal(a.albedo, b.albedo)
    assert not torch.allclose(a.albedo, c.albedo)
    assert (a(x) - c(x)).abs().max() > 1e-3


def test_noise_comes_only_from_the_generator() -> None:
    rig = ScreenRigPhysics(camera_hw=(24, 32))
    x = screens(2, (24, 32))
    one = rig(x, torch.Generator().manual_seed(7))
    again = rig(x, torch.Generator().manual_seed(7))
    other = rig(x, torch.Generator().manual_seed(8))
    assert torch.equal(one, again)
    assert (one - other).abs().mean() > 1e-3
    clean = ScreenRigPhysics(camera_hw=(24, 32), **CLEAN)
    assert torch.equal(clean(x, torch.Generator().manual_seed(1)), clean(x, torch.Generator()))


def test_light_transport_is_linear_in_the_screen() -> None:
    rig = ScreenRigPhysics(camera_hw=(24, 32), blur_px=4.0)
    s1, s2 = screens(1, (30, 40), 1), screens(1, (30, 40), 2)
    mixed = rig.light_on_door(0.3 * s1 + 1.7 * s2)
    separate = 0.3 * rig.light_on_door(s1) + 1.7 * rig.light_on_door(s2)
    torch.testing.assert_close(mixed, separate, atol=1e-5, rtol=1e-5)


def test_uniform_screen_gives_the_door_tint_without_texture_or_bounce() -> None:
    rig = ScreenRigPhysics(camera_hw=(24, 32), blur_px=6.0, **FLAT)
    light = rig.light_on_door(torch.full((1, 3, 24, 32), 0.5))
    expected = 0.5 * rig.albedo.expand_as(light)
    torch.testing.assert_close(light, expected, atol=1e-5, rtol=1e-5)


def test_room_bounce_carries_the_mean_colour_everywhere() -> None:
    flat = {**FLAT, "global_mix": 1.0}
    rig = ScreenRigPhysics(camera_hw=(24, 32), **flat)
    screen = torch.zeros(1, 3, 24, 32)
    screen[:, 0, :4, :4] = 1.0  # a small red patch in one corner
    light = rig.light_on_door(screen)
    mean_red = 16 / (24 * 32)
    expected = mean_red * rig.bounce_map * rig.albedo[:, :1]
    torch.testing.assert_close(light[:, :1], expected, atol=1e-6, rtol=1e-4)
    assert light[:, 1:].abs().max() == 0


@pytest.mark.parametrize("mirror", [True, False])
def test_mirror_puts_left_screen_light_on_the_right_of_the_camera(mirror: bool) -> None:
    rig = ScreenRigPhysics(camera_hw=(32, 64), blur_px=3.0, mirror=mirror, n_kernels=1, **FLAT)
    screen = torch.zeros(1, 3, 32, 64)
    screen[..., :32] = 1.0
    light = rig.light_on_door(screen)
    left, right = light[..., :32].mean(), light[..., 32:].mean()
    assert (right > 3 * left) if mirror else (left > 3 * right)
    plain = ScreenRigPhysics(
        camera_hw=(32, 64), blur_px=3.0, mirror=not mirror, n_kernels=1, **FLAT
    )
    torch.testing.assert_close(light, plain.light_on_door(screen).flip(-1), atol=1e-6, rtol=0)


def test_wide_blur_washes_out_fine_screen_detail() -> None:
    rig = ScreenRigPhysics(camera_hw=(48, 64), blur_px=8.0, **FLAT)
    yy, xx = torch.meshgrid(torch.arange(48), torch.arange(64), indexing="ij")
    checker = ((yy // 4 + xx // 4) % 2).float().expand(1, 3, 48, 64)
    light = rig.light_on_door(checker) / rig.albedo  # remove the door's colour tint
    assert light.std() < 0.08 * checker.std()  # replicate-padded borders keep a little
    torch.testing.assert_close(light.mean(), torch.tensor(0.5), atol=0.02, rtol=0)


def test_shot_and_read_noise_have_the_configured_variance() -> None:
    kwargs = {**FLAT, "gamma": 1.0, "ambient": 0.05}
    noisy = ScreenRigPhysics(
        camera_hw=(128, 128), noise_std=0.01, photons_full_scale=500, **kwargs
    )
    clean = ScreenRigPhysics(camera_hw=(128, 128), **CLEAN, **kwargs)
    screen = torch.full((2, 3, 128, 128), 0.6)
    level = clean(screen)
    residual = noisy(screen, torch.Generator().manual_seed(0)) - level
    expected_var = level / 500 + 0.01**2
    ratio = (residual**2).mean() / expected_var.mean()
    assert abs(ratio.item() - 1) < 0.05


def test_exposure_is_a_gain_before_ambient_light_per_example() -> None:
    rig = ScreenRigPhysics(camera_hw=(24, 32), gamma=1.0, ambient=0.1, **CLEAN)
    x = screens(2, (24, 32)) * 0.4
    base = rig(x, exposure=1.0)
    scaled = rig(x, exposure=torch.tensor([2.0, 0.5]))
    ambient = rig.ambient
    torch.testing.assert_close(
        scaled[0] - ambient[0], 2.0 * (base[0] - ambient[0]), atol=1e-5, rtol=0
    )
    torch.testing.assert_close(
        scaled[1] - ambient[0], 0.5 * (base[1] - ambient[0]), atol=1e-5, rtol=0
    )


def test_gamma_encodes_the_linear_sensor_value() -> None:
    linear = ScreenRigPhysics(camera_hw=(24, 32), gamma=1.0, **CLEAN)
    encoded = ScreenRigPhysics(camera_hw=(24, 32), gamma=2.2, **CLEAN)
    x = screens(1, (24, 32))
    torch.testing.assert_close(encoded(x), linear(x) ** (1 / 2.2), atol=1e-5, rtol=1e-5)


def test_simulator_target_is_the_screen_content_at_scale_and_input_the_camera() -> None:
    sim = ScreenRigSimulator(ScreenRigConfig(scale=2, rig_seed=5))
    content = ProceduralContent()
    inputs, targets = sim.sample(2, (24, 32), torch.Generator().manual_seed(3), content)
    assert (sim.in_channels, sim.out_channels, sim.scale) == (3, 3, 2)
    assert inputs.shape == (2, 3, 24, 32) and targets.shape == (2, 3, 48, 64)
    screen = content.sample(2, (48, 64), torch.Generator().manual_seed(3), channels=3)
    assert torch.equal(targets, screen)
    again, _ = sim.sample(2, (24, 32), torch.Generator().manual_seed(3), content)
    assert torch.equal(inputs, again)
    assert sim.physics((24, 32)).camera_hw == (24, 32)


def test_screen_rig_config_rejects_unknown_fields_and_bad_exposure() -> None:
    with pytest.raises(ValueError):
        ScreenRigConfig(blur=3)
    with pytest.raises(ValueError, match="exposure_range"):
        ScreenRigSimulator(ScreenRigConfig(exposure_range=(2.0, 1.0)))


def test_the_old_width_height_argument_fails_loudly_and_noise_needs_a_generator() -> None:
    with pytest.raises(TypeError, match="camera_size"):
        ScreenRigPhysics(camera_size=(32, 24))
    rig = ScreenRigPhysics(camera_hw=(24, 32))  # noisy by default
    assert rig.camera_hw == (24, 32) and rig.albedo.shape[-2:] == (24, 32)
    with pytest.raises(ValueError, match="needs a torch.Generator"):
        rig(screens(1, (24, 32)))


# -- the realistic (radiometric) transport ------------------------------------------------------
def _door(**kw):
    from mcnn.physics.screen_rig import DoorTransport

    return DoorTransport(**kw)


def test_far_door_irradiance_follows_the_inverse_square_law_and_the_small_source_formula():
    import math

    import torch

    white = torch.ones(1, 1, 18, 32)
    small = dict(door_size_m=(0.02, 0.02), door_grid=(3, 3))
    e3 = _door(distance_m=3.0, **small)(white)[0, 0, 1, 1].item()
    e6 = _door(distance_m=6.0, **small)(white)[0, 0, 1, 1].item()
    assert e3 / e6 == pytest.approx(4.0, rel=0.01)
    # on axis, far away: E / pi = L * A / (pi d^2) for a Lambertian source of area A
    assert e3 == pytest.approx(0.34 * 0.6 / (math.pi * 3.0**2), rel=0.02)


def test_a_uniform_screen_lights_the_door_smoothly_brightest_in_front_of_it():
    import torch

    e = _door(distance_m=0.5)(torch.ones(1, 1, 18, 32))[0, 0]
    centre = e[e.shape[0] // 2 - 1:e.shape[0] // 2 + 1, e.shape[1] // 2 - 1:e.shape[1] // 2 + 1]
    assert centre.mean().item() == pytest.approx(e.max().item(), rel=0.02)
    assert torch.allclose(e, e.flip(-1), rtol=1e-4)  # symmetric set-up, symmetric light
    steps = (e[:, 1:] - e[:, :-1]).abs().max() / e.max()
    assert steps < 0.1  # a very wide kernel: no sharp features from a uniform screen
    assert e.min() > 0.2 * e.max()
    # a farther door gets less light everywhere
    assert (_door(distance_m=1.0)(torch.ones(1, 1, 18, 32))[0, 0] < e).all()


def test_irradiance_is_linear_in_screen_radiance_and_display_values_are_decoded_first():
    import torch

    from mcnn.physics.screen_rig import ScreenRigPhysics, srgb_to_linear

    door = _door()
    rng = torch.Generator().manual_seed(0)
    a, b = torch.rand(1, 3, 18, 32, generator=rng), torch.rand(1, 3, 18, 32, generator=rng)
    assert torch.allclose(door(2 * a + b), 2 * door(a) + door(b), rtol=1e-4, atol=1e-7)
    assert srgb_to_linear(torch.tensor(0.5)).item() == pytest.approx(0.214, abs=0.001)
    rig = ScreenRigPhysics(camera_hw=(24, 40), transport="realistic", noise_std=0.0,
                           photons_full_scale=None, global_mix=0.0)
    full = rig.light_on_door(torch.ones(1, 3, 36, 64))
    half = rig.light_on_door(torch.full((1, 3, 36, 64), 0.5))
    assert (half / full).mean().item() == pytest.approx(0.214, abs=0.002)


def test_an_occluder_edge_casts_a_penumbra_not_a_hard_shadow():
    import torch

    white = torch.ones(1, 1, 18, 32)
    grid = dict(door_size_m=(0.1, 0.9), door_grid=(3, 90))
    free = _door(**grid)(white)[0, 0, 1]
    shaded = _door(occluder_x_m=0.0, **grid)(white)[0, 0, 1]
    ratio = (shaded / free).numpy()
    assert ratio[:10].max() > 0.95 and ratio[-10:].min() < 0.05  # lit side, dark side
    between = ((ratio > 0.1) & (ratio < 0.9)).sum()
    # geometric penumbra width at the door: screen width * (d - z_occ) / z_occ = 0.6 m here
    assert between > 20  # of 90 samples over 0.9 m: a soft edge tens of cm wide
    assert (ratio[1:] <= ratio[:-1] + 1e-6).all()  # monotonic from lit to dark


def test_the_easy_preset_is_unchanged_and_realistic_is_selectable_by_name():
    import torch

    from mcnn.physics.screen_rig import ScreenRigPhysics

    easy = ScreenRigPhysics(camera_hw=(24, 40), noise_std=0.0, photons_full_scale=None)
    assert easy.door is None and easy.transport == "easy"
    real = ScreenRigPhysics(camera_hw=(24, 40), noise_std=0.0, photons_full_scale=None,
                            transport="realistic", distance_m=0.8, door_angle_deg=20)
    out = real(torch.rand(2, 3, 48, 80, generator=torch.Generator().manual_seed(1)))
    assert out.shape == (2, 3, 24, 40) and out.min() >= 0 and out.max() <= 1
    with pytest.raises(ValueError, match="transport"):
        ScreenRigPhysics(transport="toy")  # type: ignore[arg-type]
