"""image_msgs: every encoding round-trips through a real sensor_msgs/Image, padded rows, big-endian, errors."""
import array
import sys
from types import SimpleNamespace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from dense_descriptor_grasp.image_msgs import (
    ENCODINGS,
    camera_info_for_image,
    camera_info_to_K,
    descriptor_encoding,
    encoding_info,
    image_fields,
    image_to_numpy,
    intrinsics_problem,
    make_camera_info,
    numpy_to_image,
)

Image = pytest.importorskip("sensor_msgs.msg").Image

ALL_ENCODINGS = sorted(ENCODINGS) + ["32FC2", "32FC3", "32FC4", "32FC8", "32FC16", "8UC3", "16SC2", "64FC1"]


def random_array(encoding, height, width, seed=0):
    """An (H, W) or (H, W, C) array of the encoding's dtype spanning its value range."""
    rng = np.random.default_rng(seed)
    dtype, channels = encoding_info(encoding)
    shape = (height, width) if channels == 1 else (height, width, channels)
    if dtype.kind == "f":
        return (rng.standard_normal(shape) * 100).astype(dtype)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def padded_raw_message(array_native, encoding, pad_bytes, big_endian):
    """Build a real Image by hand (not via numpy_to_image) with `pad_bytes` of junk after every row."""
    dtype, _ = encoding_info(encoding)
    height, width = array_native.shape[:2]
    ordered = array_native.astype(dtype.newbyteorder(">" if big_endian else "<"))
    rows = ordered.reshape(height, -1).view(np.uint8)
    junk = np.full((height, pad_bytes), 0xAB, dtype=np.uint8)
    msg = Image()
    msg.height, msg.width, msg.encoding = height, width, encoding
    msg.is_bigendian = int(big_endian)
    msg.step = rows.shape[1] + pad_bytes
    msg.data = array.array("B", np.hstack([rows, junk]).tobytes())
    return msg


@pytest.mark.parametrize("encoding", ALL_ENCODINGS)
def test_every_encoding_round_trips_through_a_real_image(encoding):
    source = random_array(encoding, 6, 9, seed=len(encoding))
    msg = numpy_to_image(source, encoding)
    assert isinstance(msg, Image)
    dtype, channels = encoding_info(encoding)
    assert (msg.height, msg.width, msg.encoding) == (6, 9, encoding)
    assert msg.step == 9 * channels * dtype.itemsize
    assert len(msg.data) == 6 * msg.step
    assert msg.is_bigendian == int(sys.byteorder == "big")
    back = image_to_numpy(msg)
    assert back.dtype == dtype and back.shape == source.shape
    np.testing.assert_array_equal(back, source)


@pytest.mark.parametrize("encoding", ALL_ENCODINGS)
@pytest.mark.parametrize("big_endian", [False, True])
def test_padded_rows_are_skipped_on_read(encoding, big_endian):
    source = random_array(encoding, 5, 7, seed=3)
    msg = padded_raw_message(source, encoding, pad_bytes=13, big_endian=big_endian)
    np.testing.assert_array_equal(image_to_numpy(msg), source)


@pytest.mark.parametrize("encoding", ["rgb8", "16UC1", "32FC1", "32FC8"])
def test_writer_pads_rows_and_writes_big_endian_on_request(encoding):
    source = random_array(encoding, 4, 5, seed=7)
    dtype, channels = encoding_info(encoding)
    row = 5 * channels * dtype.itemsize
    msg = numpy_to_image(source, encoding, step=row + 6, is_bigendian=True)
    assert msg.step == row + 6 and len(msg.data) == 4 * (row + 6) and msg.is_bigendian == 1
    np.testing.assert_array_equal(image_to_numpy(msg), source)


def test_big_endian_16uc1_and_32fc1_bytes_decode_to_the_right_values():
    """Hand-written big-endian bytes: 1000 mm = 0x03E8, 1.5 m = 0x3FC00000."""
    depth_mm = SimpleNamespace(height=1, width=2, encoding="16UC1", is_bigendian=1, step=4,
                               data=bytes([0x03, 0xE8, 0x00, 0x01]))
    np.testing.assert_array_equal(image_to_numpy(depth_mm), [[1000, 1]])
    depth_m = SimpleNamespace(height=1, width=1, encoding="32FC1", is_bigendian=1, step=4,
                              data=bytes([0x3F, 0xC0, 0x00, 0x00]))
    assert image_to_numpy(depth_m)[0, 0] == np.float32(1.5)
    little = SimpleNamespace(height=1, width=1, encoding="32FC1", is_bigendian=0, step=4,
                             data=bytes([0x00, 0x00, 0xC0, 0x3F]))
    assert image_to_numpy(little)[0, 0] == np.float32(1.5)
    assert image_to_numpy(depth_mm).dtype.isnative


