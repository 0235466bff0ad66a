"""Turns a torch tensor, a numpy array or a Python number into (dtype, shape, raw LE bytes).

Bytes are taken as they are in memory: bf16 stays bit-exact (its 16-bit patterns are copied,
never converted through float), so the MD5 spcheck prints equals hashlib.md5 of the dump.
Non-contiguous tensors are refused rather than silently copied: a strided view is very often a
sign that the tensor is not the shard the caller believes it is, and the caller should decide.

Only a plain torch.Tensor (or nn.Parameter) is read from memory. A tensor subclass's memory need
not hold its values: an AsyncCollectiveTensor (what RowwiseParallel and
redistribute(async_op=True).to_local() return) holds the bytes from before its collective
finished, a DTensor holds only a shard and no placement, a fake or functional tensor holds
nothing. The first is waited for; a DTensor is refused here (Dumper.record converts it, with its
placement); anything else is refused with the tensor's name.
"""

import ctypes
import struct
import sys

from .errors import DumpError

# torch dtype (by str, so torch need not be imported) -> safetensors dtype.
_TORCH_DTYPES = {
    "torch.float64": "F64",
    "torch.float32": "F32",
    "torch.bfloat16": "BF16",
    "torch.float16": "F16",
    "torch.int64": "I64",
    "torch.int32": "I32",
}

# numpy (kind, itemsize) -> safetensors dtype. bf16 arrives either as ml_dtypes' "bfloat16" or,
# from Paddle's .numpy(), as uint16 bit patterns that the caller labels with as_dtype="BF16".
_NUMPY_DTYPES = {("f", 8): "F64", ("f", 4): "F32", ("f", 2): "F16", ("i", 8): "I64", ("i", 4): "I32"}

# as_dtype relabels 16-bit integer bit patterns; nothing else may be relabelled.
_RELABEL_FROM_16BIT = ("BF16", "F16")

SUPPORTED = ("F64", "F32", "BF16", "F16", "I64", "I32")


def encode(name, value, as_dtype=None):
    """Returns (dtype, shape, bytes) for value; name is used in errors."""
    mod = type(value).__module__ or ""
    torch = sys.modules.get("torch")
    if mod.startswith("torch") or (torch is not None and isinstance(value, torch.Tensor)):
        return _encode_torch(name, value, as_dtype)
    if mod.startswith("paddle"):
        raise DumpError(f"tensor {name!r}: pass Paddle tensors as numpy arrays (t.numpy(); "
                        "for bf16 add as_dtype='BF16')")
    if hasattr(value, "__array_interface__") and hasattr(value, "dtype"):
        return _encode_numpy(name, value, as_dtype)
    if isinstance(value, bool):
        raise DumpError(f"tensor {name!r}: bool is not a supported dtype (want one of {SUPPORTED})")
    if isinstance(value, float):
        return _relabel_check(name, "F64", as_dtype), [], struct.pack("<d", value)
    if isinstance(value, int):
        return _relabel_check(name, "I64", as_dtype), [], struct.pack("<q", value)
    raise DumpError(f"tensor {name!r}: cannot dump a {type(value).__name__} "
                    "(want a torch tensor, a numpy array or a float)")


def _relabel_check(name, native, as_dtype):
    if as_dtype is not None and as_dtype != native:
        raise DumpError(f"tensor {name!r}: as_dtype={as_dtype!r} cannot relabel {native} data "
                        f"(only 16-bit integer bit patterns may be labelled {_RELABEL_FROM_16BIT})")
    return native


def _module_attr(module, attr):
    """module.attr when module has been imported (so nothing here imports torch.distributed)."""
    return getattr(sys.modules.get(module), attr, None)


def dtensor_class():
    """torch's DTensor class, or None when no DTensor can exist in this process."""
    return (_module_attr("torch.distributed.tensor", "DTensor")
            or _module_attr("torch.distributed._tensor.api", "DTensor"))


def is_dtensor(t):
    cls = dtensor_class()
    return cls is not None and isinstance(t, cls)


