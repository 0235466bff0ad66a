"""Reads a trace file with PyPI's safetensors package and checks it against what the Go writer
says it wrote (argv[2], JSON: {key: {dtype, shape, md5}}, plus "__spcheck__": the metadata doc).
Exit 0 when every tensor's dtype, shape and bytes agree and the metadata is intact."""
import hashlib
import json
import sys

import safetensors
from safetensors import safe_open

path, expected_path = sys.argv[1], sys.argv[2]
expected = json.load(open(expected_path))
data = open(path, "rb").read()
got = dict(safetensors.deserialize(data))
want_meta = expected.pop("__spcheck__")
errors = []
if set(got) != set(expected):
    errors.append(f"tensor keys {sorted(got)} != {sorted(expected)}")
for key, want in expected.items():
    t = got.get(key)
    if t is None:
        continue
    if t["dtype"] != want["dtype"] or list(t["shape"]) != want["shape"]:
        errors.append(f"{key}: dtype/shape {t['dtype']} {t['shape']} != {want['dtype']} {want['shape']}")
    if hashlib.md5(bytes(t["data"])).hexdigest() != want["md5"]:
        errors.append(f"{key}: bytes differ")
with safe_open(path, framework="np") as f:
    meta = f.metadata()
    if json.loads(meta["spcheck"]) != want_meta:
        errors.append("metadata document differs")
    for key, want in expected.items():
        if want["dtype"] in ("F32", "F64", "F16", "I64", "I32"):
            arr = f.get_tensor(key)
            if hashlib.md5(arr.tobytes()).hexdigest() != want["md5"]:
                errors.append(f"{key}: numpy view differs")
if errors:
    print("\n".join(errors))
    sys.exit(1)
print(f"safetensors {safetensors.__version__}: {len(expected)} tensors and metadata match")