def test_channel_layout_is_kept_and_result_is_a_writable_copy():
    msg = SimpleNamespace(height=1, width=2, encoding="bgr8", is_bigendian=0, step=6, data=bytes([1, 2, 3, 4, 5, 6]))
    out = image_to_numpy(msg)
    np.testing.assert_array_equal(out, [[[1, 2, 3], [4, 5, 6]]])
    out[0, 0, 0] = 99  # a copy: the message data must not change
    assert msg.data[0] == 1


def test_single_channel_accepts_trailing_axis_and_nan_survives():
    depth = np.array([[np.nan, 1.0], [np.inf, 0.0]], dtype=np.float32)
    back = image_to_numpy(numpy_to_image(depth[..., None], "32FC1"))
    assert back.shape == (2, 2)
    np.testing.assert_array_equal(np.isnan(back), np.isnan(depth))
    assert back[1, 0] == np.inf and back[1, 1] == 0.0


def test_header_is_copied():
    from std_msgs.msg import Header

    header = Header(frame_id="camera_color_optical_frame")
    header.stamp.sec, header.stamp.nanosec = 12, 345
    msg = numpy_to_image(np.zeros((2, 3), np.uint8), "mono8", header)
    assert msg.header.frame_id == "camera_color_optical_frame"
    assert (msg.header.stamp.sec, msg.header.stamp.nanosec) == (12, 345)


def test_descriptor_encoding_names():
    assert descriptor_encoding(16) == "32FC16"
    assert encoding_info("32FC16") == (np.dtype(np.float32), 16)
    with pytest.raises(ValueError):
        descriptor_encoding(0)


# ------------------------------------------------------------------------------------------------- errors

def message(**overrides):
    fields = dict(height=2, width=3, encoding="32FC1", is_bigendian=0, step=12, data=bytes(24))
    fields.update(overrides)
    return SimpleNamespace(**fields)


def test_unknown_encoding_is_named():
    with pytest.raises(ValueError, match="yuv422_weird"):
        image_to_numpy(message(encoding="yuv422_weird"))
    with pytest.raises(ValueError, match="32FC0"):
        encoding_info("32FC0")
    with pytest.raises(ValueError, match="bayer_xyz"):
        numpy_to_image(np.zeros((2, 2), np.uint8), "bayer_xyz")


def test_short_data_names_encoding_and_sizes():
    with pytest.raises(ValueError, match=r"32FC1.*23 bytes.*24"):
        image_to_numpy(message(data=bytes(23)))


def test_step_too_small_names_encoding_and_sizes():
    with pytest.raises(ValueError, match=r"rgb8.*step 8.*9"):
        image_to_numpy(message(encoding="rgb8", step=8, data=bytes(100)))
    with pytest.raises(ValueError, match=r"32FC8.*step 10"):
        numpy_to_image(np.zeros((2, 3, 8), np.float32), "32FC8", step=10)


@pytest.mark.parametrize("shape, encoding", [((4, 5), "rgb8"), ((4, 5, 4), "rgb8"), ((4, 5, 3), "mono8"),
                                             ((4, 5, 7), "32FC8"), ((4,), "32FC1"), ((4, 5, 3), "32FC1")])
def test_array_shape_mismatch_names_encoding(shape, encoding):
    dtype, _ = encoding_info(encoding)
    with pytest.raises(ValueError, match=rf"{encoding}.*{shape[0]}"):
        numpy_to_image(np.zeros(shape, dtype), encoding)


def test_dtype_errors_and_safe_casts():
    with pytest.raises(ValueError, match="rgb8"):
        numpy_to_image(np.zeros((2, 2, 3), np.float32), "rgb8")  # float colours in [0, 1] are a bug
    with pytest.raises(ValueError, match=r"16UC1.*70000"):
        numpy_to_image(np.full((2, 2), 70000, np.int64), "16UC1")
    ok = numpy_to_image(np.full((2, 2), 255, np.int64), "mono8")
    assert image_to_numpy(ok).dtype == np.uint8 and image_to_numpy(ok)[0, 0] == 255
    as_float = image_to_numpy(numpy_to_image(np.ones((2, 2, 8), np.float64) / 3, "32FC8"))
    assert as_float.dtype == np.float32 and np.allclose(as_float, 1 / 3)


def test_bad_backend_is_rejected():
    with pytest.raises(ValueError, match="backend"):
        image_to_numpy(message(), backend="ros2_numpy")


# --------------------------------------------------------------------------------------- property test

@settings(max_examples=60, deadline=None)
@given(encoding=st.sampled_from(ALL_ENCODINGS + ["32FC5", "32FC12"]),
       height=st.integers(0, 9), width=st.integers(0, 9), pad=st.integers(0, 17),
       big_endian=st.booleans(), seed=st.integers(0, 2**16))