def wait_async(t):
    """The result of an AsyncCollectiveTensor's collective, waited for; t itself otherwise."""
    act = _module_attr("torch.distributed._functional_collectives", "AsyncCollectiveTensor")
    while act is not None and isinstance(t, act):
        t = t.wait()
    return t


def plain_tensor(name, t):
    """t as a plain torch.Tensor whose memory holds its values, or a DumpError naming it."""
    t = wait_async(t)
    if is_dtensor(t):
        raise DumpError(f"tensor {name!r}: is a DTensor (placements {list(t.placements)}): its "
                        "memory is one shard without its layout; record it through Dumper.record "
                        "(which converts it with its placement), or pass t.to_local() with the "
                        "placement, or t.full_tensor()")
    torch = sys.modules["torch"]
    if type(t) not in (torch.Tensor, torch.nn.Parameter):
        cls = type(t)
        raise DumpError(f"tensor {name!r}: is a {cls.__module__}.{cls.__qualname__}, a tensor "
                        "subclass whose memory need not hold its values; pass a plain tensor "
                        "(e.g. its local or full value)")
    if t.device.type == "meta":
        raise DumpError(f"tensor {name!r}: is on the meta device (it has no values)")
    return t


def _encode_torch(name, t, as_dtype):
    t = plain_tensor(name, t)
    if str(getattr(t, "layout", "torch.strided")) != "torch.strided":
        raise DumpError(f"tensor {name!r}: layout {t.layout} is not supported (dump a dense tensor)")
    if not t.is_contiguous():
        raise DumpError(f"tensor {name!r}: is not contiguous (shape {list(t.shape)}, stride "
                        f"{list(t.stride())}); pass t.contiguous() if this view is what you mean")
    key = str(t.dtype)
    if key in ("torch.int16", "torch.uint16") and as_dtype in _RELABEL_FROM_16BIT:
        dtype = as_dtype
    elif key in _TORCH_DTYPES:
        dtype = _relabel_check(name, _TORCH_DTYPES[key], as_dtype)
    else:
        raise DumpError(f"tensor {name!r}: dtype {key} is not supported (want one of "
                        f"{', '.join(_TORCH_DTYPES)})")
    if sys.byteorder != "little":
        raise DumpError(f"tensor {name!r}: torch tensors are dumped from a little-endian host only")
    t = t.detach()
    if t.device.type != "cpu":
        t = t.cpu()
    n = t.numel() * t.element_size()
    if n and not t.data_ptr():
        raise DumpError(f"tensor {name!r}: has no storage (data_ptr 0)")
    # The bytes as they lie in memory: exact for every dtype, bf16 included, and no numpy needed.
    data = ctypes.string_at(t.data_ptr(), n) if n else b""
    return dtype, list(t.shape), data


def _encode_numpy(name, a, as_dtype):
    if not a.flags["C_CONTIGUOUS"]:
        raise DumpError(f"tensor {name!r}: numpy array is not C-contiguous (strides "
                        f"{list(a.strides)}); pass numpy.ascontiguousarray(a) if this view is what "
                        "you mean")
    dt = a.dtype
    if dt.name == "bfloat16" and dt.itemsize == 2:  # ml_dtypes
        dtype = _relabel_check(name, "BF16", as_dtype)
    elif dt.kind in "iu" and dt.itemsize == 2 and as_dtype in _RELABEL_FROM_16BIT:
        dtype = as_dtype
    elif (dt.kind, dt.itemsize) in _NUMPY_DTYPES:
        dtype = _relabel_check(name, _NUMPY_DTYPES[(dt.kind, dt.itemsize)], as_dtype)
    else:
        hint = " (Paddle bf16 arrives as uint16: add as_dtype='BF16')" if dt.kind == "u" else ""
        raise DumpError(f"tensor {name!r}: numpy dtype {dt} is not supported (want float64, "
                        f"float32, float16, int64, int32 or bfloat16){hint}")
    if dt.byteorder == ">" or (dt.byteorder == "=" and sys.byteorder != "little"):
        a = a.astype(dt.newbyteorder("<"))  # the format is little-endian; values are unchanged
    return dtype, [int(d) for d in a.shape], a.tobytes()