def test_round_trip_property(encoding, height, width, pad, big_endian, seed):
    source = random_array(encoding, height, width, seed)
    fields = image_fields(source, encoding, is_bigendian=big_endian)
    msg = numpy_to_image(source, encoding, is_bigendian=big_endian, step=fields["step"] + pad)
    back = image_to_numpy(msg)
    assert back.shape == source.shape and back.dtype == source.dtype
    np.testing.assert_array_equal(back, source)
    # the same bytes read through a plain object give the same result (ROS-free path)
    plain = SimpleNamespace(height=msg.height, width=msg.width, encoding=msg.encoding,
                            is_bigendian=msg.is_bigendian, step=msg.step, data=bytes(msg.data))
    np.testing.assert_array_equal(image_to_numpy(plain), source)


# ---------------------------------------------------------------------------------------------- CameraInfo

def test_camera_info_round_trip():
    from std_msgs.msg import Header

    K = np.array([[525.0, 0.0, 319.5], [0.0, 520.0, 239.5], [0.0, 0.0, 1.0]])
    info = make_camera_info(K, 640, 480, Header(frame_id="camera_color_optical_frame"))
    assert (info.width, info.height, info.header.frame_id) == (640, 480, "camera_color_optical_frame")
    np.testing.assert_array_equal(camera_info_to_K(info), K)
    np.testing.assert_array_equal(np.asarray(info.p).reshape(3, 4)[:, :3], K)
    assert camera_info_to_K(info, dtype=np.float32).dtype == np.float32


@pytest.mark.parametrize("k, pattern", [
    ([0.0] * 9, "uncalibrated"),
    ([-5.0, 0, 1, 0, 5.0, 1, 0, 0, 1], "uncalibrated.*fx=-5"),
    ([5.0, 0, 1, 0, 0.0, 1, 0, 0, 1], "uncalibrated.*fy=0"),
    ([5.0, 0, 1, 0, 5.0, 1], "6 values"),
    ([5.0, 0, 1, 0, 5.0, 1, 0, 0, 0], "last row"),
    ([5.0, 0, np.nan, 0, 5.0, 1, 0, 0, 1], "non-finite"),
])
def test_camera_info_rejects_uncalibrated_or_malformed(k, pattern):
    with pytest.raises(ValueError, match=pattern):
        camera_info_to_K(SimpleNamespace(k=k))


def test_camera_info_from_a_default_message_is_uncalibrated():
    from sensor_msgs.msg import CameraInfo

    with pytest.raises(ValueError, match="uncalibrated"):
        camera_info_to_K(CameraInfo())
    with pytest.raises(ValueError, match="fx > 0"):
        make_camera_info(np.zeros((3, 3)), 10, 10)


def test_module_imports_no_ros_at_import_time():
    import subprocess

    code = ("import sys, dense_descriptor_grasp.image_msgs as m; "
            "bad = [n for n in ('rclpy', 'sensor_msgs', 'std_msgs', 'cv_bridge') if n in sys.modules]; "
            "assert not bad, bad")
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


@pytest.mark.parametrize("encoding", ["rgb8", "mono16", "32FC1", "32FC3"])
def test_auto_backend_gives_the_same_result_as_the_own_code(encoding):
    """'auto' may use cv_bridge only when it round-trips; either way the result equals the default path."""
    from dense_descriptor_grasp.image_msgs import cv_bridge_usable

    source = random_array(encoding, 5, 6, seed=2)
    msg = padded_raw_message(source, encoding, pad_bytes=8, big_endian=False)
    np.testing.assert_array_equal(image_to_numpy(msg, backend="auto"), image_to_numpy(msg))
    np.testing.assert_array_equal(image_to_numpy(numpy_to_image(source, encoding, backend="auto")), source)
    if not cv_bridge_usable():
        with pytest.raises(ValueError, match="cv_bridge"):
            image_to_numpy(msg, backend="cv_bridge")


# ------------------------------------------------------------------ plausible intrinsics (issue 12, item 4)
GOOD_K = [[525.0, 0.0, 319.5], [0.0, 525.0, 239.5], [0.0, 0.0, 1.0]]


def k_with(**entries):
    K = np.array(GOOD_K)
    index = {"fx": (0, 0), "fy": (1, 1), "cx": (0, 2), "cy": (1, 2), "skew": (0, 1), "k20": (2, 0)}
    for name, value in entries.items():
        K[index[name]] = value
    return K


@pytest.mark.parametrize("K, width, height", [
    (GOOD_K, 640, 480),
    (k_with(fx=32.0, fy=32.0), 640, 480),              # 0.05 x 640: the widest accepted lens
    (k_with(fx=64000.0, fy=64000.0), 640, 480),        # 100 x 640: the longest
    (k_with(cx=-320.0, cy=720.0), 640, 480),           # principal point at the edges of the accepted box
    ([[70.0, 0, 39.5], [0, 70.0, 31.5], [0, 0, 1]], 80, 64),
])
def test_plausible_intrinsics_pass(K, width, height):
    assert intrinsics_problem(K, width, height) == ""


@pytest.mark.parametrize("K, width, height, reason", [
    (k_with(fx=1e-300), 640, 480, "focal length fx=1e-300 px is implausible for a 640x480 image"),
    (k_with(fy=0.0), 640, 480, "focal length fy=0 px"),
    (k_with(fx=-525.0), 640, 480, "focal length fx=-525"),
    (k_with(fx=1e9), 640, 480, "accepted 32 .. 64000 px"),
    (k_with(cx=-1e308), 640, 480, "principal point cx=-1e+308 px is far outside the 640x480 image"),
    (k_with(cy=1e6), 640, 480, "principal point cy=1e+06"),
    (k_with(cx=float("nan")), 640, 480, "non-finite"),
    (k_with(fy=float("inf")), 640, 480, "non-finite"),
    (k_with(k20=0.5), 640, 480, "last row"),
    (k_with(skew=1e12), 640, 480, "skew"),
    (GOOD_K, 0, 480, "image size 0x480 is not positive"),
    (np.eye(2), 640, 480, "shape"),
])
def test_implausible_intrinsics_are_named(K, width, height, reason):
    assert reason in intrinsics_problem(K, width, height)


def test_camera_info_for_image_refuses_another_size_and_absurd_k():
    info = SimpleNamespace(width=640, height=480, k=np.array(GOOD_K).reshape(-1).tolist())
    np.testing.assert_array_equal(camera_info_for_image(info, 640, 480), np.array(GOOD_K))
    with pytest.raises(ValueError, match="camera_info size 640x480 differs from the image size 320x240"):
        camera_info_for_image(info, 320, 240)
    info.k = k_with(fx=1e-300).reshape(-1).tolist()
    with pytest.raises(ValueError, match="implausible camera intrinsics: focal length fx=1e-300"):
        camera_info_for_image(info, 640, 480)
    info.k = [0.0] * 9
    with pytest.raises(ValueError, match="uncalibrated"):
        camera_info_for_image(info, 640, 480)


def test_decode_camera_set_checks_in_order_and_names_the_problem():
    from sensor_msgs.msg import CameraInfo

    from dense_descriptor_grasp.image_msgs import FrameSetError, decode_camera_set, make_camera_info, numpy_to_image

    rgb = np.zeros((4, 6, 3), np.uint8)
    rgb[..., 2] = 200                                            # blue in RGB = first channel 200 in BGR
    depth = np.full((4, 6), 500, np.uint16)
    K = np.array([[5.0, 0, 2.5], [0, 5.0, 1.5], [0, 0, 1]])
    color, dmsg, info = numpy_to_image(rgb[..., ::-1].copy(), "bgr8"), numpy_to_image(depth, "16UC1"), \
        make_camera_info(K, 6, 4)
    out_rgb, out_depth, out_K = decode_camera_set(color, dmsg, info, depth_scale=0.001)
    assert out_rgb[0, 0].tolist() == [0, 0, 200] and out_depth[0, 0] == pytest.approx(0.5)
    np.testing.assert_allclose(out_K, K)
    cases = [
        (numpy_to_image(np.zeros((4, 6), np.uint8), "mono8"), dmsg, info, "color_encoding"),
        (color, numpy_to_image(depth.astype(np.float64), "64FC1"), info, "depth_encoding"),
        (color, numpy_to_image(np.zeros((2, 3), np.uint16), "16UC1"), info, "size_mismatch"),
        (color, dmsg, make_camera_info(K, 12, 8), "info_size"),
        (color, dmsg, CameraInfo(width=6, height=4), "decode"),                   # k all zero: uncalibrated
    ]
    for c, d, i, key in cases:
        with pytest.raises(FrameSetError) as err:
            decode_camera_set(c, d, i, depth_scale=0.001)
        assert err.value.key == key, (key, str(err.value))
    absurd = make_camera_info(np.array([[1e-9, 0, 2.5], [0, 1e-9, 1.5], [0, 0, 1]]), 6, 4)
    decode_camera_set(color, dmsg, absurd, depth_scale=0.001)                     # accepted unless asked to check
    with pytest.raises(FrameSetError, match="implausible"):
        decode_camera_set(color, dmsg, absurd, depth_scale=0.001, check_intrinsics=True)
